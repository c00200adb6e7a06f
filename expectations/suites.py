"""One Great Expectations suite per guarded asset, written as data (`Expect`): the adapter builds the GX objects
when a suite first runs, so importing the stages does not import Great Expectations (about 2 s).

Row-level stages are validated on a bounded sample; aggregated tables whole.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expect:
    """One expectation: the name of its GX class (in great_expectations.expectations) and its arguments."""

    kind: str
    args: tuple[tuple[str, object], ...]

    def kwargs(self) -> dict:
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self.args}


def expect(kind: str, **kwargs) -> Expect:
    return Expect(kind, tuple((name, tuple(value) if isinstance(value, list) else value)
                              for name, value in kwargs.items()))


REASONS = ["invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
           "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount"]
LEVELS = ["national", "province", "city", "tier", "cluster"]


def _not_null(*columns) -> tuple[Expect, ...]:
    return tuple(expect("ExpectColumnValuesToNotBeNull", column=c) for c in columns)


def _in_set(column: str, values: list) -> Expect:
    return expect("ExpectColumnValuesToBeInSet", column=column, value_set=values)


def _at_least(column: str, minimum, strict: bool = False) -> Expect:
    return expect("ExpectColumnValuesToBeBetween", column=column, min_value=minimum,
                  **({"strict_min": True} if strict else {}))


def _unique(*columns) -> Expect:
    return expect("ExpectCompoundColumnsToBeUnique", column_list=list(columns))


RAW_SAMPLE = (
    *(expect("ExpectColumnToExist", column=c) for c in ("usage_date", "account_id", "region_code", "amount")),
    *_not_null("usage_date", "source_file", "source_row"),
    _unique("source_file", "source_row"),
)

ACCOUNT_USAGE_SAMPLE = (
    *_not_null("metric", "geo_code", "province_code", "industry", "account_id", "amount"),
    _in_set("metric", ["cloud", "ai"]),
    _at_least("amount", 0),
    _at_least("rows", 1),
)

QUARANTINE = (
    *_not_null("source_file", "source_row", "reason"),
    _in_set("reason", REASONS),
)

USAGE_CUBE = (
    *_not_null("metric", "geo_level", "geo_code", "industry", "amount", "accounts"),
    _in_set("geo_level", LEVELS),
    _at_least("amount", 0),
    _at_least("accounts", 0),
    _unique("metric", "geo_level", "geo_code", "industry"),
)

BASE_TOTALS = (
    *_not_null("metric", "base_period", "base_amount"),
    expect("ExpectColumnValuesToBeUnique", column="metric"),
    _at_least("base_amount", 0, strict=True),
)

INDICES = (
    *_not_null("metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "industry", "value",
               "accounts", "status", "base_period"),
    _in_set("metric", ["cloud", "ai"]),
    _in_set("geo_level", LEVELS),
    _in_set("status", ["ok", "suppressed"]),
    _at_least("value", 0),
    _at_least("accounts", 0),
    _unique("metric", "period", "period_type", "geo_level", "geo_code", "industry"),
)

PUBLISHED_INDICES = INDICES + (
    expect("ExpectColumnValuesToMatchRegex", column="period", regex=r"^\d{4}(?:Q[1-4])?$"),
    _in_set("period_type", ["quarter", "year"]),
)

DERIVED = (
    *_not_null("metric", "period", "period_type", "geo_level", "geo_code", "industry", "measure", "status"),
    _in_set("measure", ["growth", "rank", "rank_change", "growth_rank", "share_of_national", "top3_share",
                        "top5_share", "top10_share", "industry_multiple", "share_within_geo", "cluster_mean",
                        "contribution_geo", "contribution_industry", "per_million_residents", "usage_ratio", "hhi",
                        "gini", "theil", "theil_between", "theil_within"]),
    _in_set("comparison", ["qoq", "yoy", "since_base", "vs_prev_year", "by_province", "by_tier"]),
    _in_set("status", ["ok", "new", "suppressed"]),
    _in_set("geo_level", LEVELS),
)

SHIFT_SHARE = (
    *_not_null("metric", "period", "period_type", "reference_period", "geo_level", "geo_code", "status"),
    _in_set("metric", ["cloud", "ai"]),
    _in_set("period_type", ["quarter", "year"]),
    _in_set("geo_level", ["province", "city"]),
    _in_set("status", ["ok", "new", "suppressed"]),
    _unique("metric", "period", "period_type", "geo_level", "geo_code"),
)
