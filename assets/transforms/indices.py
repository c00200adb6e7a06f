"""Quarterly indices: 100 x raw / base national total, for every entity of every level, zeros included."""
from __future__ import annotations

import polars as pl

from assets.transforms.cube import PRIVACY_COLUMNS
from assets.transforms.reference import Reference

INDEX_COLUMNS = ["metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "geo_name_en", "geo_name_short",
                 "industry",
                 "value", "accounts", "status", "base_period"]
LEVEL_ORDER = {"national": 0, "province": 1, "city": 2, "tier": 3, "cluster": 4}


def geo_entities(ref: Reference) -> pl.DataFrame:
    """Every published entity: geo_level, geo_code, geo_name, geo_name_en, geo_name_short (unallocated ones
    included). A municipality is both a province and a city, with the same code at both levels."""
    cols = ["geo_code", "name_zh", "name_en", "name_short"]
    levels = [
        ("national", pl.DataFrame({"geo_code": ["CN"], "name_zh": ["全国"], "name_en": ["China"], "name_short": ["全国"]})),
        ("province", ref.provinces.select(pl.col("code").alias("geo_code"), "name_zh", "name_en",
                                          (pl.col("short_zh") if "short_zh" in ref.provinces.columns
                                           else pl.col("name_zh")).alias("name_short"))),
        ("city", ref.city_geo().select(cols)),
        ("tier", ref.tier_names().select(cols)),
        ("cluster", ref.cluster_names().select(cols)),
    ]
    return pl.concat([frame.select(pl.lit(level).alias("geo_level"), pl.col("geo_code"),
                                   pl.col("name_zh").alias("geo_name"), pl.col("name_en").alias("geo_name_en"),
                                   pl.col("name_short").alias("geo_name_short"))
                      for level, frame in levels])


def index_grid(ref: Reference, metrics: list[str]) -> pl.DataFrame:
    """Every metric x entity x industry (`all` and each code) cell that a period must publish."""
    industries = pl.DataFrame({"industry": ["all", *ref.industries["code"].to_list()]})
    return (pl.DataFrame({"metric": metrics}).join(geo_entities(ref), how="cross").join(industries, how="cross"))


def normalise_to_base_period(cube: pl.DataFrame, base: pl.DataFrame, grid: pl.DataFrame, period: str,
                             period_type: str = "quarter") -> pl.DataFrame:
    """The full grid for one period: value = 100 x amount / base_amount, accounts exact, zeros where no usage."""
    keys = ["metric", "geo_level", "geo_code", "industry"]
    return (grid.join(cube.select(*keys, "amount", "accounts", *PRIVACY_COLUMNS), on=keys, how="left")
            .join(base.select("metric", "base_period", "base_amount"), on="metric")
            .with_columns(pl.col("amount").fill_null(0.0), pl.col("accounts").fill_null(0).cast(pl.Int64),
                          pl.col("contributors").fill_null(0).cast(pl.UInt32),
                          pl.col("top_contributor_amount", "second_contributor_amount").fill_null(0.0))
            # amount / base first: the base quarter's national cell is then exactly 1 x 100
            .with_columns((pl.col("amount") / pl.col("base_amount") * 100.0).alias("value"),
                          pl.lit(period).alias("period"), pl.lit(period_type).alias("period_type"),
                          pl.lit("ok").alias("status"))
            .select(*INDEX_COLUMNS, "amount", *PRIVACY_COLUMNS)
            .pipe(sort_index_rows))


def sort_index_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The published order: metric, period type, period, level (national first), code, industry (`all` first)."""
    return (frame.with_columns(pl.col("geo_level").replace_strict(LEVEL_ORDER, return_dtype=pl.Int8).alias("_l"),
                               (pl.col("industry") != "all").alias("_i"))
            .sort("metric", "period_type", "period", "_l", "geo_code", "_i", "industry")
            .drop("_l", "_i"))
