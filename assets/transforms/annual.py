"""Annual indices: for each complete year, the sum of its four quarterly indices; accounts distinct over the year."""
from __future__ import annotations

import polars as pl

from assets.transforms.cube import PRIVACY_COLUMNS, cube_quarter
from assets.transforms.indices import INDEX_COLUMNS, sort_index_rows
from assets.transforms.reference import Reference


def complete_years(quarters: list[str]) -> list[str]:
    """Years whose four quarters are all present."""
    years = sorted({q[:4] for q in quarters})
    return [y for y in years if all(f"{y}Q{i}" in quarters for i in (1, 2, 3, 4))]


def year_account_usage(quarters: list[pl.LazyFrame]) -> pl.LazyFrame:
    """A year's account-level usage: its quarters' rows summed per metric x city-level geo x industry x account.

    The year cube counts accounts distinct over the year, so it needs the union of the quarters at account level;
    most accounts bill in every quarter, so summing first (exact decimals: the same sums in any order) leaves the
    cube a third of the rows to expand over every geo level.
    """
    return (pl.concat([q.select("metric", "geo_code", "industry", "account_id", "customer_id", "amount")
                       for q in quarters])
            .group_by("metric", "geo_code", "industry", "account_id", "customer_id").agg(pl.col("amount").sum())
            .collect(engine="streaming").lazy())


def sum_quarters_to_year(quarterly: list[pl.DataFrame], year_cube: pl.DataFrame, year: str) -> pl.DataFrame:
    """One year's rows: value and amount summed over its quarters; accounts and top account from the year's cube."""
    keys = ["metric", "geo_level", "geo_code", "industry"]
    # add the quarters in calendar order, cell by cell, so the float sum is the same on every run
    summed = quarterly[0].select(*keys, "geo_name", "geo_name_en", "geo_name_short", "base_period", "status", "value",
                                 "amount")
    for quarter in quarterly[1:]:
        summed = (summed.join(quarter.select(*keys, pl.col("value").alias("v"), pl.col("amount").alias("a")), on=keys)
                  .with_columns(pl.col("value") + pl.col("v"), pl.col("amount") + pl.col("a")).drop("v", "a"))
    return (summed.join(year_cube.select(*keys, "accounts", *PRIVACY_COLUMNS), on=keys, how="left")
            .with_columns(pl.col("accounts").fill_null(0).cast(pl.Int64), pl.col("contributors").fill_null(0),
                          pl.col("top_contributor_amount", "second_contributor_amount").fill_null(0.0),
                          pl.lit(year).alias("period"), pl.lit("year").alias("period_type"))
            .select(*INDEX_COLUMNS, "amount", *PRIVACY_COLUMNS)
            .pipe(sort_index_rows))


def index_year(year: str, quarterly: dict[str, pl.DataFrame], account_usage: dict[str, pl.LazyFrame],
               ref: Reference) -> pl.DataFrame:
    """One complete year's index rows from its four quarterly index tables and account-level usage."""
    quarters = [f"{year}Q{i}" for i in (1, 2, 3, 4)]
    year_cube = cube_quarter(year_account_usage([account_usage[q] for q in quarters]), ref)
    return sum_quarters_to_year([quarterly[q] for q in quarters], year_cube, year)
