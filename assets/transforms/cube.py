"""Usage cube: raw consumption and exact distinct active accounts at every geo level x industry.

Accounts are counted at each cell from account-level rows, never summed from lower levels, because one account
may bill in several cities or industries.
"""
from __future__ import annotations

import polars as pl

from assets.transforms.reference import Reference

GEO_LEVELS = ("national", "province", "city", "tier", "cluster")
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
    """Sum, distinct active accounts and the largest account's amount per metric x geo entity x industry."""
    members = geo_membership(ref).lazy()
    per_account = (account_usage.select("metric", "geo_code", "industry", "account_id", "amount")
                   .join(members, on="geo_code"))
    both = pl.concat([per_account, per_account.with_columns(pl.lit("all").alias("industry"))])
    cells = ["metric", "geo_level", "entity", "industry"]
    return (both.group_by(*cells, "account_id").agg(pl.col("amount").sum())
            .group_by(cells)
            .agg(pl.col("amount").sum(), (pl.col("amount") > 0).sum().cast(pl.UInt32).alias("accounts"),
                 pl.col("amount").max().alias("top_account_amount"))
            .rename({"entity": "geo_code"})
            .sort(cells[:2] + ["geo_code", "industry"]))
