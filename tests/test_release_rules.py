"""A release's rules hold however a run is launched (CONTRACT.md "Partitions, base and runs"): settings read from
the release, frozen ones refused before anything is written, rebase as a job, stale quarters never published,
all-or-nothing publishing, and one writer at a time.

Runs "from the UI" are executed as Dagster's run worker executes a launched run: the named job, the release's own
instance, no run config but what the launchpad would send, the release named by YUNZHI_RELEASE.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.transforms.release import (JOURNAL, finish_interrupted_swaps, read_settings, settings_path, swap_in,
                                       write_settings)
from pipelines.cli import main
from pipelines.release import open_instance, quarterly_release_job, rebase_release_job
from test_pipeline import write_fixture

ROOT = Path(__file__).resolve().parents[1]
KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
CELL = ["value", "accounts", "status"]
PUBLISHED = ("indices.parquet", "derived.parquet", "quarantine.parquet", "revisions.parquet", "quality.json",
             "manifest.json")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """A landing folder of one file per quarter (2020Q1..2021Q1), and late files for 2020Q3 and 2020Q4."""
    root = tmp_path_factory.mktemp("sources")
    full = pl.read_csv(write_fixture(root / "full.csv"), infer_schema=False)
    landing = root / "landing"
    landing.mkdir()
    dated = full.filter(pl.col("usage_date").str.contains(r"^\d{4}-"))
    for (month,), part in dated.group_by(pl.col("usage_date").str.slice(0, 7)):
        part.write_csv(landing / f"usage_{month}.csv")
    out = {"landing": landing}
    for name, prefix in (("late_q3", "2020-08"), ("late_q4", "2020-11")):
        (root / name).mkdir()
        (full.filter(pl.col("usage_date").str.starts_with(prefix))
         .with_columns(pl.lit(f"acct-{name}").alias("account_id")).write_csv(root / name / f"{name}.csv"))
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory) -> Path:
    """A release with a base other than the earliest quarter and six tiers, kept aside for tests to copy."""
    out = tmp_path_factory.mktemp("built") / "release"
    assert main(["run", "--raw", str(sources["landing"]), "--out", str(out), "--base", "2020Q2", "--tiers", "six",
                 "--no-report"]) == 0
    return out


@pytest.fixture()
def release(built, sources, tmp_path, monkeypatch) -> Path:
    """A copy of the built release with a landing folder of its own (its raw path)."""
    out, landing = tmp_path / "release", tmp_path / "landing"
    shutil.copytree(built, out)
    shutil.copytree(sources["landing"], landing)
    write_settings(dataclasses.replace(read_settings(out), raw_path=str(landing)), settings_path(out))
    monkeypatch.setenv("YUNZHI_RELEASE", str(out))
    return out


def launch(release: Path, tags: dict, run_config: dict | None = None, job=quarterly_release_job):
    """A run as the UI launches it: the named job on the release's instance, with only the launchpad's config."""
    instance = open_instance(release)
    try:
        return dg.execute_job(dg.reconstructable(job), instance, run_config=run_config or {}, tags=tags)
    finally:
        instance.dispose()


def partition(quarter: str) -> dict:
    return {"dagster/partition": quarter}


def every_quarter(first: str = "2020Q1", last: str = "2021Q1") -> dict:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def snapshot(release: Path) -> dict[str, str]:
    """Every file of the release but its Dagster instance (and the note of who last held the writer lock), by
    content."""
    return {str(p.relative_to(release)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(release.rglob("*")) if p.is_file() and ".dagster" not in p.parts
            and not p.name.startswith(".writer.")}


def cells(release: Path) -> pl.DataFrame:
    return pl.read_parquet(release / "indices.parquet").select(*KEY, *CELL, "base_period")


# ------------------------------------------------------------------------------------------ settings of the release
def test_a_quarter_rematerialised_from_the_ui_keeps_the_base_and_tiers_and_changes_nothing(release, sources):
    """The story: a release made with base 2020Q2 and six tiers, one quarter rematerialised from the UI with no
    config, then a late file from the CLI: one base throughout, six tiers, and values identical wherever no data
    changed (with Settings defaults, the UI's run had indexed 2021Q1 on 2020Q1 with five tiers)."""
    first = cells(release)
    result = launch(release, partition("2021Q1"))
    assert result.success
    assert cells(release).equals(first)  # nothing changed: the same release, republished
    assert pl.read_parquet(release / "revisions.parquet").height == 0
    assert main(["run", "--raw", str(sources["late_q3"]), "--out", str(release), "--no-report"]) == 0
    after = cells(release)
    assert set(after["base_period"]) == {"2020Q2"}
    tiers = set(after.filter(pl.col("geo_level") == "tier")["geo_code"])
    assert "new_tier1" in tiers and len(tiers) == 7  # CBN's six and unallocated
    national = after.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                            & (pl.col("period") == "2020Q2"))
    assert national["value"].to_list() == [100.0, 100.0]
    untouched = ~pl.col("period").is_in(["2020Q3", "2020"])
    assert after.filter(untouched).equals(first.filter(untouched))
    revisions = pl.read_parquet(release / "revisions.parquet")
    assert set(revisions["period"]) <= {"2020Q3", "2020"} and set(revisions["reason"]) == {"late data"}
    assert revisions.height > 0


def test_a_run_contradicting_a_frozen_setting_stops_before_it_writes(release, capsys):
    before = snapshot(release)
    runs = len(open_instance(release).get_runs())
    result = launch(release, partition("2021Q1"), {"resources": {"settings": {"config": {"tier_scheme": "five"}}}})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE")
    assert "tier_scheme is 'six' in this release" in str(failure.event_specific_data.error)
    capsys.readouterr()
    assert main(["run", "--raw", str(release / "nowhere"), "--out", str(release), "--base", "2020Q1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "base_period is 2020Q2 in this release" in err[0] and "rebase --to 2020Q1" in err[0]
    assert snapshot(release) == before  # no step ran, nothing was written
    assert len(open_instance(release).get_runs()) == runs + 2 and read_settings(release).tier_scheme == "six"


def test_rebase_is_a_job_over_every_quarter(release):
    before = snapshot(release)
    rebase = {"resources": {"settings": {"config": {"rebase_to": "2020Q3"}}}}
    partial = launch(release, partition("2020Q4"), rebase, job=rebase_release_job)
    assert not partial.success and snapshot(release) == before  # refused before it wrote
    result = launch(release, every_quarter(), rebase, job=rebase_release_job)
    assert result.success
    after = cells(release)
    assert set(after["base_period"]) == {"2020Q3"} and read_settings(release).base_period == "2020Q3"
    national = after.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                            & (pl.col("period") == "2020Q3"))
    assert national["value"].to_list() == [100.0, 100.0]
    assert set(pl.read_parquet(release / "revisions.parquet")["reason"]) == {"rebase"}


# ------------------------------------------------------------------------------------------ stale quarters
def test_a_run_that_leaves_a_quarter_stale_publishes_nothing(release, sources):
    """New data for 2020Q3 lands; a run of 2021Q1 alone takes the file in but may not publish a release in which
    2020Q3 is computed without it. The next CLI call recomputes 2020Q3 and publishes."""
    shutil.copy(sources["late_q3"] / "late_q3.csv", read_settings(release).raw_path)
    published = {name: (release / name).read_bytes() for name in PUBLISHED}
    result = launch(release, partition("2021Q1"))
    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert "every_stage_is_computed_from_the_release_as_it_is" in failed  # (and rows in no longer reconcile)
    assert {name: (release / name).read_bytes() for name in PUBLISHED} == published
    assert main(["run", "--out", str(release), "--no-report"]) == 0  # the release's own raw path
    revisions = pl.read_parquet(release / "revisions.parquet")
    assert set(revisions["period"]) == {"2020Q3", "2020"}
    inventory = pl.read_parquet(release / "state" / "assets" / "raw_inventory.parquet")
    assert inventory["source_file"].to_list().count("late_q3.csv") == 1


def test_new_base_quarter_data_from_the_ui_stops_with_the_rebase_message(release, sources):
    landing = Path(read_settings(release).raw_path)
    base_rows = pl.read_csv(landing / "usage_2020-05.csv", infer_schema=False)
    base_rows.with_columns(pl.lit("acct-base-late").alias("account_id")).write_csv(landing / "late_base.csv")
    before = snapshot(release)
    result = launch(release, partition("2021Q1"))
    assert not result.success
    messages = [str(e.event_specific_data.error) for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert any("new data for the base quarter 2020Q2" in m and "rebase --to 2020Q2" in m for m in messages)
    assert snapshot(release) == before


# ------------------------------------------------------------------------------------------ all or nothing
def test_a_killed_run_leaves_the_release_as_it_was_and_a_rerun_logs_each_revision_once(release, sources):
    published = {name: (release / name).read_bytes() for name in PUBLISHED}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--raw", str(sources["late_q4"]), "--out",
                             str(release), "--no-report"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "YUNZHI_PROGRESS": "0"})
    staging = release / "state" / "staging"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if any(staging.rglob("revisions.parquet")):  # staged, not yet swapped in
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert {name: (release / name).read_bytes() for name in PUBLISHED} == published
    assert main(["run", "--raw", str(sources["late_q4"]), "--out", str(release), "--no-report"]) == 0
    revisions = pl.read_parquet(release / "revisions.parquet")
    assert revisions.height > 0 and set(revisions["period"]) == {"2020Q4", "2020"}
    assert revisions.select(KEY).is_unique().all() and not list(staging.iterdir())
    assert main(["run", "--raw", str(sources["late_q4"]), "--out", str(release), "--no-report"]) == 0
    assert pl.read_parquet(release / "revisions.parquet").height == revisions.height


def test_a_swap_a_kill_interrupted_is_completed(tmp_path):
    release, staging = tmp_path / "release", tmp_path / "release" / "state" / "staging" / "run-1"
    (staging / "report").mkdir(parents=True)
    for name, text in (("indices.parquet", "new"), ("manifest.json", "new"), ("report/index.html", "new")):
        (staging / name).write_text(text)
    (release / "report").mkdir()
    (release / "report" / "index.html").write_text("old")
    (release / "indices.parquet").write_text("old")
    (release / "manifest.json").write_text("old")
    moves = [("indices.parquet", "indices.parquet"), ("manifest.json", "manifest.json"), ("report", "report")]
    swap_in(staging, release, moves)
    assert [(release / n).read_text() for n in ("indices.parquet", "manifest.json", "report/index.html")] == \
        ["new"] * 3 and not staging.exists()
    # killed after its journal and the first move: the next run's start completes it
    again = release / "state" / "staging" / "run-2"
    again.mkdir()
    (again / "manifest.json").write_text("newer")
    (release / "indices.parquet").write_text("newer")  # moved already
    (again / JOURNAL).write_text('{"moves": [["indices.parquet", "indices.parquet"], '
                                 '["manifest.json", "manifest.json"]], "removals": ["report"]}')
    abandoned = release / "state" / "staging" / "run-3"  # staged, never swapped: dropped
    abandoned.mkdir()
    (abandoned / "indices.parquet").write_text("never published")
    assert finish_interrupted_swaps(release / "state", release) == ["run-2"]
    assert (release / "manifest.json").read_text() == "newer" and not (release / "report").exists()
    assert (release / "indices.parquet").read_text() == "newer" and not list((release / "state" / "staging").iterdir())


# ------------------------------------------------------------------------------------------ one writer
def test_two_continues_at_once_keep_both_files(release, sources, tmp_path):
    calls = [subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--raw", str(sources[name]), "--out",
                               str(release), "--no-report"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "YUNZHI_PROGRESS": "0"}) for name in ("late_q3", "late_q4")]
    outcomes = [call.communicate(timeout=600) for call in calls]
    assert [call.returncode for call in calls] == [0, 0], outcomes
    assert any("waiting for" in err for _, err in outcomes)  # the second waited for the first
    inventory = pl.read_parquet(release / "state" / "assets" / "raw_inventory.parquet")
    assert {"late_q3.csv", "late_q4.csv"} <= set(inventory["source_file"])
    raw, fresh = tmp_path / "all", tmp_path / "fresh"  # a release of every file at once
    shutil.copytree(sources["landing"], raw)
    for name in ("late_q3", "late_q4"):
        shutil.copy(sources[name] / f"{name}.csv", raw)
    assert main(["run", "--raw", str(raw), "--out", str(fresh), "--base", "2020Q2", "--tiers", "six",
                 "--no-report"]) == 0
    continued, again = cells(release), cells(fresh)
    differ = continued.join(again, on=KEY, suffix="_fresh").filter(
        pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_fresh")) for c in CELL))
    assert continued.height == again.height and differ.height == 0, differ.group_by("period", "status", "status_fresh").len()
