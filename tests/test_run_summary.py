"""Loud when data is wrong: every run ends with a summary, and a delivery with too many bad rows stops before it is
published (CONTRACT.md "Raw input")."""
from __future__ import annotations

import json

import polars as pl

from pipelines.cli import main
from test_pipeline import write_fixture


class Done:
    """A CLI call in this process (its validator and imports shared with the other tests of the file)."""

    def __init__(self, args: list, capsys):
        capsys.readouterr()
        self.returncode = main([str(a) for a in args])
        self.stdout, self.stderr = capsys.readouterr()


def run_cli(args: list, capsys) -> Done:
    return Done(args, capsys)


def _messy(path, rows: int = 40, bad_every: int = 4):
    """`rows` rows, one in `bad_every` with an unknown region code (a quarter of them by default)."""
    pl.DataFrame([{"usage_date": f"2020-0{1 + i % 3}-1{i % 9}", "account_id": f"a{i}",
                   "region_code": "999999" if i % bad_every == 0 else "110000", "industry": "finance",
                   "product": "cvm", "amount": 1.0 + i} for i in range(rows)]).write_csv(path)
    return path


def test_a_messy_file_stops_with_one_line_naming_share_reasons_and_file(tmp_path, capsys):
    done = run_cli(["run", "--raw", _messy(tmp_path / "messy.csv"), "--out", tmp_path / "release", "--no-report"], capsys)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert err[0].startswith("error: messy.csv: 25.0% of the 40 rows delivered are quarantined")
    assert "max_quarantine_share 5%" in err[0] and "unknown_region 10" in err[0] and "--max-quarantine-share 25" in err[0]
    assert not (tmp_path / "release").exists()  # a failed first run leaves nothing
    allowed = run_cli(["run", "--raw", tmp_path / "messy.csv", "--out", tmp_path / "release", "--no-report",
                       "--max-quarantine-share", "25"], capsys)
    assert allowed.returncode == 0, allowed.stderr
    assert pl.read_parquet(tmp_path / "release" / "quarantine.parquet").height == 10


def test_a_good_run_prints_its_summary_and_keeps_it_in_the_manifest(tmp_path, capsys):
    raw = write_fixture(tmp_path / "usage.csv")
    done = run_cli(["run", "--raw", raw, "--out", tmp_path / "release", "--no-report"], capsys)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[1].strip() == "rows: 1,502 in = 1,500 used + 2 quarantined (invalid_date 1, unknown_region 1)"
    assert lines[2].strip().startswith("files: 1 new (1,502 rows, 2 quarantined), 0 skipped")
    assert lines[3].strip() == "quarters recomputed: 2020Q1..2021Q1; base 2020Q1"
    assert lines[4].strip().startswith("cells suppressed: ") and lines[4].strip().endswith("revisions: none")
    manifest = json.loads((tmp_path / "release" / "manifest.json").read_text())
    assert manifest["summary"]["quarantined_by_reason"] == {"invalid_date": 1, "unknown_region": 1}
    assert manifest["inputs"][0]["path"] == str(raw.resolve()) and manifest["inputs"][0]["sha256"]
    [note] = manifest["release_notes"]
    assert note["quarters_new"] == ["2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"] and note["rebased_to"] is None


def test_a_missing_feed_in_one_quarter_stops_with_one_line_naming_metric_and_quarter(tmp_path, capsys):
    """A late file with no AI products for a quarter would publish a national AI index of 0 for it."""
    frame = pl.read_csv(write_fixture(tmp_path / "usage.csv"), infer_schema=False)
    ai = pl.col("product").is_in(["asr", "ocr"]) | (pl.col("metric") == "ai")
    frame.filter(~(pl.col("usage_date").str.starts_with("2020-0") & pl.col("usage_date").str.slice(5, 2).is_in(
        ["07", "08", "09"]) & ai)).write_csv(tmp_path / "no_ai_q3.csv")
    done = run_cli(["run", "--raw", tmp_path / "no_ai_q3.csv", "--out", tmp_path / "release", "--no-report"], capsys)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert "no rows for metric 'ai' in quarter 2020Q3 inside 2020Q1..2021Q1" in err[0]
    assert "--allow-empty-quarters" in err[0]


def test_a_sudden_national_move_is_a_warning_in_the_summary(tmp_path, capsys):
    frame = pl.read_csv(write_fixture(tmp_path / "usage.csv"), infer_schema=False)
    spike = frame.with_columns(pl.when(pl.col("usage_date").str.starts_with("2020-1"))
                               .then(pl.col("amount").cast(pl.Float64) * 10).otherwise(pl.col("amount").cast(
                                   pl.Float64)).alias("amount"))
    spike.write_csv(tmp_path / "spike.csv")
    done = run_cli(["run", "--raw", tmp_path / "spike.csv", "--out", tmp_path / "release", "--no-report"], capsys)
    assert done.returncode == 0, done.stderr
    warning = next(line for line in done.stdout.splitlines() if line.strip().startswith("warnings:"))
    assert "national_series_moves_within_the_set_factor" in warning and "2020Q4" in warning
    quality = json.loads((tmp_path / "release" / "quality.json").read_text())
    assert "derived_measures[-] national_series_moves_within_the_set_factor" in quality["derived"]["failures"]
