"""Continuing a release: late data, a frozen base, revisions, and rebasing (CONTRACT.md "Partitions, base and runs")."""
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from test_pipeline import write_fixture

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deliveries")
    full = pl.read_csv(write_fixture(root / "full.csv"), infer_schema=False)
    parts = {
        "first": full.filter(pl.col("usage_date") < "2021-01-01"),
        "later": full.filter(pl.col("usage_date") >= "2021-01-01"),
        "late_q3": full.filter(pl.col("usage_date").str.starts_with("2020-08"))
        .with_columns(pl.lit("acct-late").alias("account_id")),
        "late_base": full.filter(pl.col("usage_date").str.starts_with("2020-02")),
    }
    out = {}
    for name, frame in parts.items():
        (root / name).mkdir()
        frame.write_csv(root / name / f"{name}.csv")
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def release(deliveries, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("rel") / "release"
    snapshots, reports = {}, {}
    for step in ("first", "later", "late_q3"):  # the first run draws the report; the later ones are --no-report
        assert main(["run", "--raw", str(deliveries[step]), "--out", str(out),
                     *(["--no-report"] if step != "first" else [])]) == 0
        snapshots[step] = pl.read_parquet(out / "indices.parquet")
        reports[step] = sorted(p.name for p in (out / "report").glob("*")) if (out / "report").exists() else []
    return {"out": out, "snapshots": snapshots, "reports": reports}


def test_no_report_publishes_without_drawing_and_removes_an_out_of_date_report(release):
    assert "index.html" in release["reports"]["first"]
    assert release["reports"]["later"] == release["reports"]["late_q3"] == []  # the first one showed old figures
    assert (release["out"] / "indices.parquet").exists() and (release["out"] / "manifest.json").exists()


def test_a_later_quarter_changes_no_earlier_one(release):
    before, after = release["snapshots"]["first"], release["snapshots"]["later"]
    joined = before.join(after, on=KEY, suffix="_after")
    assert joined.height == before.height
    assert joined.filter(pl.col("value").ne_missing(pl.col("value_after"))).height == 0


def test_late_data_recomputes_its_quarter_and_year_and_logs_revisions(release):
    revisions = pl.read_parquet(release["out"] / "revisions.parquet")
    assert set(revisions["period"]) == {"2020Q3", "2020"}
    assert set(revisions["reason"]) == {"late data"} and revisions["run_id"].null_count() == 0
    before, after = release["snapshots"]["later"], release["snapshots"]["late_q3"]
    changed = (before.join(after, on=KEY, suffix="_after")
               .filter(pl.col("value").ne_missing(pl.col("value_after")) | pl.col("accounts").ne_missing(
                   pl.col("accounts_after"))))
    assert changed.height == revisions.height
    assert set(after["base_period"]) == {"2020Q1"}


def test_same_files_again_are_skipped(release, deliveries, capsys):
    assert main(["run", "--raw", str(deliveries["first"]), "--out", str(release["out"]), "--no-report"]) == 0
    assert "nothing new" in capsys.readouterr().out


def test_new_base_quarter_data_stops_with_the_rebase_command(release, deliveries, capsys):
    assert main(["run", "--raw", str(deliveries["late_base"]), "--out", str(release["out"]), "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "python -m pipelines rebase --to 2020Q1" in err and len(err.strip().splitlines()) == 1


def test_rebase_recomputes_every_period_and_logs_it(release):
    assert main(["rebase", "--to", "2020Q2", "--out", str(release["out"]), "--no-report"]) == 0
    indices = pl.read_parquet(release["out"] / "indices.parquet")
    national = indices.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                              & (pl.col("period") == "2020Q2"))
    assert (national["value"] - 100).abs().max() < 1e-9 and set(indices["base_period"]) == {"2020Q2"}
    revisions = pl.read_parquet(release["out"] / "revisions.parquet").filter(pl.col("reason") == "rebase")
    assert set(revisions["period"]) >= {"2020Q1", "2020Q3", "2021Q1", "2020"}


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
