"""Usage cube: raw consumption, exact distinct active accounts and the privacy rules' inputs at every geo level x
industry.

Accounts are counted at each cell from account-level rows, never summed from lower levels, because one account
may bill in several cities or industries. Privacy's contributor is the customer (`customer_id`; an account
without one is its own customer): per cell the contributors with usage and the two largest customer totals.
"""
from __future__ import annotations

import polars as pl

from assets.transforms.reference import Reference

CUBE_SCHEMA = {"metric": pl.String, "geo_level": pl.String, "geo_code": pl.String, "industry": pl.String,
               "amount": pl.Float64, "accounts": pl.UInt32, "contributors": pl.UInt32,
               "top_contributor_amount": pl.Float64, "second_contributor_amount": pl.Float64}
# internal columns privacy needs (never published): contributors (customers) with usage, their two largest totals
PRIVACY_COLUMNS = ("contributors", "top_contributor_amount", "second_contributor_amount")


def geo_membership(ref: Reference) -> pl.DataFrame:
    """Each city-level geo_code -> every (geo_level, entity) it counts towards; clusters may overlap."""
    city = ref.city_geo().select("geo_code", "province_code")
    tiers = ref.city_tier()
    members = [
        city.select("geo_code", pl.lit("national").alias("geo_level"), pl.lit("CN").alias("entity")),
        city.select("geo_code", pl.lit("province").alias("geo_level"), pl.col("province_code").alias("entity")),
        city.select("geo_code", pl.lit("city").alias("geo_level"), pl.col("geo_code").alias("entity")),
        tiers.select("geo_code", pl.lit("tier").alias("geo_level"), pl.col("tier").alias("entity")),
        ref.clusters.select(pl.col("city_code").alias("geo_code"), pl.lit("cluster").alias("geo_level"),
                            pl.col("cluster_code").alias("entity")),
    ]
    return pl.concat(members).unique(maintain_order=True)


def build_cube(account_usage: pl.LazyFrame, ref: Reference) -> pl.LazyFrame:
    """Sum, distinct active accounts and the largest account's amount per metric x geo entity x industry.

    One geo level at a time (its industries, then `all`), so the per-account working set is one level's, not
    every level's at once; the cell (metric x entity x industry) and the account are one integer key.
    """
    members = geo_membership(ref)
    geos = members.select("geo_code").unique(maintain_order=True).with_row_index("g")
    members = members.join(geos, on="geo_code")
    lf = account_usage.select("metric", "geo_code", "industry", "account_id", "customer_id", "amount")
    present = lf.group_by("metric", "industry").len().collect(engine="streaming")
    # explicit string types: an empty quarter (allowed by a setting) has no metric or industry to infer them from
    metrics = pl.DataFrame({"metric": sorted(set(present["metric"].to_list()))},
                           schema={"metric": pl.String}).with_row_index("m")
    industries = (pl.DataFrame({"industry": ["all", *sorted(set(present["industry"].to_list()) - {"all"})]},
                               schema={"industry": pl.String}).with_row_index("i"))
    n_ind = industries.height
    labels = metrics.join(industries, how="cross").select(
        ((pl.col("m").cast(pl.UInt32) * n_ind) + pl.col("i")).alias("mi"), "metric", "industry")
    # the account-level rows with small integer codes in place of metric, industry, geo_code and account_id (the
    # number of the account's first row: exact, and far cheaper to hash than its text in the group-bys below)
    usage = (lf.join(labels.lazy(), on=["metric", "industry"]).join(geos.lazy(), on="geo_code")
             .select("mi", "g", "account_id", "customer_id", "amount").collect(engine="streaming")
             .with_row_index("a"))
    # customers: a contributor is one (its first row's number, after the accounts'); else the account itself
    customers = bool(usage.get_column("customer_id").is_not_null().any())
    usage = usage.select("mi", "g", pl.col("a").min().over("account_id"), pl.len().over("account_id").alias("rows"),
                         "amount", *([(pl.col("a").min().over("customer_id") + usage.height).alias("c")]
                                     if customers else []), "customer_id")
    if customers:
        usage = usage.with_columns(pl.when(pl.col("customer_id").is_null()).then(pl.col("a"))
                                   .otherwise(pl.col("c")).alias("c")).with_columns(
            pl.len().over("c").alias("c_rows"))
    usage = usage.drop("customer_id")
    # an account on one row of `usage` (in one city, metric and industry: most of them) is its own sum in every
    # cell it reaches, so only the others are summed per cell x account; `all` is industry 0 of each metric
    by_account = _split(usage, "a", "rows")
    by_customer = _split(usage, "c", "c_rows") if customers else None
    n_cells = labels.height
    parts = []
    for (level,), level_members in members.partition_by("geo_level", as_dict=True, maintain_order=True).items():
        entities = level_members.select("entity").unique(maintain_order=True).with_row_index("e")
        entity_of = level_members.join(entities, on="entity").select("g", "e")

        def cells(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.join(entity_of, on="g").with_columns(
                (pl.col("e") * n_cells + pl.col("mi")).alias("cell"),
                (pl.col("e") * n_cells + (pl.col("mi") // n_ind) * n_ind).alias("cell_all"))

        account_rows = [cells(frame) for frame in by_account]
        customer_rows = [cells(frame) for frame in by_customer] if by_customer else None
        for key in ("cell", "cell_all"):
            per_cell = _per_cell(*account_rows, key, "a").rename({
                "contributors": "accounts", "top": "top_contributor_amount", "second": "second_contributor_amount"})
            if customer_rows:
                per_cell = per_cell.drop("top_contributor_amount", "second_contributor_amount").join(
                    _per_cell(*customer_rows, key, "c").drop("amount").rename({
                        "top": "top_contributor_amount", "second": "second_contributor_amount"}), on="cell")
            else:
                per_cell = per_cell.with_columns(pl.col("accounts").alias("contributors"))
            parts.append(per_cell.with_columns((pl.col("cell") // n_cells).alias("e"),
                                               (pl.col("cell") % n_cells).alias("mi"))
                         .join(entities, on="e").join(labels, on="mi")
                         .select("metric", pl.lit(level).alias("geo_level"), pl.col("entity").alias("geo_code"),
                                 "industry", "amount", "accounts", *PRIVACY_COLUMNS))
        del account_rows, customer_rows
    cube = (pl.concat(parts) if parts else pl.DataFrame(schema=CUBE_SCHEMA)).cast(CUBE_SCHEMA)
    return cube.sort("metric", "geo_level", "geo_code", "industry").lazy()


def _split(usage: pl.DataFrame, key: str, rows: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of keys (accounts or customers) on one row of `usage`, each its own sum in any cell, and the others."""
    single = usage.get_column(rows) == 1
    keep = ["mi", "g", "amount"]
    return usage.filter(single).select(keep), usage.filter(~single).select(*keep, key)


def _per_cell(single_rows: pl.DataFrame, multi_rows: pl.DataFrame, key: str, who: str) -> pl.DataFrame:
    """Per cell: amount, contributors with usage, the largest and second largest contribution (`who`'s sums)."""
    # cell x contributor as one key: the cell in the high 32 bits, the contributor in the low
    summed = (multi_rows.lazy().group_by((pl.col(key).cast(pl.UInt64) * 2**32 + pl.col(who)).alias("key"))
              .agg(pl.col("amount").sum())
              .select((pl.col("key") // 2**32).cast(pl.UInt32).alias("cell"),
                      pl.col("amount").cast(single_rows.schema["amount"]))
              .collect())
    top2 = pl.col("amount").top_k(2)
    return (pl.concat([single_rows.select(pl.col(key).alias("cell"), "amount"), summed]).lazy()
            .group_by("cell")
            .agg(pl.col("amount").sum().cast(pl.Float64),
                 (pl.col("amount") > 0).sum().cast(pl.UInt32).alias("contributors"),
                 pl.col("amount").max().cast(pl.Float64).alias("top"),
                 pl.when(pl.len() > 1).then(top2.min()).otherwise(0).cast(pl.Float64).alias("second"))
            .collect())


def cube_quarter(account_usage: pl.LazyFrame, ref: Reference) -> pl.DataFrame:
    """One quarter's (or year's) cube from its account-level usage, computed with the streaming engine."""
    return build_cube(account_usage, ref).collect(engine="streaming")
