"""One Great Expectations suite per guarded asset, as tuples of expectation factories (built once per process).

Row-level stages are validated on a bounded sample; aggregated tables whole.
"""
import great_expectations.expectations as gxe

REASONS = ["invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
           "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount"]
LEVELS = ["national", "province", "city", "tier", "cluster"]


def _not_null(*columns):
    return tuple((lambda c=c: gxe.ExpectColumnValuesToNotBeNull(column=c)) for c in columns)


RAW_SAMPLE = (
    *(lambda c=c: gxe.ExpectColumnToExist(column=c) for c in ("usage_date", "account_id", "region_code", "amount")),
    *_not_null("usage_date", "source_file", "source_row"),
    lambda: gxe.ExpectCompoundColumnsToBeUnique(column_list=["source_file", "source_row"]),
)

ACCOUNT_USAGE_SAMPLE = (
    *_not_null("metric", "geo_code", "province_code", "industry", "account_id", "amount"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="metric", value_set=["cloud", "ai"]),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=1),
)

QUARANTINE = (
    *_not_null("source_file", "source_row", "reason"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=REASONS),
)

USAGE_CUBE = (
    *_not_null("metric", "geo_level", "geo_code", "industry", "amount", "accounts"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="geo_level", value_set=LEVELS),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="accounts", min_value=0),
    lambda: gxe.ExpectCompoundColumnsToBeUnique(column_list=["metric", "geo_level", "geo_code", "industry"]),
)

BASE_TOTALS = (
    *_not_null("metric", "base_period", "base_amount"),
    lambda: gxe.ExpectColumnValuesToBeUnique(column="metric"),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="base_amount", min_value=0, strict_min=True),
)

INDICES = (
    *_not_null("metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "industry", "value",
               "accounts", "status", "base_period"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="metric", value_set=["cloud", "ai"]),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="geo_level", value_set=LEVELS),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["ok", "suppressed"]),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="value", min_value=0),
    lambda: gxe.ExpectColumnValuesToBeBetween(column="accounts", min_value=0),
    lambda: gxe.ExpectCompoundColumnsToBeUnique(
        column_list=["metric", "period", "period_type", "geo_level", "geo_code", "industry"]),
)

PUBLISHED_INDICES = INDICES + (
    lambda: gxe.ExpectColumnValuesToMatchRegex(column="period", regex=r"^\d{4}(Q[1-4])?$"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="period_type", value_set=["quarter", "year"]),
)

DERIVED = (
    *_not_null("metric", "period", "period_type", "geo_level", "geo_code", "industry", "measure", "status"),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="measure", value_set=[
        "growth", "rank", "rank_change", "growth_rank", "share_of_national", "top3_share", "top5_share",
        "top10_share", "industry_multiple", "share_within_geo", "cluster_mean"]),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="comparison", value_set=["qoq", "yoy", "since_base",
                                                                            "vs_prev_year"]),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["ok", "new", "suppressed"]),
    lambda: gxe.ExpectColumnValuesToBeInSet(column="geo_level", value_set=LEVELS),
)
