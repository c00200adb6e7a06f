"""Faults in raw input and in the run itself: each gives a clear whole-input error (one line naming the file and
the column) or quarantines the rows with a reason, and rows in = rows used + rows quarantined.
The fault table is in README.md ("Faults"); each row there names the test here that proves it.

Most tests call the pure transforms (tests/fault_fixtures.run_transforms); the CLI is run only where the
behaviour lives in the CLI (the empty-quarter error, exit code and one-line message) and for the killed run.
"""
from __future__ import annotations

import datetime as dt
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers beside this file, package or not
import fault_fixtures as ff  # noqa: E402
from assets.transforms.ingest.read import RAW_TEXT
from assets.transforms.errors import InputError
from assets.transforms.validate import MAX_AMOUNT

QUARTERS = ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]


@pytest.fixture(scope="module")
def good() -> pl.DataFrame:
    return ff.make_raw(QUARTERS, 40, seed=5)


def _error(raw: Path) -> str:
    with pytest.raises(InputError) as caught:
        ff.run_transforms(raw)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def _reconciles(result: dict) -> None:
    assert result["rows_in"] == result["rows_used"] + result["rows_quarantined"]


def _national(result: dict) -> pl.DataFrame:
    return (pl.concat(result["quarterly"].values())
            .filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
            .select("metric", "period", "value", "accounts").sort("metric", "period"))


def _spoil(good: pl.DataFrame, rows: list[int], **values) -> pl.DataFrame:
    """`good` with the given columns set, as text, in the given rows (the rest keep their values as text)."""
    frame = good.with_columns(pl.col("usage_date").cast(pl.String), pl.col("amount").cast(pl.String))
    for column, value in values.items():
        mask = pl.int_range(pl.len()).is_in(rows)
        frame = frame.with_columns(pl.when(mask).then(pl.lit(value, dtype=pl.String)).otherwise(pl.col(column))
                                   .alias(column))
    return frame


# ----------------------------------------------------------------------------------------- unreadable files
def test_truncated_parquet_is_an_error_naming_the_file(good, tmp_path):
    path = ff.write_parquet(good, tmp_path / "raw" / "usage.parquet")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _error(tmp_path / "raw")
    assert "usage.parquet" in message and "unreadable" in message


def test_empty_and_non_parquet_files_are_errors(tmp_path):
    (tmp_path / "a" / "raw").mkdir(parents=True)
    (tmp_path / "a" / "raw" / "usage.parquet").write_bytes(b"")
    assert "usage.parquet: unreadable" in _error(tmp_path / "a" / "raw")
    (tmp_path / "b" / "raw").mkdir(parents=True)
    (tmp_path / "b" / "raw" / "usage.parquet").write_text("usage_date,account_id\n2020-01-01,a\n")
    assert "usage.parquet: unreadable" in _error(tmp_path / "b" / "raw")


def test_corrupt_pages_are_an_error_naming_file_and_column(tmp_path):
    """The footer is intact, so the schema and statistics read; a data page is garbage. The run stops where the
    page is first decoded, with one line naming the file and the column, not with a traceback."""
    frame = ff.make_raw(["2020Q1"], 5000, seed=1)
    path = ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 200):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    message = _error(tmp_path / "raw")
    assert "usage.parquet: unreadable in column '" in message
    column = message.split("column '")[1].split("'")[0]
    assert column in RAW_TEXT


# ----------------------------------------------------------------------------------------- CSV dialects
@pytest.mark.parametrize("encoding, where, hint", [
    ("gbk", "line 2, column 'industry'", "GBK"),
    ("gb18030", "line 2, column 'industry'", "GBK"),
    ("utf-16", "line 1 (the header)", "UTF-16"),
])
def test_csv_in_another_encoding_is_an_error_naming_line_and_column(good, tmp_path, encoding, where, hint):
    frame = good.with_columns(pl.lit("金融").alias("industry"))
    ff.write_csv(frame, tmp_path / "raw" / "usage.csv", encoding=encoding)
    message = _error(tmp_path / "raw")
    assert "usage.csv: not UTF-8 text at " + where in message and hint in message


def test_csv_with_a_byte_order_mark_is_read(good, tmp_path):
    frame = good.with_columns(pl.lit("金融").alias("industry"))
    ff.write_csv(frame, tmp_path / "a" / "usage.csv")
    ff.write_csv(frame, tmp_path / "b" / "usage.csv", encoding="utf-8-sig")
    plain, bom = ff.run_transforms(tmp_path / "a"), ff.run_transforms(tmp_path / "b")
    assert bom["rows_used"] == frame.height and _national(plain).equals(_national(bom))


@pytest.mark.parametrize("separator, name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_csv_with_another_delimiter_is_an_error_naming_it(good, tmp_path, separator, name):
    ff.write_csv(good, tmp_path / "raw" / "usage.csv", separator=separator)
    message = _error(tmp_path / "raw")
    assert "usage.csv: missing required columns 'usage_date', 'account_id'" in message
    assert f"{name}-separated" in message and len(message.splitlines()) == 1


# ----------------------------------------------------------------------------------------- types and columns
def test_amount_as_text_quarantines_the_non_numbers(good, tmp_path):
    frame = _spoil(good, [0, 1, 2, 3], amount="n/a")
    frame = _spoil(frame.with_columns(pl.col("usage_date").str.to_date()), [4], amount="1,234.50")
    frame = _spoil(frame.with_columns(pl.col("usage_date").str.to_date()), [5], amount="")
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    _reconciles(result)
    q = result["quarantine"]
    assert q.height == 6 and set(q["reason"]) == {"invalid_amount"}
    assert sorted(q["amount"].to_list()) == ["", "1,234.50", "n/a", "n/a", "n/a", "n/a"]


def test_integer_ids_and_codes_are_read_as_their_text(tmp_path):
    frame = ff.make_raw(QUARTERS, 40, seed=6, accounts=9).with_columns(
        pl.col("account_id").str.slice(5).cast(pl.Int64), pl.col("region_code").cast(pl.Int64))
    ff.write_parquet(frame, tmp_path / "int" / "usage.parquet")
    ff.write_parquet(frame.with_columns(pl.col("account_id", "region_code").cast(pl.String)),
                     tmp_path / "text" / "usage.parquet")
    as_int, as_text = ff.run_transforms(tmp_path / "int"), ff.run_transforms(tmp_path / "text")
    assert as_int["rows_quarantined"] == 0 and _national(as_int).equals(_national(as_text))
    float_codes = frame.with_columns(pl.col("region_code").cast(pl.Float64))
    ff.write_parquet(float_codes, tmp_path / "float" / "usage.parquet")
    assert _national(ff.run_transforms(tmp_path / "float")).equals(_national(as_text))


@pytest.mark.parametrize("column, dtype", [
    ("amount", pl.List(pl.Float64)), ("amount", pl.Boolean), ("usage_date", pl.Int64),
    ("account_id", pl.Boolean), ("region_code", pl.List(pl.String)), ("industry", pl.Struct({"a": pl.Int64})),
])
def test_a_column_of_an_impossible_type_is_an_error_naming_it(good, tmp_path, column, dtype):
    frame = good.head(10)
    if isinstance(dtype, pl.List):
        frame = frame.with_columns(pl.concat_list(pl.col(column)).alias(column))
    elif isinstance(dtype, pl.Struct):
        frame = frame.with_columns(pl.struct(pl.lit(1).alias("a")).alias(column))
    elif dtype == pl.Int64:
        frame = frame.with_columns(pl.col(column).dt.strftime("%Y%m%d").cast(pl.Int64))
    else:
        frame = frame.with_columns(pl.lit(True).alias(column))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    message = _error(tmp_path / "raw")
    assert f"usage.parquet: column '{column}' has type" in message


@pytest.mark.parametrize("dropped", ["usage_date", "account_id", "region_code", "amount", ("product",)])
def test_a_missing_column_is_an_error_naming_it(good, tmp_path, dropped):
    frame = good.drop(dropped)
    ff.write_csv(frame, tmp_path / "raw" / "usage.csv")
    message = _error(tmp_path / "raw")
    name = dropped if isinstance(dropped, str) else "product"
    assert f"usage.csv: missing required column '{name}'" in message


def test_every_missing_column_is_named_at_once(good, tmp_path):
    ff.write_csv(good.rename({"account_id": "acct", "amount": "cost"}), tmp_path / "raw" / "usage.csv")
    assert _error(tmp_path / "raw").endswith("usage.csv: missing required columns 'account_id', 'amount'")


def test_missing_optional_industry_column_means_other(good, tmp_path):
    ff.write_parquet(good.drop("industry"), tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    assert result["rows_used"] == good.height
    assert set(pl.concat(result["usage"].values())["industry"]) == {"other"}


def test_one_bad_file_among_good_ones_names_that_file(good, tmp_path):
    ff.write_parquet(good, tmp_path / "raw" / "a.parquet")
    ff.write_csv(good.drop("amount"), tmp_path / "raw" / "b.csv")
    assert "b.csv: missing required column 'amount'" in _error(tmp_path / "raw")


# ----------------------------------------------------------------------------------------- duplicates
def test_a_byte_identical_copy_is_skipped(good, tmp_path):
    ff.write_parquet(good, tmp_path / "once" / "usage.parquet")
    shutil.copytree(tmp_path / "once", tmp_path / "twice" / "q1")
    shutil.copy(tmp_path / "once" / "usage.parquet", tmp_path / "twice" / "again.parquet")
    shutil.copy(tmp_path / "once" / "usage.parquet", tmp_path / "twice" / "q1" / "renamed.parquet")
    once, twice = ff.run_transforms(tmp_path / "once"), ff.run_transforms(tmp_path / "twice")
    statuses = twice["inventory"].sort("source_file")["status"].to_list()
    assert sorted(statuses) == ["duplicate", "duplicate", "ingested"]
    assert twice["rows_in"] == once["rows_in"] == good.height
    _reconciles(twice)
    assert _national(once).equals(_national(twice))


def test_files_that_differ_are_never_merged(good, tmp_path):
    """The same rows as Parquet and as CSV are two deliveries (not byte-identical): both count."""
    ff.write_parquet(good, tmp_path / "raw" / "usage.parquet")
    ff.write_csv(good, tmp_path / "raw" / "usage.csv")
    result = ff.run_transforms(tmp_path / "raw")
    assert result["rows_used"] == 2 * good.height


# ----------------------------------------------------------------------------------------- amounts
def test_huge_nan_and_infinite_amounts_are_invalid_amount(good, tmp_path):
    bad = [float("nan"), float("inf"), float("-inf"), 1e300, 1.7976931348623157e308, MAX_AMOUNT * 1.0001, -0.01]
    frame = good.with_columns(pl.Series("amount", bad + good["amount"].to_list()[len(bad):]))
    ff.write_parquet(frame, tmp_path / "parquet" / "usage.parquet")
    text = _spoil(good, [0], amount="NaN")
    for i, spelling in enumerate(["inf", "-Infinity", "1e300", "1E400", "nan"], start=1):
        text = _spoil(text.with_columns(pl.col("usage_date").str.to_date()), [i], amount=spelling)
    ff.write_csv(text, tmp_path / "csv" / "usage.csv")
    for raw, n in ((tmp_path / "parquet", len(bad)), (tmp_path / "csv", 6)):
        result = ff.run_transforms(raw)
        _reconciles(result)
        assert result["rows_quarantined"] == n and set(result["quarantine"]["reason"]) == {"invalid_amount"}
        for table in [*result["quarterly"].values(), *result["annual"].values()]:
            assert table["value"].is_finite().all()


def test_amounts_up_to_the_bound_are_used_and_stay_finite(good, tmp_path):
    frame = good.with_columns(pl.when(pl.int_range(pl.len()) < 20).then(pl.lit(MAX_AMOUNT))
                              .otherwise(pl.col("amount")).alias("amount"))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    assert result["rows_quarantined"] == 0
    for table in [*result["quarterly"].values(), *result["annual"].values()]:
        assert table["value"].is_finite().all() and table["amount"].is_finite().all()


def test_zero_amount_is_kept_but_not_an_active_account(tmp_path):
    frame = ff.make_raw(["2020Q1"], 10, seed=2, accounts=10).with_columns(
        pl.when(pl.col("account_id") == pl.col("account_id").first()).then(0.0).otherwise(pl.col("amount"))
        .alias("amount"))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    assert result["rows_quarantined"] == 0 and result["rows_used"] == frame.height
    metric = pl.when(pl.col("product").is_in(ff.PRODUCTS["ai"])).then(pl.lit("ai")).otherwise(pl.lit("cloud"))
    active = (frame.filter(pl.col("amount") > 0).group_by(metric.alias("metric"))
              .agg(pl.col("account_id").n_unique().cast(pl.Int64).alias("expected")))
    joined = _national(result).join(active, on="metric", how="left").with_columns(pl.col("expected").fill_null(0))
    assert (joined["accounts"] == joined["expected"]).all()
    assert frame.filter(pl.col("amount") == 0).height > 0


# ----------------------------------------------------------------------------------------- dates
@pytest.mark.parametrize("kind", ["text", "date", "datetime"])
def test_dates_outside_2000_2099_are_invalid_date(good, tmp_path, kind):
    sentinels = [dt.date(1970, 1, 1), dt.date(1900, 1, 1), dt.date(1999, 12, 31), dt.date(2100, 1, 1),
                 dt.date(9999, 12, 31)]
    dates = sentinels + good["usage_date"].to_list()[len(sentinels):]
    frame = good.with_columns(pl.Series("usage_date", dates))
    if kind == "text":
        frame = frame.with_columns(pl.col("usage_date").cast(pl.String))
    elif kind == "datetime":
        frame = frame.with_columns(pl.col("usage_date").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    _reconciles(result)
    q = result["quarantine"]
    assert q.height == len(sentinels) and set(q["reason"]) == {"invalid_date"} and q["quarter"].null_count() == q.height
    assert result["quarters"] == QUARTERS
    assert {d[:4] for d in q["usage_date"]} == {"1970", "1900", "1999", "2100", "9999"}


def test_first_and_last_plausible_dates_are_kept(tmp_path):
    frame = ff.make_raw(["2000Q1"], 4, seed=3).with_columns(
        pl.Series("usage_date", [dt.date(2000, 1, 1)] * 4))
    late = ff.make_raw(["2099Q4"], 4, seed=3).with_columns(pl.Series("usage_date", [dt.date(2099, 12, 31)] * 4))
    ff.write_parquet(frame, tmp_path / "a" / "usage.parquet")
    ff.write_parquet(late, tmp_path / "b" / "usage.parquet")
    assert ff.run_transforms(tmp_path / "a")["quarters"] == ["2000Q1"]
    assert ff.run_transforms(tmp_path / "b")["quarters"] == ["2099Q4"]


def test_unparseable_dates_are_invalid_date(good, tmp_path):
    frame = _spoil(good, [0], usage_date="2020-02-30")
    for i, text in enumerate(["31/01/2020", "20200131", "yesterday", ""], start=1):
        frame = _spoil(frame.with_columns(pl.col("amount").cast(pl.Float64)), [i], usage_date=text)
    ff.write_csv(frame, tmp_path / "raw" / "usage.csv")
    result = ff.run_transforms(tmp_path / "raw")
    _reconciles(result)
    assert result["rows_quarantined"] == 5 and set(result["quarantine"]["reason"]) == {"invalid_date"}


# ----------------------------------------------------------------------------------------- unicode
def test_odd_unicode_in_codes_is_normalised_and_ids_are_kept(tmp_path):
    frame = ff.make_raw(["2020Q1"], 40, seed=8, accounts=6)
    fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
    odd = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.col("region_code").map_elements(
            lambda s: s.translate(fullwidth), return_dtype=pl.String))
        .when(pl.int_range(pl.len()) % 4 == 1).then("\u200b" + pl.col("region_code") + "\ufeff")
        .when(pl.int_range(pl.len()) % 4 == 2).then("\u3000" + pl.col("region_code"))
        .otherwise(pl.col("region_code")).alias("region_code"),
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.col("industry").str.to_uppercase().map_elements(
            lambda s: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in s), return_dtype=pl.String))
        .when(pl.int_range(pl.len()) % 3 == 1).then(pl.col("industry") + "\u200d")
        .otherwise(pl.col("industry")).alias("industry"),
        (pl.col("account_id") + pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("\u200b")).otherwise(pl.lit(" ")))
        .alias("account_id"),
    )
    ff.write_parquet(frame, tmp_path / "plain" / "usage.parquet")
    ff.write_csv(odd, tmp_path / "odd" / "usage.csv")
    plain, cleaned = ff.run_transforms(tmp_path / "plain"), ff.run_transforms(tmp_path / "odd")
    assert cleaned["rows_quarantined"] == 0
    a, b = (pl.concat(r["quarterly"].values()).select("metric", "geo_level", "geo_code", "industry", "value", "accounts")
            for r in (plain, cleaned))
    assert a.equals(b)


def test_emoji_account_ids_are_distinct_accounts_and_blank_ones_are_missing(tmp_path):
    frame = ff.make_raw(["2020Q1"], 6, seed=9).with_columns(
        pl.Series("account_id", ["😀", "😀", "👨\u200d👩\u200d👧", "😀\ufe0f", "\u200b\u200b", "\u3000"]),
        pl.lit("110000").alias("region_code"), pl.lit("cvm").alias("product"), pl.lit(10.0).alias("amount"))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    _reconciles(result)
    q = result["quarantine"]
    assert q["reason"].to_list() == ["missing_account", "missing_account"]
    assert q["account_id"].to_list() == ["\u200b\u200b", "\u3000"]  # as read, untrimmed
    national = _national(result).filter(pl.col("metric") == "cloud")
    assert national["accounts"].to_list() == [3]  # 😀, the family (ZWJ kept), 😀 + variation selector


def test_unknown_codes_after_normalisation_are_quarantined_as_read(tmp_path):
    frame = ff.make_raw(["2020Q1"], 4, seed=9).with_columns(
        pl.Series("region_code", ["１１００００", "11０000x", "\u200b", "999999"]))
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    result = ff.run_transforms(tmp_path / "raw")
    _reconciles(result)
    q = result["quarantine"].sort("source_row")
    assert q["reason"].to_list() == ["unknown_region", "missing_region", "unknown_region"]
    assert q["region_code"].to_list() == ["11０000x", "\u200b", "999999"]  # values as read


# ----------------------------------------------------------------------------------------- CLI behaviour
def test_cli_errors_are_one_line_with_exit_2(good, tmp_path, capsys):
    """Through the CLI: an empty quarter inside the range (a stray row years away) and an unreadable file."""
    stray = ff.make_raw(["2023Q1"], 2, seed=1)
    ff.write_parquet(pl.concat([good.filter(pl.col("usage_date") < dt.date(2020, 7, 1)), stray]),
                     tmp_path / "gap" / "usage.parquet")
    assert ff.cli_run(tmp_path / "gap", tmp_path / "rel-gap") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no rows in quarter 2020Q3 inside 2020Q1..2023Q1" in err
    assert "column 'usage_date'" in err and "--allow-empty-quarters" in err


def test_allowed_empty_quarter_is_published_as_zeros(good, tmp_path):
    frame = good.filter(pl.col("usage_date").dt.quarter() != 2)
    ff.write_parquet(frame, tmp_path / "raw" / "usage.parquet")
    with pytest.raises(InputError):
        ff.run_transforms(tmp_path / "raw", allow_empty=False)
    result = ff.run_transforms(tmp_path / "raw", allow_empty=True)
    assert result["quarters"] == QUARTERS
    assert (result["quarterly"]["2020Q2"]["value"] == 0).all()


# ----------------------------------------------------------------------------------------- killed while writing
KILL_WRITER = textwrap.dedent("""
    import sys, time
    import polars as pl
    from assets.transforms.files import write_parquet_atomic

    def slow(s):
        time.sleep(0.05)
        return s

    rows = pl.LazyFrame({"x": pl.arange(0, 5_000_000, eager=True)})
    frame = rows.select(pl.col("x").map_batches(slow, return_dtype=pl.Int64, is_elementwise=True),
                        (pl.col("x") * 2).alias("y"))
    write_parquet_atomic(frame, sys.argv[1])
""")


def _wait_for(predicate, timeout: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path):
    """SIGKILL while a Parquet file is being streamed to its final name: the old file is untouched and readable;
    the partial bytes are only ever in a hidden temporary file beside it."""
    target = tmp_path / "indices.parquet"
    old = pl.DataFrame({"x": [1, 2, 3]})
    old.write_parquet(target)
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILL_WRITER, str(target)], cwd=ff.ROOT)
    partial = lambda: [p for p in tmp_path.glob(".indices.parquet.*.tmp") if p.stat().st_size > 0]
    try:
        assert _wait_for(partial, 120, proc), "the writer never started writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert target.read_bytes() == before and pl.read_parquet(target).equals(old)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["indices.parquet"]
