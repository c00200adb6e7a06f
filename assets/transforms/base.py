"""Base totals: each metric's national, all-industry consumption in the base quarter, the index denominator."""
from __future__ import annotations

import polars as pl

from assets.transforms.errors import InputError


def metrics_present(cubes: list[pl.DataFrame]) -> list[str]:
    """Metrics with any rows in any quarter; a metric with none is not published."""
    found = set()
    for cube in cubes:
        found |= set(cube["metric"].unique().to_list())
    return sorted(found)


def compute_base_totals(base_cube: pl.DataFrame, base_period: str, metrics: list[str]) -> pl.DataFrame:
    """One row per metric: base_period and base_amount; a whole-input error if the base cannot divide."""
    national = base_cube.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    if national.height == 0:
        raise InputError(f"raw input: no rows in the base quarter {base_period} (column 'usage_date')")
    totals = (pl.DataFrame({"metric": metrics})
              .join(national.select("metric", pl.col("amount").alias("base_amount")), on="metric", how="left")
              .with_columns(pl.col("base_amount").fill_null(0.0), pl.lit(base_period).alias("base_period")))
    zero = totals.filter(pl.col("base_amount") <= 0)
    if zero.height:
        raise InputError(f"raw input: metric '{zero['metric'][0]}' has rows but a base total of 0 in "
                         f"{base_period} (column 'amount')")
    return totals.select("metric", "base_period", "base_amount").sort("metric")


def base_totals_of(cubes: dict[str, pl.DataFrame], base_period: str) -> pl.DataFrame:
    """The base totals of a release's quarterly cubes (a whole-input error if the base quarter has no rows)."""
    empty = next(iter(cubes.values())).clear() if cubes else pl.DataFrame()
    return compute_base_totals(cubes.get(base_period, empty), base_period, metrics_present(list(cubes.values())))


def check_metric_quarters(cubes: dict[str, pl.DataFrame], allowed: bool, where: str) -> None:
    """A metric with rows in some quarter but none in another inside the range is a whole-input error (a feed
    missing for a quarter would publish an index of 0), unless empty quarters are allowed."""
    present = {q: set(cube["metric"].unique().to_list()) for q, cube in cubes.items()}
    metrics = set().union(*present.values()) if present else set()
    quarters = sorted(present)
    for quarter in quarters:
        missing = sorted(metrics - present[quarter])
        if missing and not allowed:
            raise InputError(f"{where}: no rows for metric '{missing[0]}' in quarter {quarter} inside "
                             f"{quarters[0]}..{quarters[-1]} (columns 'product' and 'metric'; "
                             "--allow-empty-quarters publishes zeros)")
