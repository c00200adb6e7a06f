"""Continuing a release from the CLI: files already held, a frozen base, rebasing, a file overwritten in place, an
out-of-date report (CONTRACT.md "Partitions, base and runs"). Late data and its revisions: test_release_settings.py."""

import polars as pl

from pipelines.cli import main
from release_fixtures import built, release, sources  # noqa: F401
from test_pipeline import write_fixture

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]


def test_same_files_again_are_skipped(release, capsys):
    assert main(["run", "--out", str(release), "--no-report"]) == 0  # the release's own landing folder, again
    assert "nothing new" in capsys.readouterr().out


def test_new_base_quarter_data_stops_with_the_rebase_command(release, sources, tmp_path, capsys):
    base = pl.read_csv(sources["landing"] / "usage_2020-05.csv", infer_schema=False)
    (tmp_path / "late").mkdir()
    base.with_columns(pl.lit("acct-late-base").alias("account_id")).write_csv(tmp_path / "late" / "late_base.csv")
    capsys.readouterr()
    assert main(["run", "--raw", str(tmp_path / "late"), "--out", str(release), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "python -m pipelines rebase --to 2020Q2" in err and len(err.strip().splitlines()) == 1


def test_rebase_recomputes_every_period_and_logs_it(release):
    assert main(["rebase", "--to", "2020Q3", "--out", str(release), "--no-report"]) == 0
    indices = pl.read_parquet(release / "indices.parquet")
    national = indices.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                              & (pl.col("period") == "2020Q3"))
    assert (national["value"] - 100).abs().max() == 0 and set(indices["base_period"]) == {"2020Q3"}
    revisions = pl.read_parquet(release / "revisions.parquet")
    assert set(revisions["reason"]) == {"rebase"}
    assert set(revisions["period"]) >= {"2020Q1", "2020Q4", "2021Q1", "2020"}


def test_no_report_publishes_without_drawing_and_removes_an_out_of_date_report(release, sources):
    (release / "report").mkdir()
    (release / "report" / "index.html").write_text("the figures before this run")
    assert main(["run", "--raw", str(sources["late_q3"]), "--out", str(release), "--no-report"]) == 0
    assert not (release / "report").exists()
    assert (release / "indices.parquet").exists() and (release / "manifest.json").exists()


def test_a_file_overwritten_in_place_replaces_its_earlier_delivery(tmp_path):
    """Continuing after a delivered file was overwritten (same path, other bytes): its old rows are no longer read,
    the quarters it held and holds are recomputed, and the release equals a fresh one over the files as they are."""
    full = pl.read_csv(write_fixture(tmp_path / "full.csv"), infer_schema=False)
    raw = tmp_path / "raw"
    raw.mkdir()
    full.filter(pl.col("usage_date") < "2020-04-01").write_csv(raw / "base.csv")
    full.filter(pl.col("usage_date") >= "2020-04-01").write_csv(raw / "rest.csv")
    out = tmp_path / "release"
    assert main(["run", "--raw", str(raw), "--out", str(out), "--no-report"]) == 0
    corrected = full.filter(pl.col("usage_date") >= "2020-05-01")  # its April rows withdrawn
    corrected.with_columns(pl.lit("acct-corrected").alias("account_id")).write_csv(raw / "rest.csv")
    assert main(["run", "--raw", str(raw), "--out", str(out), "--no-report"]) == 0
    fresh = tmp_path / "fresh"
    assert main(["run", "--raw", str(raw), "--out", str(fresh), "--base", "2020Q1", "--no-report"]) == 0
    inventory = pl.read_parquet(out / "state" / "assets" / "raw_inventory.parquet")
    assert inventory.filter(pl.col("source_file") == "rest.csv")["status"].to_list() == ["replaced", "ingested"]
    continued, again = (pl.read_parquet(d / "indices.parquet").sort(KEY) for d in (out, fresh))
    assert continued.select(*KEY, "value", "accounts").equals(again.select(*KEY, "value", "accounts"))
    revised = set(pl.read_parquet(out / "revisions.parquet")["period"])
    assert {"2020Q2", "2020Q3", "2020"} <= revised and "2020Q1" not in revised
