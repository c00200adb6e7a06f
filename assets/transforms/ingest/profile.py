"""Profiling raw files: rows, nulls, date and amount ranges per quarter, from a Parquet footer where it can tell,
else in one pass over the file."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.transforms.errors import InputError
from assets.transforms.ingest.read import END_DATE, FIRST_DATE, RAW_TEXT, amount_as_float, failing_column, file_format, parse_usage_date

PROFILE_STRUCT = pl.Struct({"q": pl.String, "rows": pl.Int64,
                            **{f"null_{c}": pl.Int64 for c in RAW_TEXT},
                            "min_date": pl.Date, "max_date": pl.Date, "min_amount": pl.Float64,
                            "max_amount": pl.Float64, "sum_amount": pl.Float64})
PROFILE_FIELDS = list(PROFILE_STRUCT.to_schema())


def profile_file(path: Path, lf: pl.LazyFrame, schema: pl.Schema) -> dict:
    """rows, undated_rows, quarters, quarter_rows and profile (per quarter: rows, nulls per column, date and amount
    ranges, amount sum) of one file, from its Parquet footer where that can tell, else in one pass over it."""
    counts = _footer_counts(path, schema)
    if counts is None:
        columns = [c for c in RAW_TEXT if c in schema]
        try:  # every column decoded, so a corrupt page stops the run now, naming file and column
            date = parse_usage_date(schema["usage_date"])
            counts = (lf.with_columns(date.alias("_date"), amount_as_float(schema).alias("_amount"))
                      .group_by(pl.col("_date").dt.year().cast(pl.Int32).alias("_year"),
                                pl.col("_date").dt.quarter().alias("_q"))
                      .agg(pl.len(), *(pl.col(c).null_count().alias(f"null_{c}") for c in columns),
                           pl.col("_date").min().alias("min_date"), pl.col("_date").max().alias("max_date"),
                           pl.col("_amount").min().alias("min_amount"), pl.col("_amount").max().alias("max_amount"),
                           pl.col("_amount").sum().alias("sum_amount"))
                      .collect(engine="streaming")
                      .with_columns(pl.concat_str("_year", pl.lit("Q"), "_q").alias("q")).drop("_year", "_q"))
        except Exception as exc:
            raise InputError(f"{path}: unreadable in column '{failing_column(lf, columns) or 'usage_date'}' "
                             f"({str(exc).splitlines()[0][:160]})") from exc
    dated = counts.filter(pl.col("q").is_not_null()).sort("q")
    return {"rows": int(counts["len"].sum()), "undated_rows": int(counts.filter(pl.col("q").is_null())["len"].sum()),
            "quarters": dated["q"].to_list(), "quarter_rows": [int(n) for n in dated["len"]],
            "profile": [{k: (r.get(k) if k != "rows" else r["len"]) for k in PROFILE_FIELDS}
                        for r in dated.iter_rows(named=True)]}


def _footer_counts(path: Path, schema: pl.Schema) -> pl.DataFrame | None:
    """The profile of a Parquet file whose footer statistics put every row on a plausible date of one quarter
    (typical: a delivery per quarter, month or day): rows, nulls and ranges from the footer, only the amount read
    (for its sum). None where the footer cannot tell (text dates, no statistics, several quarters, null dates)."""
    if file_format(path) != "parquet" or schema["usage_date"] != pl.Date or not schema["amount"].is_numeric():
        return None
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    index = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    columns = [c for c in RAW_TEXT if c in schema]
    stats = {c: [meta.row_group(g).column(index[c]).statistics for g in range(meta.num_row_groups)]
             for c in columns}
    if meta.num_rows == 0 or not all(s is not None and s.has_null_count for c in columns for s in stats[c]):
        return None
    if not all(s.has_min_max or s.null_count == s.num_values for c in ("usage_date", "amount") for s in stats[c]):
        return None
    nulls = {c: sum(s.null_count for s in stats[c]) for c in columns}
    if nulls["usage_date"]:
        return None
    lo, hi = (min(s.min for s in stats["usage_date"]), max(s.max for s in stats["usage_date"]))
    quarter = f"{lo.year}Q{(lo.month - 1) // 3 + 1}"
    if not (FIRST_DATE <= lo and hi < END_DATE and quarter == f"{hi.year}Q{(hi.month - 1) // 3 + 1}"):
        return None
    amounts = [s for s in stats["amount"] if s.has_min_max]
    total = pl.scan_parquet(path).select(pl.col("amount").cast(pl.Float64).sum()).collect(engine="streaming").item()
    return pl.DataFrame([{"q": quarter, "len": meta.num_rows,
                          **{f"null_{c}": n for c, n in nulls.items()}, "min_date": lo, "max_date": hi,
                          "min_amount": float(min(s.min for s in amounts)) if amounts else None,
                          "max_amount": float(max(s.max for s in amounts)) if amounts else None,
                          "sum_amount": total}])


def quarter_profile(inventory: pl.DataFrame, quarter: str) -> pl.DataFrame:
    """Per source file, the quarter's profile that the inventory took while reading every column once: rows, nulls
    per column (none for a column the file lacks), date and amount ranges. No raw row is read again."""
    profile = (inventory.filter(pl.col("status") == "ingested").select("source_file", "profile")
               .explode("profile").drop_nulls("profile").unnest("profile"))
    return profile.filter(pl.col("q") == quarter).drop("q").sort("source_file")
