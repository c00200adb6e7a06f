"""A release's settings and rules hold however a run is launched (CONTRACT.md "Partitions, base and runs"): settings
read from the release, frozen ones refused before anything is written, rebase as a job, stale quarters never
published, new base-quarter data stopped with the rebase message."""
from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from assets.transforms.release import read_settings
from pipelines.cli import main
from pipelines.release import open_instance, rebase_release_job
from release_fixtures import (ASSETS, CELL, KEY, PUBLISHED, ROOT, built, cells, every_quarter, launch,  # noqa: F401
                              partition, release, snapshot, sources)


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
