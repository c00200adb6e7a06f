"""Quarter labels (`2020Q1`): from dates, to date bounds, and contiguous ranges."""
from __future__ import annotations

import datetime as dt

import polars as pl


def quarter_label(date: pl.Expr) -> pl.Expr:
    return pl.concat_str(date.dt.year().cast(pl.String), pl.lit("Q"), date.dt.quarter().cast(pl.String))


def quarter_bounds(quarter: str) -> tuple:
    year, q = int(quarter[:4]), int(quarter[5])
    start = dt.date(year, 3 * q - 2, 1)
    end = dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return start, end


def quarters_between(first: str, last: str) -> list[str]:
    """The contiguous quarter labels from first to last, inclusive."""
    out, (y, q) = [], (int(first[:4]), int(first[5]))
    while f"{y}Q{q}" <= last:
        out.append(f"{y}Q{q}")
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    return out


def in_quarters(date: pl.Expr, quarters: list[str]) -> pl.Expr:
    """Whether `date` falls in one of `quarters`: date comparisons, cheaper per row than labelling each one."""
    return pl.any_horizontal(date.is_between(*map(pl.lit, quarter_bounds(q)), closed="left") for q in quarters)
