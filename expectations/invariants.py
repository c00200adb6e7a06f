"""Invariants several stages check: the index hierarchies add up (pure polars, no GX needed)."""
from __future__ import annotations

import polars as pl

from expectations.outcomes import Outcome, predicate

TOLERANCE = 1e-9


def _close(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).abs() <= TOLERANCE * pl.max_horizontal(pl.lit(1.0), b.abs())


def levels_add_up(name: str, table: pl.DataFrame, column: str) -> Outcome:
    """Province, city (with unallocated) and tier (with unallocated) each sum to national; industries to all."""
    keys = [c for c in ("metric", "period", "period_type") if c in table.columns]
    national = table.filter(pl.col("geo_level") == "national").select(*keys, "industry", pl.col(column).alias("n"))
    failures = {}
    for level in ("province", "city", "tier"):
        sums = (table.filter(pl.col("geo_level") == level).group_by(*keys, "industry").agg(pl.col(column).sum().alias("s"))
                .join(national, on=[*keys, "industry"], how="full", coalesce=True)
                .with_columns(pl.col("s").fill_null(0.0), pl.col("n").fill_null(0.0)))
        failures[level] = sums.filter(~_close(pl.col("s"), pl.col("n"))).height
    by_entity = [*keys, "geo_level", "geo_code"]
    ind = (table.filter(pl.col("industry") != "all").group_by(by_entity).agg(pl.col(column).sum().alias("s"))
           .join(table.filter(pl.col("industry") == "all").select(*by_entity, pl.col(column).alias("n")),
                 on=by_entity, how="full", coalesce=True)
           .with_columns(pl.col("s").fill_null(0.0), pl.col("n").fill_null(0.0)))
    failures["industries"] = ind.filter(~_close(pl.col("s"), pl.col("n"))).height
    return predicate(name, not any(failures.values()), **{f"cells_off_{k}": v for k, v in failures.items()})
