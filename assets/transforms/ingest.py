"""Ingest: find the raw files, check they are readable and complete, and read them as uniform lazy frames.

Nothing here collects a raw quarter: files are scanned lazily and only their dates (one column) are read to find
the quarters they hold.
"""
from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import polars as pl

REQUIRED = ("usage_date", "account_id", "region_code", "amount")
RAW_TEXT = ("usage_date", "account_id", "region_code", "industry", "product", "metric", "amount")
RAW_SCHEMA = {
    "usage_date": pl.Date, "usage_date_raw": pl.String, "account_id": pl.String, "region_code": pl.String,
    "industry": pl.String, "product": pl.String, "metric": pl.String, "amount": pl.Float64,
    "amount_raw": pl.String, "source_file": pl.String, "source_row": pl.Int64,
}
CST = "Asia/Shanghai"
# ISO forms only: a date, or a date-time with or without a zone (zoned ones are converted to China Standard Time).
_ZONED = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f")
# Plausible billing dates: before 2000 or from 2100 on a date is a sentinel (1970-01-01, 1900-01-01, 9999-12-31),
# so the row is quarantined `invalid_date`. Fixed bounds, not the clock: a run stays a pure function of its input.
FIRST_DATE, END_DATE = dt.date(2000, 1, 1), dt.date(2100, 1, 1)
# Column types a typed (Parquet) file may carry; anything else (lists, structs, booleans, binary...) is an error.
_TEXTUAL = (pl.String, pl.Categorical, pl.Enum, pl.Null)


class InputError(Exception):
    """A whole-input error: the run stops with this one line, which names the file and column."""


def list_raw_files(raw: str | Path) -> list[Path]:
    """The Parquet and CSV files under `raw` (a file or a directory, hive-partitioned or not), in path order."""
    root = Path(raw)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"{root}: no such file or directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".csv")
                   and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))
    if not files:
        raise InputError(f"{root}: no .parquet or .csv files")
    return files


def file_format(path: Path) -> str:
    return "csv" if path.suffix.lower() == ".csv" else "parquet"


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scan_file(path: Path) -> tuple[pl.LazyFrame, pl.Schema]:
    """The file as read, with a 1-based `source_row`; CSV columns stay text, so nothing is guessed."""
    try:
        if file_format(path) == "csv":
            lf = pl.scan_csv(path, infer_schema=False, row_index_name="source_row", row_index_offset=1,
                             raise_if_empty=False)
        else:
            lf = pl.scan_parquet(path, row_index_name="source_row", row_index_offset=1, hive_partitioning=False)
        schema = lf.collect_schema()
    except Exception as exc:  # polars raises several types for unreadable files; all mean the same here
        raise InputError(f"{path}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from exc
    return lf, schema


def check_columns(path: Path, schema: pl.Schema) -> None:
    for column in REQUIRED:
        if column not in schema:
            raise InputError(f"{path}: missing required column '{column}'{_separator_hint(path, schema)}")
    if "product" not in schema and "metric" not in schema:
        raise InputError(f"{path}: missing required column 'product' (or 'metric')")
    for column in RAW_TEXT:
        if column in schema and not _type_ok(column, schema[column]):
            raise InputError(f"{path}: column '{column}' has type {schema[column]}, expected "
                             f"{'a number' if column == 'amount' else 'a date or ISO text' if column == 'usage_date' else 'text'}")


def _type_ok(column: str, dtype: pl.DataType) -> bool:
    if isinstance(dtype, _TEXTUAL) or dtype in _TEXTUAL:
        return True
    if column == "usage_date":
        return dtype == pl.Date or isinstance(dtype, pl.Datetime)
    if column == "amount":
        return dtype.is_numeric()
    return dtype.is_integer() or (column == "region_code" and dtype.is_float())  # codes and ids as integers


def _separator_hint(path: Path, schema: pl.Schema) -> str:
    """For a CSV whose header is one column holding another separator: say which, as the likely cause."""
    if file_format(path) != "csv" or len(schema) > 2:
        return ""
    header = next((c for c in schema if c != "source_row"), "")
    for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if "usage_date" in [c.strip() for c in header.split(sep)]:
            return f" (the header is {name}-separated; CSV must be comma-separated)"
    return ""


def check_utf8(path: Path) -> None:
    """A CSV must be UTF-8 (a BOM is fine): the first bad byte is reported with its line and column."""
    decoder, line_start, lines = codecs.getincrementaldecoder("utf-8")(), b"", 1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                before = block[:exc.start]
                _bad_text(path, lines + before.count(b"\n"), (line_start + before).rsplit(b"\n", 1)[-1])
            lines += block.count(b"\n")
            line_start = (line_start + block).rsplit(b"\n", 1)[-1]
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            _bad_text(path, lines, line_start)


def _bad_text(path: Path, line: int, prefix: bytes) -> None:
    with open(path, "rb") as f:
        header = f.readline().decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")
    field = prefix.count(b",")
    where = (f"line {line}, column '{header[field].strip()}'" if line > 1 and field < len(header)
             else f"line {line} (the header)")
    raise InputError(f"{path}: not UTF-8 text at {where} ({_guess_encoding(path)}; re-encode the file as UTF-8)")


def _guess_encoding(path: Path) -> str:
    head = path.open("rb").read(1 << 16)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "it looks like UTF-16"
    try:
        head.decode("gb18030")
        return "it looks like GBK/GB18030"
    except UnicodeDecodeError:
        return "unknown encoding"


def parse_usage_date(dtype: pl.DataType) -> pl.Expr:
    """usage_date as a calendar date in China Standard Time; null where it is not a valid ISO date."""
    col = pl.col("usage_date")
    if dtype == pl.Date:
        return _plausible(col)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return _plausible(col.dt.convert_time_zone(CST).dt.date())
        return _plausible(col.dt.date())
    text = col.cast(pl.String).str.strip_chars()
    zulu = text.str.replace(r"[Zz]$", "+00:00")
    zoned = [zulu.str.to_datetime(f, strict=False, time_unit="us").dt.convert_time_zone(CST).dt.date()
             for f in _ZONED]
    naive = [text.str.to_datetime(f, strict=False, time_unit="us").dt.date() for f in _NAIVE]
    plain = text.str.to_date("%Y-%m-%d", strict=False)
    return _plausible(pl.coalesce(pl.when(text.str.len_chars() == 10).then(plain), *zoned, *naive))


def _plausible(date: pl.Expr) -> pl.Expr:
    """Null (-> `invalid_date`) outside FIRST_DATE..END_DATE."""
    return pl.when(date.is_between(pl.lit(FIRST_DATE), pl.lit(END_DATE), closed="left")).then(date)


def _text(name: str, schema: pl.Schema) -> pl.Expr:
    if name not in schema:
        return pl.lit(None, dtype=pl.String).alias(name)
    if schema[name] == pl.Date:
        return pl.col(name).dt.to_string("%Y-%m-%d").alias(name)
    return pl.col(name).cast(pl.String).alias(name)


PROFILE_STRUCT = pl.Struct({"q": pl.String, "rows": pl.Int64,
                            **{f"null_{c}": pl.Int64 for c in RAW_TEXT},
                            "min_date": pl.Date, "max_date": pl.Date, "min_amount": pl.Float64,
                            "max_amount": pl.Float64, "sum_amount": pl.Float64})
PROFILE_FIELDS = list(PROFILE_STRUCT.to_schema())


def _amount(schema: pl.Schema) -> pl.Expr:
    """amount as a float: numbers as they are, text parsed (null where it is not a number)."""
    if schema["amount"].is_numeric():
        return pl.col("amount").cast(pl.Float64)
    return _text("amount", schema).str.strip_chars().cast(pl.Float64, strict=False)


def normalise_file(lf: pl.LazyFrame, schema: pl.Schema, source_file: str,
                   file_type: pl.DataType = pl.String) -> pl.LazyFrame:
    """One raw file in the uniform raw schema: parsed date and amount beside the text as read.

    Text stays as read (trimming and Unicode cleaning are the resolution's, on distinct spellings); a typed date's
    text is kept only where it does not parse, as elsewhere it is the parsed date's.
    """
    date = parse_usage_date(schema["usage_date"])
    date_text = _text("usage_date", schema)
    if schema["usage_date"] == pl.Date:
        date_text = pl.when(date.is_null()).then(date_text)
    amount_text = _text("amount", schema).str.strip_chars()
    if schema["amount"].is_numeric():
        amount = pl.col("amount").cast(pl.Float64)
    else:
        amount = amount_text.cast(pl.Float64, strict=False)
    return lf.select(
        date.alias("usage_date"),
        date_text.alias("usage_date_raw"),
        *(_text(c, schema) for c in ("account_id", "region_code", "industry", "product", "metric")),
        amount.alias("amount"),
        # text sources keep the amount as read, for the quarantine; typed ones only where it is missing
        (amount_text if not schema["amount"].is_numeric() else pl.lit(None, dtype=pl.String)).alias("amount_raw"),
        pl.lit(source_file, dtype=file_type).alias("source_file"),
        pl.col("source_row").cast(pl.Int64),
    )


def quarter_label(date: pl.Expr) -> pl.Expr:
    return pl.concat_str(date.dt.year().cast(pl.String), pl.lit("Q"), date.dt.quarter().cast(pl.String))


def quarter_bounds(quarter: str) -> tuple:
    import datetime as dt
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


def inventory_files(raw: str | Path, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per raw file: path, content hash, format, rows, rows by quarter, undated rows.

    Byte-identical files are one delivery: the later copies are listed with status `duplicate` and not read.
    A file listed in `known` (a release's inventory) at the same path, size and modification time is taken from
    there unread, so a landing folder that keeps growing costs only its new files.
    """
    root = Path(raw)
    rows, seen = [], {}
    unchanged = {} if known is None or "mtime_ns" not in known.columns else {
        (r["path"], r["bytes"], r["mtime_ns"]): r for r in known.iter_rows(named=True)}
    files = [(path, path.stat()) for path in list_raw_files(root)]
    known_as = {path: unchanged.get((str(path.resolve()), stat.st_size, stat.st_mtime_ns)) for path, stat in files}
    new = [path for path, _ in files if known_as[path] is None]
    # hashing releases the GIL: the new files are hashed on every core while the loop profiles them one by one
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(new), os.cpu_count() or 1)))
    try:
        digests = {path: pool.submit(content_hash, path) for path in new}
        for path, stat in files:
            previous = known_as[path]
            if previous is not None:
                seen.setdefault(previous["sha256"], previous["source_file"])
                rows.append(previous)
            else:
                rows.append(_inventory_entry(root, path, stat, digests[path], seen))
    finally:
        pool.shutdown(cancel_futures=True)  # a bad file stops the inventory without hashing the rest
    return pl.DataFrame(rows, schema={"source_file": pl.String, "path": pl.String, "sha256": pl.String,
                                      "format": pl.String, "bytes": pl.Int64, "mtime_ns": pl.Int64,
                                      "status": pl.String, "rows": pl.Int64,
                                      "undated_rows": pl.Int64, "quarters": pl.List(pl.String),
                                      "quarter_rows": pl.List(pl.Int64), "profile": pl.List(PROFILE_STRUCT)})


def _inventory_entry(root: Path, path: Path, stat: os.stat_result, hashing: Future, seen: dict) -> dict:
    """One new file's inventory row (checked, then profiled unless it is a copy of one `seen`)."""
    if file_format(path) == "csv":
        check_utf8(path)
    lf, schema = scan_file(path)
    check_columns(path, schema)
    digest = hashing.result()
    name = str(path.relative_to(root)) if root.is_dir() else path.name
    entry = {"source_file": name, "path": str(path.resolve()), "sha256": digest, "format": file_format(path),
             "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "status": "duplicate" if digest in seen else "ingested",
             "rows": 0, "undated_rows": 0, "quarters": [], "quarter_rows": [], "profile": []}
    if digest not in seen:
        seen[digest] = name
        entry.update(profile_file(path, lf, schema))
    return entry


def profile_file(path: Path, lf: pl.LazyFrame, schema: pl.Schema) -> dict:
    """rows, undated_rows, quarters, quarter_rows and profile (per quarter: rows, nulls per column, date and amount
    ranges, amount sum) of one file, from its Parquet footer where that can tell, else in one pass over it."""
    counts = _footer_counts(path, schema)
    if counts is None:
        columns = [c for c in RAW_TEXT if c in schema]
        try:  # every column decoded, so a corrupt page stops the run now, naming file and column
            date = parse_usage_date(schema["usage_date"])
            counts = (lf.with_columns(date.alias("_date"), _amount(schema).alias("_amount"))
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


def failing_column(lf: pl.LazyFrame, columns: list[str]) -> str | None:
    """The first of `columns` that cannot be decoded, or None (hashing every value: footers cannot answer it)."""
    for column in columns:
        try:
            lf.select(pl.col(column).hash().sum()).collect()
        except Exception:
            return column
    return None


@contextmanager
def unreadable_named(inventory: pl.DataFrame, quarters: list[str] | None = None):
    """Turn a failure to decode the raw files (a corrupt page the footer did not show) into an InputError naming
    the first file and column that cannot be read; other failures pass through."""
    try:
        yield
    except Exception as exc:
        for entry in inventory.filter(pl.col("status") == "ingested").iter_rows(named=True):
            if quarters is not None and not set(quarters) & set(entry["quarters"]):
                continue
            lf, schema = scan_file(Path(entry["path"]))
            column = failing_column(lf, [c for c in RAW_TEXT if c in schema])
            if column is not None:
                raise InputError(f"{entry['path']}: unreadable in column '{column}' "
                                 f"({str(exc).splitlines()[0][:160]})") from exc
        raise


def data_quarters(inventory: pl.DataFrame) -> list[str]:
    """The contiguous quarters from the earliest to the latest quarter with rows."""
    present = sorted(set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls()))
    if not present:
        raise InputError(f"{inventory['source_file'][0] if inventory.height else 'input'}: "
                         "no rows with a valid usage_date in column 'usage_date'")
    return quarters_between(present[0], present[-1])


def read_raw(inventory: pl.DataFrame, quarters: list[str] | None = None, first: int | None = None) -> pl.LazyFrame:
    """All ingested files in one schema, lazily; restricted to `quarters` (by usage_date) if given, and to the
    `first` rows if given (a sample: then a file is read only as far as that takes).

    `source_file` is an enum of the files in path order, so sorting on it puts rows back in input order.
    """
    files = inventory.filter(pl.col("status") == "ingested")
    names = pl.Enum(list(dict.fromkeys(files["source_file"])))  # a name delivered again is one category
    frames = []
    for entry in files.iter_rows(named=True):
        if quarters is not None and not set(quarters) & set(entry["quarters"]):
            continue  # prune files with no rows in these quarters
        lf, schema = scan_file(Path(entry["path"]))
        frame = normalise_file(lf, schema, entry["source_file"], names)
        if first is not None and (quarters is None or set(entry["quarters"]) <= set(quarters)):
            # the rows the filter drops are its undated ones: its first rows in these quarters are within these
            frame = frame.head(first + entry["undated_rows"])
        if quarters is not None:
            frame = frame.filter(in_quarters(pl.col("usage_date"), quarters))
        frames.append(frame)
    if not frames:
        return pl.LazyFrame(schema={**RAW_SCHEMA, "source_file": names})
    rows = pl.concat(frames, how="vertical")
    return rows if first is None else rows.head(first)


def in_quarters(date: pl.Expr, quarters: list[str]) -> pl.Expr:
    """Whether `date` falls in one of `quarters`: date comparisons, cheaper per row than labelling each one."""
    return pl.any_horizontal(date.is_between(*map(pl.lit, quarter_bounds(q)), closed="left") for q in quarters)


def undated_rows(inventory: pl.DataFrame) -> pl.LazyFrame:
    """Rows whose usage_date is not a valid date: they belong to no quarter, so they are quarantined at intake."""
    frames = []
    for entry in inventory.filter((pl.col("status") == "ingested") & (pl.col("undated_rows") > 0)).iter_rows(named=True):
        lf, schema = scan_file(Path(entry["path"]))
        # find the (few) undated rows from the date column alone, then normalise only them
        lf = lf.filter(parse_usage_date(schema["usage_date"]).is_null())
        frames.append(normalise_file(lf, schema, entry["source_file"]).filter(pl.col("usage_date").is_null()))
    if not frames:
        return pl.LazyFrame(schema=RAW_SCHEMA)
    return pl.concat(frames, how="vertical")


def quarter_profile(inventory: pl.DataFrame, quarter: str) -> pl.DataFrame:
    """Per source file, the quarter's profile that the inventory took while reading every column once: rows, nulls
    per column (none for a column the file lacks), date and amount ranges. No raw row is read again."""
    profile = (inventory.filter(pl.col("status") == "ingested").select("source_file", "profile")
               .explode("profile").drop_nulls("profile").unnest("profile"))
    return profile.filter(pl.col("q") == quarter).drop("q").sort("source_file")


def merge_inventory(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.DataFrame:
    """A release's inventory after a new delivery: what it held, plus each file not listed before.

    A file whose bytes the release already ingested (same sha256) is a `duplicate`, whatever its name. A file
    delivered again at the same path with other bytes replaces the earlier delivery, which is then `replaced`
    (no longer read: its rows were overwritten).
    """
    if previous is None or previous.height == 0:
        return current
    known = set(previous.filter(pl.col("status") == "ingested")["sha256"])
    new = (current.join(previous.select("source_file", "sha256"), on=["source_file", "sha256"], how="anti")
           .with_columns(pl.when(pl.col("sha256").is_in(list(known))).then(pl.lit("duplicate"))
                      .otherwise(pl.col("status")).alias("status")))
    overwritten = (pl.col("status") == "ingested") & pl.col("path").is_in(new["path"].implode())
    previous = previous.with_columns(pl.when(overwritten).then(pl.lit("replaced")).otherwise(pl.col("status"))
                                     .alias("status"))
    return pl.concat([previous, new], how="diagonal_relaxed")
