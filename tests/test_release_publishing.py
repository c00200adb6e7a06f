"""Publishing a release is all or nothing and has one writer at a time (CONTRACT.md "Partitions, base and runs"): a
killed run leaves the release and its revisions as they were, an interrupted swap is completed, and two continues
launched at once keep both deliveries."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import polars as pl

from assets.transforms.release import JOURNAL, finish_interrupted_swaps, swap_in
from pipelines.cli import main
from release_fixtures import (ASSETS, CELL, KEY, PUBLISHED, ROOT, built, cells, every_quarter, launch,  # noqa: F401
                              partition, release, snapshot, sources)


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
def test_two_continues_at_once_keep_both_files(release, sources):
    calls = [subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--raw", str(sources[name]), "--out",
                               str(release), "--no-report"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "YUNZHI_PROGRESS": "0"}) for name in ("late_q3", "late_q4")]
    outcomes = [call.communicate(timeout=600) for call in calls]
    assert [call.returncode for call in calls] == [0, 0], outcomes
    assert any("waiting for" in err for _, err in outcomes)  # the second waited for the first
    inventory = pl.read_parquet(release / "state" / "assets" / "raw_inventory.parquet")
    assert {"late_q3.csv", "late_q4.csv"} <= set(inventory["source_file"])
    # every row of both deliveries is in the published release: the rows of every file ingested reconcile, and
    # each delivery's own accounts carry all its rows in its quarter
    counts = json.loads((release / "manifest.json").read_text())["row_counts"]
    assert counts["rows_in"] == inventory.filter(pl.col("status") == "ingested")["rows"].sum()
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_quarantined"]
    for name, quarter in (("late_q3", "2020Q3"), ("late_q4", "2020Q4")):
        usage = pl.read_parquet(release / "state" / "assets" / "account_usage" / f"{quarter}.parquet")
        assert usage.filter(pl.col("account_id") == f"acct-{name}")["rows"].sum() == pl.read_csv(
            sources[name] / f"{name}.csv").height
