"""Acceptance: CONTRACT.md "Quarantine" and "Whole-input errors".

One raw directory holds good rows and bad rows of every reason, in CSV (text as written) and Parquet (typed), some
rows breaking two or more rules (the first reason in the contract's order wins). A second run on the same files
without the bad rows must publish the same indices. Whole-input errors run in one separate process (imports paid
once), each call of `pipelines.cli.main` with its own captured stderr (file descriptor 2).
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import math
import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

try:  # tests/ as a plain directory (rootdir conftest) or as a package
    from conftest import run_cli_many, run_main_many
    from reference_method import REASONS, classify, compute, load_seeds
except ModuleNotFoundError:
    from tests.conftest import run_cli_many, run_main_many
    from tests.reference_method import REASONS, classify, compute, load_seeds

SEED = 7
COLUMNS = ["usage_date", "account_id", "region_code", "industry", "product", "metric", "amount"]
GOOD_REGIONS = ["440300", "110000", "310000", "330100", "510100", "420100", "371200", "110105", "440000", "500200"]
GOOD_INDUSTRIES = ["金融", "finance", "游戏", "智慧零售", "政府", None, "other", " Gaming "]
GOOD_PRODUCTS = [("cvm", None), ("cdn", "cloud"), ("asr", None), ("ocr", "ai"), ("my-own-model", "ai")]
QUARTER_DAYS = {"2020Q1": dt.date(2020, 1, 1), "2020Q2": dt.date(2020, 4, 1), "2020Q3": dt.date(2020, 7, 1),
                "2020Q4": dt.date(2020, 10, 1)}
# An ISO 8601 timestamp with the UTC designator 'Z' is a date with a zone (-> 2020-07-01 in CST): a good row.
Z_ROW = {"usage_date": "2020-06-30T17:00:00Z", "account_id": "z-acct", "region_code": "440300", "industry": "金融",
         "product": "cvm", "metric": None, "amount": "10"}

T = {"usage_date": "2020-05-10", "account_id": "q-acct-1", "region_code": "440300", "industry": "金融",
     "product": "cvm", "metric": None, "amount": "12.5"}
# (expected reason, overrides on the good template T); CSV rows are text as written; RAW(...) is a raw CSV field
CSV_BAD = [
    ("invalid_date", {"usage_date": "2020/03/01"}), ("invalid_date", {"usage_date": "01.03.2020"}),
    ("invalid_date", {"usage_date": "March 1, 2020"}), ("invalid_date", {"usage_date": "2020-02-30"}),
    ("invalid_date", {"usage_date": "2021-02-29"}), ("invalid_date", {"usage_date": "2020-13-01"}),
    ("invalid_date", {"usage_date": "2020-04-31"}), ("invalid_date", {"usage_date": None}),
    ("invalid_date", {"usage_date": "yesterday"}), ("invalid_date", {"usage_date": "2020-06-31T10:00:00+08:00"}),
    ("missing_account", {"account_id": None}), ("missing_account", {"account_id": '""'}),
    ("missing_account", {"account_id": "   "}),
    ("missing_region", {"region_code": None}), ("missing_region", {"region_code": "  "}),
    ("unknown_region", {"region_code": "999999"}), ("unknown_region", {"region_code": "710000"}),
    ("unknown_region", {"region_code": "810000"}), ("unknown_region", {"region_code": "abc"}),
    ("unknown_region", {"region_code": "11000"}),
    ("unknown_industry", {"industry": "banking"}), ("unknown_industry", {"industry": "金融业"}),
    ("invalid_metric", {"metric": "storage"}), ("invalid_metric", {"metric": "cloudy"}),
    ("unknown_product", {"product": "foo"}), ("unknown_product", {"product": None}),
    ("metric_conflict", {"product": "cvm", "metric": "ai"}), ("metric_conflict", {"product": "asr", "metric": "cloud"}),
    ("invalid_amount", {"amount": "-1"}), ("invalid_amount", {"amount": "NaN"}), ("invalid_amount", {"amount": "nan"}),
    ("invalid_amount", {"amount": "inf"}), ("invalid_amount", {"amount": "-inf"}),
    ("invalid_amount", {"amount": "abc"}), ("invalid_amount", {"amount": None}),
    ("invalid_amount", {"amount": "12 yuan"}), ("invalid_amount", {"amount": "-0.01"}),
    # two or more rules broken: the first in the contract's order wins
    ("invalid_date", {"usage_date": "2020/13/45", "account_id": None}),
    ("invalid_date", {"usage_date": "bad", "account_id": None, "region_code": None, "industry": "x",
                      "metric": "y", "product": None, "amount": "z"}),
    ("missing_account", {"account_id": None, "region_code": "999999"}),
    ("missing_region", {"region_code": None, "industry": "banking"}),
    ("unknown_region", {"region_code": "999999", "industry": "banking", "metric": "storage"}),
    ("unknown_industry", {"industry": "banking", "metric": "storage"}),
    ("unknown_industry", {"industry": "banking", "product": "foo"}),
    ("invalid_metric", {"metric": "storage", "amount": "-5"}),
    ("invalid_metric", {"metric": "storage", "product": "foo"}),
    ("unknown_product", {"product": "foo", "amount": "NaN"}),
    ("metric_conflict", {"product": "cvm", "metric": "ai", "amount": "inf"}),
]
P = {"usage_date": dt.date(2020, 8, 3), "account_id": "p-acct-1", "region_code": 310000, "industry": "finance",
     "product": "ocr", "metric": "ai", "amount": 3.25}
PARQUET_BAD = [
    ("invalid_date", {"usage_date": None}), ("invalid_date", {"usage_date": None, "amount": -1.0}),
    ("missing_account", {"account_id": None}), ("missing_account", {"account_id": ""}),
    ("missing_region", {"region_code": None}), ("unknown_region", {"region_code": 999999}),
    ("unknown_region", {"region_code": 710000}),
    ("unknown_industry", {"industry": "Banking"}), ("invalid_metric", {"metric": "gpu"}),
    ("unknown_product", {"product": "foo", "metric": None}), ("metric_conflict", {"product": "ocr", "metric": "cloud"}),
    ("invalid_amount", {"amount": -3.0}), ("invalid_amount", {"amount": float("nan")}),
    ("invalid_amount", {"amount": float("inf")}), ("invalid_amount", {"amount": float("-inf")}),
    ("invalid_amount", {"amount": None}),
]
PARQUET_SCHEMA = pa.schema([("usage_date", pa.date32()), ("account_id", pa.string()), ("region_code", pa.int64()),
                            ("industry", pa.string()), ("product", pa.string()), ("metric", pa.string()),
                            ("amount", pa.float64())])


def _good_rows(rng: random.Random, n: int, text: bool) -> list[dict]:
    rows = []
    for i in range(n):
        q = list(QUARTER_DAYS)[i % 4]
        day = QUARTER_DAYS[q] + dt.timedelta(days=rng.randint(0, 89))
        product, metric = rng.choice(GOOD_PRODUCTS)
        amount = 0.0 if rng.random() < 0.05 else round(rng.lognormvariate(2, 1.2), 3)
        region = rng.choice(GOOD_REGIONS)
        rows.append({"usage_date": day.isoformat() if text else day, "account_id": f"acct-{rng.randint(1, 40)}",
                     "region_code": region if text else int(region), "industry": rng.choice(GOOD_INDUSTRIES),
                     "product": product, "metric": metric, "amount": repr(amount) if text else amount})
    return rows


def _write_csv(path: Path, rows: list[dict]) -> list[dict]:
    """Rows (text; '""' = a quoted empty field) to CSV; return each row as read, with source_file/source_row."""
    out = []
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for i, r in enumerate(rows, start=1):
            fields = []
            for c in COLUMNS:
                v = r.get(c)
                fields.append("" if v is None else v)
            if any(v == '""' for v in fields):
                f.write(",".join('""' if v == '""' else v for v in fields) + "\n")
            else:
                w.writerow(fields)
            out.append({**{c: (None if r.get(c) in (None, '""') else r[c]) for c in COLUMNS},
                        "source_file": path.name, "source_row": i})
    return out


def _write_parquet(path: Path, rows: list[dict]) -> list[dict]:
    pq.write_table(pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows], schema=PARQUET_SCHEMA), path)
    return [{**{c: r[c] for c in COLUMNS}, "source_file": path.name, "source_row": i}
            for i, r in enumerate(rows, start=1)]


def _interleave(rng: random.Random, good: list[dict], bad: list[dict]) -> list[dict]:
    rows = list(good)
    for b in bad:
        rows.insert(rng.randint(0, len(rows)), b)
    return rows


def build(root: Path) -> dict:
    rng = random.Random(SEED)
    bad_dir, clean_dir = root / "with_bad", root / "clean"
    bad_dir.mkdir(parents=True)
    clean_dir.mkdir(parents=True)
    good_a = _good_rows(rng, 300, text=True)
    good_b = _good_rows(rng, 200, text=True) + [dict(Z_ROW)]
    good_c = _good_rows(rng, 200, text=False)
    csv_bad = [{**T, **o, "_reason": r} for r, o in CSV_BAD]
    pq_bad = [{**P, **o, "_reason": r} for r, o in PARQUET_BAD]
    mixed = _interleave(rng, good_b, csv_bad)
    typed = _interleave(rng, good_c, pq_bad)

    rows_bad = (_write_csv(bad_dir / "good.csv", good_a) + _write_csv(bad_dir / "mixed.csv", mixed)
                + _write_parquet(bad_dir / "typed.parquet", typed))
    rows_clean = (_write_csv(clean_dir / "good.csv", good_a) + _write_csv(clean_dir / "mixed.csv", good_b)
                  + _write_parquet(clean_dir / "typed.parquet", good_c))
    expected = {}  # (source_file, source_row) -> (reason, row as written)
    for name, rows in (("mixed.csv", mixed), ("typed.parquet", typed)):
        for i, r in enumerate(rows, start=1):
            if "_reason" in r:
                expected[(name, i)] = (r["_reason"], r)
    z_pos = ("mixed.csv", mixed.index(next(r for r in mixed if r.get("account_id") == "z-acct")) + 1)
    return {"bad_dir": bad_dir, "clean_dir": clean_dir, "rows_bad": rows_bad, "rows_clean": rows_clean,
            "expected": expected, "z_row": z_pos}


@pytest.fixture(scope="session")
def seeds():
    return load_seeds()


@pytest.fixture(scope="session")
def quarantine_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("quarantine")
    data = build(root / "raw")
    # a file made of bad rows on purpose: allowed past the quarantine threshold, to see every row quarantined
    procs = run_cli_many([["run", "--raw", data["bad_dir"], "--out", root / "out_bad", "--no-report",
                           "--max-quarantine-share", "100"],
                          ["run", "--raw", data["clean_dir"], "--out", root / "out_clean"]])
    for name, proc in zip(("with bad rows", "clean"), procs):
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    data["out_bad"], data["out_clean"] = root / "out_bad", root / "out_clean"
    data["clean_stderr"] = procs[1].stderr
    data["quarantine"] = pl.read_parquet(root / "out_bad" / "quarantine.parquet")
    return data


def test_a_clean_run_writes_nothing_to_stderr(quarantine_runs):
    """No progress bar off a terminal, and no warning of Dagster's or a library's reaches the user."""
    assert quarantine_runs["clean_stderr"] == ""


def _sf_matches(published: str, raw_dir: Path, name: str) -> bool:
    """source_file names the file: relative to the raw directory, or as an absolute path."""
    p = Path(published)
    return (raw_dir / p).resolve() == (raw_dir / name).resolve()


# ------------------------------------------------------------------------------------------------ tests
def test_fixture_covers_every_reason(seeds):
    assert {r for r, _ in CSV_BAD} == set(REASONS)
    assert {r for r, _ in PARQUET_BAD} >= {"invalid_date", "missing_account", "missing_region", "unknown_region",
                                           "invalid_amount", "metric_conflict"}
    # the reference classifies every hand-labelled row as labelled (both are read from the contract)
    for template, bad, as_read in ((T, CSV_BAD, lambda v: None if v in (None, '""') else v), (P, PARQUET_BAD, None)):
        for reason, overrides in bad:
            row = {**template, **overrides}
            if as_read:
                row = {k: as_read(v) for k, v in row.items()}
            assert classify(row, seeds)[0] == reason, (reason, overrides)
    assert classify(dict(Z_ROW), seeds)[0] is None


def test_each_bad_row_quarantined_with_first_reason(quarantine_runs):
    d = quarantine_runs
    q = d["quarantine"]
    assert {"quarter", "source_file", "source_row", "reason"} <= set(q.columns)
    got = {}
    for r in q.iter_rows(named=True):
        name = Path(r["source_file"]).name
        assert _sf_matches(r["source_file"], d["bad_dir"], name), r["source_file"]
        got[(name, r["source_row"])] = r
    expected = d["expected"]
    unexpected = {k: v["reason"] for k, v in got.items() if k not in expected and k != d["z_row"]}
    missing = {k: v[0] for k, v in expected.items() if k not in got}
    wrong = {k: (got[k]["reason"], v[0]) for k, v in expected.items() if k in got and got[k]["reason"] != v[0]}
    assert not missing, f"bad rows not quarantined: {missing}"
    assert not wrong, f"(got, expected) reasons: {wrong}"
    assert not unexpected, f"good rows quarantined: {unexpected}"


def test_quarantine_keeps_values_as_read(quarantine_runs):
    d = quarantine_runs
    q = d["quarantine"]
    for r in q.iter_rows(named=True):
        key = (Path(r["source_file"]).name, r["source_row"])
        if key not in d["expected"]:
            continue
        reason, row = d["expected"][key]
        if key[0] == "mixed.csv":
            for col in ("usage_date", "amount", "region_code", "industry", "metric"):
                written = row.get(col)
                written = None if written in (None, '""') or not str(written).strip() else str(written).strip()
                read = r[col].strip() if r[col] is not None and r[col].strip() else None
                assert read == written, (key, reason, col, r[col], written)
            if row["usage_date"] is not None and reason != "invalid_date":
                assert r["quarter"] == "2020Q2", (key, r["quarter"])  # T's date is 2020-05-10
        if reason == "invalid_date":
            assert r["quarter"] is None, key
        elif key[0] == "typed.parquet":
            assert r["quarter"] == "2020Q3", (key, r["quarter"])  # P's date is 2020-08-03
        if reason == "invalid_amount" and key[0] == "typed.parquet" and row["amount"] is not None:
            assert r["amount"] is not None and float(r["amount"]) == row["amount"] or (
                math.isnan(row["amount"]) and r["amount"] is not None and math.isnan(float(r["amount"]))), key


def test_rows_reconcile(quarantine_runs):
    d = quarantine_runs
    manifest = json.loads((d["out_bad"] / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["row_counts"]
    rows_in = len(d["rows_bad"])
    n_bad = len(d["expected"])
    assert counts["rows_in"] == rows_in
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_quarantined"]
    assert counts["rows_quarantined"] == d["quarantine"].height
    # the Z-suffixed timestamp is counted wherever the project puts it (see test_iso_utc_designator_is_a_date)
    assert counts["rows_quarantined"] in (n_bad, n_bad + 1)
    clean = json.loads((d["out_clean"] / "manifest.json").read_text(encoding="utf-8"))["row_counts"]
    assert clean["rows_in"] == len(d["rows_clean"]) == rows_in - n_bad
    assert clean["rows_in"] == clean["rows_used"] + clean["rows_quarantined"]


def test_bad_rows_do_not_change_indices(quarantine_runs):
    d = quarantine_runs
    keys = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
    bad = pl.read_parquet(d["out_bad"] / "indices.parquet").sort(keys)
    clean = pl.read_parquet(d["out_clean"] / "indices.parquet").sort(keys)
    assert bad.select(keys).equals(clean.select(keys))
    assert bad["status"].equals(clean["status"]) and bad["accounts"].equals(clean["accounts"])
    diff = (bad["value"] - clean["value"]).abs() / clean["value"].abs().clip(lower_bound=1e-300)
    assert bad["value"].is_null().equals(clean["value"].is_null())
    assert (diff.fill_null(0) <= 1e-9).all()


def test_indices_equal_reference_despite_bad_rows(quarantine_runs, seeds):
    d = quarantine_runs
    z_quarantined = any(Path(f).name == d["z_row"][0] and r == d["z_row"][1] for f, r in
                        d["quarantine"].select("source_file", "source_row").iter_rows())
    # the Z row is judged in test_iso_utc_designator_is_a_date; here the reference follows the project on it
    rows = [r for r in d["rows_bad"] if not (z_quarantined and (r["source_file"], r["source_row"]) == d["z_row"])]
    ref = compute(rows, seeds)
    assert {(f, r) for f, r, _ in ref.quarantine} - {d["z_row"]} == set(d["expected"])
    published = pl.read_parquet(d["out_bad"] / "indices.parquet")
    mismatches = []
    for row in published.filter(pl.col("status") == "ok").iter_rows(named=True):
        key = (row["metric"], row["period"], row["period_type"], row["geo_level"], row["geo_code"], row["industry"])
        value, accounts = ref.cells[key]
        if not math.isclose(row["value"], value, rel_tol=1e-9, abs_tol=1e-12) or row["accounts"] != accounts:
            mismatches.append((key, row["value"], value, row["accounts"], accounts))
    assert len(published) == len(ref.cells)
    assert not mismatches, f"{len(mismatches)} cells differ (got, expected), e.g. {mismatches[:5]}"


def test_iso_utc_designator_is_a_date(quarantine_runs):
    """'2020-06-30T17:00:00Z' (ISO 8601, UTC designator) is a zoned timestamp: used (as 2020-07-01 CST), not quarantined."""
    d = quarantine_runs
    q = d["quarantine"].with_columns(pl.col("source_file").map_elements(lambda s: Path(s).name, return_dtype=pl.String))
    hit = q.filter((pl.col("source_file") == d["z_row"][0]) & (pl.col("source_row") == d["z_row"][1]))
    assert hit.height == 0, hit.to_dicts()


# ------------------------------------------------------------------------------------------------ whole-input errors
def _good_csv(path: Path, quarters=("2020Q1", "2020Q2"), zero_in: str | None = None) -> None:
    """A small valid CSV with rows only in `quarters`; amounts 0 in quarter `zero_in`."""
    rows = []
    for r in _good_rows(random.Random(3), 120, text=True):
        q = f"{r['usage_date'][:4]}Q{(int(r['usage_date'][5:7]) - 1) // 3 + 1}"
        if q in quarters:
            rows.append({**r, "amount": "0"} if q == zero_in else r)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(path, rows)


ERRORS = ["missing_column", "corrupt_parquet", "corrupt_page", "base_not_in_data", "empty_quarter",
          "zero_base_total"]


@pytest.fixture(scope="session")
def error_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    args = {}
    d = root / "missing_column"
    _good_csv(d / "a_good.csv")
    with open(d / "no_account.csv", "w", encoding="utf-8") as f:
        f.write("usage_date,region_code,industry,product,amount\n2020-01-02,440300,金融,cvm,5\n")
    args["missing_column"] = ["run", "--raw", d, "--out", root / "out_missing_column"]
    d = root / "corrupt_parquet"
    _good_csv(d / "a_good.csv")
    (d / "broken.parquet").write_bytes(b"PAR1" + bytes(random.Random(1).randrange(256) for _ in range(300)) + b"PAR1")
    args["corrupt_parquet"] = ["run", "--raw", d, "--out", root / "out_corrupt"]
    d = root / "corrupt_page"  # an intact footer (so the inventory reads it) over a garbled data page
    _good_csv(d / "a_good.csv")
    page = pl.read_csv(d / "a_good.csv").with_columns(pl.col("usage_date").str.to_date()).write_parquet(
        d / "paged.parquet", statistics=True) or d / "paged.parquet"
    data = bytearray(page.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 200):
        data[i] ^= 0xFF
    page.write_bytes(bytes(data))
    args["corrupt_page"] = ["run", "--raw", d, "--out", root / "out_corrupt_page"]
    d = root / "base_not_in_data"
    _good_csv(d / "a_good.csv")
    args["base_not_in_data"] = ["run", "--raw", d, "--out", root / "out_base", "--base", "2019Q4"]
    d = root / "empty_quarter"
    _good_csv(d / "a_good.csv", quarters=("2020Q1", "2020Q3"))
    args["empty_quarter"] = ["run", "--raw", d, "--out", root / "out_empty"]
    d = root / "zero_base_total"
    _good_csv(d / "a_good.csv", quarters=("2020Q1", "2020Q2"), zero_in="2020Q1")
    args["zero_base_total"] = ["run", "--raw", d, "--out", root / "out_zero"]
    return run_main_many({k: args[k] for k in ERRORS})


def _one_line(result) -> str:
    rc, stderr = result
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"exit {rc}; stderr has {len(lines)} lines:\n{stderr[-2000:]}"
    return lines[0]


@pytest.mark.parametrize("case, named", [
    ("missing_column", ["no_account.csv", "account_id"]),  # the file and the column
    ("corrupt_parquet", ["broken.parquet"]),
    ("corrupt_page", ["paged.parquet", "unreadable in column '"]),
    ("base_not_in_data", ["2019Q4"]),
    ("empty_quarter", ["2020Q2"]),
    ("zero_base_total", []),
])
def test_whole_input_error_exits_non_zero_with_one_line(error_runs, case, named):
    proc = error_runs[case]
    assert proc[0] != 0, proc
    line = _one_line(proc)
    assert all(part in line for part in named), line
