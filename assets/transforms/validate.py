"""Validate: resolve each raw row's region, industry and metric, and give every bad row one reason.

The rules and their order are CONTRACT.md's "Quarantine" section; the first reason that applies wins.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.transforms.ingest import quarter_label
from assets.transforms.reference import Reference

REASONS = ("invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
           "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount")
QUARANTINE_COLUMNS = ("quarter", "source_file", "source_row", "reason", "usage_date", "account_id", "region_code",
                      "industry", "product", "metric", "amount")
# Amounts are summed as exact decimals (to 1e-9 yuan): float sums depend on the order rows arrive in, which a
# parallel, streaming engine does not fix, and reruns must publish byte-identical indices.
EXACT = pl.Decimal(38, 9)
ACCOUNT_USAGE_SCHEMA = {"metric": pl.String, "geo_code": pl.String, "province_code": pl.String,
                        "industry": pl.String, "account_id": pl.String, "amount": EXACT, "rows": pl.UInt32}


# An amount above this (yuan, one billing line) is not plausible (China's GDP is ~1.3e14 a year) -> invalid_amount.
# It also keeps every sum and 100 x sum far from float64 overflow (1e9 such rows sum to 1e24).
MAX_AMOUNT = 1e15
_ODD = r"[^\x21-\x7e]"  # anything but printable, non-space ASCII: only such values need Unicode cleaning


def _blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr == "")


def _only_odd(fix):
    """Apply `fix` to the values holding a non-ASCII or space character only, so clean data costs one scan."""
    def apply(series: pl.Series) -> pl.Series:
        idx = series.str.contains(_ODD).arg_true()
        return series if idx.len() == 0 else series.clone().scatter(idx, fix(series.gather(idx)))
    return apply


def clean_code(expr: pl.Expr) -> pl.Expr:
    """A code or name as matched against the seeds: NFKC (full-width digits and letters, ideographic spaces), no
    zero-width or other format characters (Unicode Cf), trimmed."""
    fix = _only_odd(lambda s: s.str.normalize("NFKC").str.replace_all(r"\p{Cf}+", "").str.strip_chars())
    return expr.map_batches(fix, return_dtype=pl.String, is_elementwise=True)


def clean_account(expr: pl.Expr) -> pl.Expr:
    """An account id is opaque (emoji and all; never folded, so distinct ids stay distinct); only whitespace and
    format characters at its ends are dropped, so an id of zero-width spaces is missing."""
    fix = _only_odd(lambda s: s.str.replace_all(r"^[\s\p{Cf}]+|[\s\p{Cf}]+$", ""))
    return expr.map_batches(fix, return_dtype=pl.String, is_elementwise=True)


def _resolver(ref: Reference):
    """A batch function: the raw code columns -> the keys and codes they resolve to.

    Few distinct spellings recur over millions of rows, so each column is cleaned and looked up once per distinct
    value in the batch (the same functions as row by row, so the same result) and the answers joined back.
    """
    regions = ref.region_lookup().rename({"code": "region_key"})
    industries = ref.industry_lookup().rename({"spelling": "industry_key", "code": "industry_code"})
    products = ref.product_lookup().rename({"product": "product_key"})
    keyed = {
        "region_code": lambda c: (clean_code(c).str.replace(r"\.0+$", "").alias("region_key"), regions),
        "industry": lambda c: (clean_code(c).str.to_lowercase().alias("industry_key"), industries),
        "product": lambda c: (clean_code(c).str.to_lowercase().alias("product_key"), products),
        "metric": lambda c: (clean_code(c).str.to_lowercase().alias("metric_key"), None),
    }

    def resolve(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        out = [frame.select(clean_account(pl.col("account_id")).alias("account_key")).to_series()]
        for column, make in keyed.items():
            values = frame.get_column(column)
            key, lookup = make(pl.col(column))
            distinct = values.unique().to_frame().with_columns(key)
            if lookup is not None:
                distinct = distinct.join(lookup, on=key.meta.output_name(), how="left")
            mapped = (values.to_frame().join(distinct, on=column, how="left", nulls_equal=True,
                                             maintain_order="left").drop(column))
            out.extend(mapped.get_columns())
        return pl.DataFrame(out).to_struct(batch.name)
    return resolve


_RESOLVED = {"account_key": pl.String, "region_key": pl.String, "geo_code": pl.String, "province_code": pl.String,
             "industry_key": pl.String, "industry_code": pl.String, "product_key": pl.String,
             "product_metric": pl.String, "metric_key": pl.String}


def classify_rows(rows: pl.LazyFrame, ref: Reference) -> pl.LazyFrame:
    """Add the resolved `geo_code`, `province_code`, `industry_code` and `metric_code`, and `reason` (null = good)."""
    metric_text = pl.col("metric_key")
    resolved = rows.with_columns(
        pl.struct("region_code", "industry", "product", "metric", "account_id")
        .map_batches(_resolver(ref), return_dtype=pl.Struct(_RESOLVED), is_elementwise=True)
        .alias("_resolved")
    ).unnest("_resolved")
    has_metric = ~_blank(metric_text)
    reason = (
        pl.when(pl.col("usage_date").is_null()).then(pl.lit("invalid_date"))
        .when(_blank(pl.col("account_key"))).then(pl.lit("missing_account"))
        .when(_blank(pl.col("region_key"))).then(pl.lit("missing_region"))
        .when(pl.col("geo_code").is_null()).then(pl.lit("unknown_region"))
        .when(~_blank(pl.col("industry_key")) & pl.col("industry_code").is_null()).then(pl.lit("unknown_industry"))
        .when(has_metric & ~metric_text.is_in(["cloud", "ai"])).then(pl.lit("invalid_metric"))
        .when(~has_metric & pl.col("product_metric").is_null()).then(pl.lit("unknown_product"))
        .when(has_metric & pl.col("product_metric").is_not_null() & (pl.col("product_metric") != metric_text))
        .then(pl.lit("metric_conflict"))
        .when(pl.col("amount").is_null() | ~pl.col("amount").is_finite() | (pl.col("amount") < 0)
              | (pl.col("amount") > MAX_AMOUNT))
        .then(pl.lit("invalid_amount"))
    )
    return resolved.with_columns(
        reason.alias("reason"),
        pl.col("industry_code").fill_null("other"),
        pl.when(has_metric).then(metric_text).otherwise(pl.col("product_metric")).alias("metric_code"),
    ).drop("region_key", "industry_key", "product_key", "metric_key", "product_metric")


def aggregate_account_usage(classified: pl.LazyFrame) -> pl.LazyFrame:
    """Good rows summed per metric x city-level geo x industry x account, with how many raw rows each holds."""
    return (classified.filter(pl.col("reason").is_null())
            .group_by(pl.col("metric_code").alias("metric"), "geo_code", "province_code",
                      pl.col("industry_code").alias("industry"), pl.col("account_key").alias("account_id"))
            .agg(pl.col("amount").cast(EXACT).sum(), pl.len().cast(pl.UInt32).alias("rows")))


def select_quarantine(classified: pl.LazyFrame) -> pl.LazyFrame:
    """Bad rows with their values as read (text), where they came from, and their reason."""
    return (classified.filter(pl.col("reason").is_not_null())
            .select(quarter_label(pl.col("usage_date")).alias("quarter"), "source_file", "source_row", "reason",
                    pl.col("usage_date_raw").alias("usage_date"), "account_id", "region_code", "industry",
                    "product", "metric",
                    pl.coalesce(pl.col("amount_raw"), pl.col("amount").cast(pl.String)).alias("amount")))


def usage_and_quarantine(classified: pl.LazyFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`aggregate_account_usage` and `select_quarantine` of the same rows, in one streaming pass over them.

    Run as two queries, the raw rows would be read and classified twice. Here each bad row is a group of its own,
    keyed by its quarantine record (null for good rows), beside the good rows' per-account groups; the quarantine is
    put back in input order (file by file in path order, as `read_raw` concatenates them, then by row).
    """
    bad = pl.col("reason").is_not_null()
    record = pl.struct(quarter_label(pl.col("usage_date")).alias("quarter"), "source_file", "source_row", "reason",
                       pl.col("usage_date_raw").alias("usage_date"), "account_id", "region_code", "industry",
                       "product", "metric",
                       pl.coalesce(pl.col("amount_raw"), pl.col("amount").cast(pl.String)).alias("amount"))
    groups = (classified
              .group_by(pl.col("metric_code").alias("metric"), "geo_code", "province_code",
                        pl.col("industry_code").alias("industry"), pl.col("account_key").alias("account_id"),
                        pl.when(bad).then(record).alias("_quarantine"))
              .agg(pl.when(~bad).then(pl.col("amount")).cast(EXACT).sum(), pl.len().cast(pl.UInt32).alias("rows"))
              .collect(engine="streaming"))
    usage = groups.filter(pl.col("_quarantine").is_null()).drop("_quarantine")
    quarantine = groups.filter(pl.col("_quarantine").is_not_null()).select(pl.col("_quarantine").struct.unnest())
    if quarantine.height:
        files = sorted(set(quarantine["source_file"].to_list()), key=Path)
        order = pl.DataFrame({"source_file": files, "_file": range(len(files))})
        quarantine = (quarantine.join(order, on="source_file", how="left", maintain_order="left")
                      .sort("_file", "source_row", maintain_order=True).drop("_file"))
    return usage, quarantine
