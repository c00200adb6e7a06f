"""Reading raw files: find them, check they are readable and complete, and read them as uniform lazy frames.

Nothing here collects a raw quarter: files are scanned lazily.
"""
from __future__ import annotations

import codecs
import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from assets.transforms.errors import InputError
from assets.transforms.quarters import in_quarters

REQUIRED = ("usage_date", "account_id", "region_code", "amount")
RAW_TEXT = ("usage_date", "account_id", "region_code", "industry", "product", "metric", "amount", "customer_id")
RAW_SCHEMA = {
    "usage_date": pl.Date, "usage_date_raw": pl.String, "account_id": pl.String, "region_code": pl.String,
    "industry": pl.String, "product": pl.String, "metric": pl.String, "amount": pl.Float64,
    "amount_raw": pl.String, "source_file": pl.String, "source_row": pl.Int64, "customer_id": pl.String,
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
    """Every required column present (all missing ones named at once) and of a type that can hold its values."""
    missing = [c for c in REQUIRED if c not in schema]
    if "product" not in schema and "metric" not in schema:
        missing.append("product' (or 'metric")
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise InputError(f"{path}: missing required column{'s' if len(missing) > 1 else ''} {names}"
                         f"{_separator_hint(path, schema)}")
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


def amount_as_float(schema: pl.Schema) -> pl.Expr:
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
    return lf.select(
        date.alias("usage_date"),
        date_text.alias("usage_date_raw"),
        *(_text(c, schema) for c in ("account_id", "region_code", "industry", "product", "metric")),
        amount_as_float(schema).alias("amount"),
        # text sources keep the amount as read, for the quarantine; typed ones only where it is missing
        (amount_text if not schema["amount"].is_numeric() else pl.lit(None, dtype=pl.String)).alias("amount_raw"),
        pl.lit(source_file, dtype=file_type).alias("source_file"),
        pl.col("source_row").cast(pl.Int64),
        _text("customer_id", schema),  # optional: privacy's contributor; never published
    )


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
