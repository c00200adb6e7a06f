"""Usage cube: raw consumption and exact distinct active accounts at every geo level x industry.

Accounts are counted at each cell from account-level rows, never summed from lower levels, because one account
may bill in several cities or industries.
"""
from __future__ import annotations

import polars as pl

from assets.transforms.reference import Reference

CUBE_SCHEMA = {"metric": pl.String, "geo_level": pl.String, "geo_code": pl.String, "industry": pl.String,
               "amount": pl.Float64, "accounts": pl.UInt32, "top_account_amount": pl.Float64}


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
    lf = account_usage.select("metric", "geo_code", "industry", "account_id", "amount")
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
             .select("mi", "g", "account_id", "amount").collect(engine="streaming")
             .with_row_index("a")
             .select("mi", "g", pl.col("a").min().over("account_id"), pl.len().over("account_id").alias("rows"),
                     "amount"))
    # an account on one row of `usage` (in one city, metric and industry: most of them) is its own sum in every
    # cell it reaches, so only the others are summed per cell x account; `all` is industry 0 of each metric
    single = usage.get_column("rows") == 1
    singles, multis = usage.filter(single).drop("a", "rows"), usage.filter(~single).drop("rows")
    n_cells = labels.height
    parts = []
    for (level,), level_members in members.partition_by("geo_level", as_dict=True, maintain_order=True).items():
        entities = level_members.select("entity").unique(maintain_order=True).with_row_index("e")
        entity_of = level_members.join(entities, on="entity").select("g", "e")

        def cells(frame: pl.DataFrame) -> pl.DataFrame:
            return frame.join(entity_of, on="g").with_columns(
                (pl.col("e") * n_cells + pl.col("mi")).alias("cell"),
                (pl.col("e") * n_cells + (pl.col("mi") // n_ind) * n_ind).alias("cell_all"))

        single_rows, multi_rows = cells(singles), cells(multis)
        for key in ("cell", "cell_all"):
            # cell x account as one key: the cell in the high 32 bits, the account in the low
            summed = (multi_rows.lazy().group_by((pl.col(key).cast(pl.UInt64) * 2**32 + pl.col("a")).alias("key"))
                      .agg(pl.col("amount").sum())
                      .select((pl.col("key") // 2**32).cast(pl.UInt32).alias("cell"),
                              pl.col("amount").cast(usage.schema["amount"]))
                      .collect())
            per_cell = (pl.concat([single_rows.select(pl.col(key).alias("cell"), "amount"), summed]).lazy()
                        .group_by("cell")
                        .agg(pl.col("amount").sum().cast(pl.Float64),
                             (pl.col("amount") > 0).sum().cast(pl.UInt32).alias("accounts"),
                             pl.col("amount").max().cast(pl.Float64).alias("top_account_amount"))
                        .collect())
            parts.append(per_cell.with_columns((pl.col("cell") // n_cells).alias("e"),
                                               (pl.col("cell") % n_cells).alias("mi"))
                         .join(entities, on="e").join(labels, on="mi")
                         .select("metric", pl.lit(level).alias("geo_level"), pl.col("entity").alias("geo_code"),
                                 "industry", "amount", "accounts", "top_account_amount"))
        del single_rows, multi_rows
    cube = (pl.concat(parts) if parts else pl.DataFrame(schema=CUBE_SCHEMA)).cast(CUBE_SCHEMA)
    return cube.sort("metric", "geo_level", "geo_code", "industry").lazy()


def cube_quarter(account_usage: pl.LazyFrame, ref: Reference) -> pl.DataFrame:
    """One quarter's (or year's) cube from its account-level usage, computed with the streaming engine."""
    return build_cube(account_usage, ref).collect(engine="streaming")
