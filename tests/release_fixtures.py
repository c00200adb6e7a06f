"""Fixtures and helpers of the release-rule tests (test_release_settings.py, test_release_publishing.py): a small
release built once per test session with a base other than the earliest quarter and six tiers, copied for each test.

Runs "from the UI" are executed as Dagster's run worker executes a launched run: the named job, the release's own
instance, no run config but what the launchpad would send, the release named by YUNZHI_RELEASE.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.transforms.release import (read_settings, settings_path, write_settings)
from pipelines.cli import main
from pipelines.definitions import ALL_ASSETS
from pipelines.release import open_instance, quarterly_release_job
from conftest import built_once
from test_pipeline import write_fixture

ROOT = Path(__file__).resolve().parents[1]
KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
CELL = ["value", "accounts", "status"]
ASSETS = [key for assets_def in ALL_ASSETS for key in assets_def.keys]
PUBLISHED = ("indices.parquet", "derived.parquet", "shift_share.parquet", "quarantine.parquet", "revisions.parquet",
             "quality.json", "manifest.json")


SOURCES = ("landing", "late_q3", "late_q4")  # folders, each its own fixture key


def _write_sources(root: Path) -> None:
    full = pl.read_csv(write_fixture(root / "full.csv"), infer_schema=False)
    landing = root / "landing"
    landing.mkdir()
    dated = full.filter(pl.col("usage_date").str.contains(r"^\d{4}-"))
    for (month,), part in dated.group_by(pl.col("usage_date").str.slice(0, 7)):
        part.write_csv(landing / f"usage_{month}.csv")
    for name, prefix in (("late_q3", "2020-08"), ("late_q4", "2020-11")):
        (root / name).mkdir()
        (full.filter(pl.col("usage_date").str.starts_with(prefix))
         .with_columns(pl.lit(f"acct-{name}").alias("account_id")).write_csv(root / name / f"{name}.csv"))
    (root / "written").touch()


@pytest.fixture(scope="session")
def sources(tmp_path_factory, worker_id) -> dict[str, Path]:
    """A landing folder of one file per quarter (2020Q1..2021Q1), and late files for 2020Q3 and 2020Q4; written once
    per test session (tests copy what they change)."""
    root = built_once(tmp_path_factory, worker_id, "release_sources", "written", _write_sources)
    return {name: root / name for name in SOURCES}


@pytest.fixture(scope="session")
def built(sources, tmp_path_factory, worker_id) -> Path:
    """A release with a base other than the earliest quarter and six tiers, built once per test session (by one
    worker; the modules of the release rules share it) and kept aside for tests to copy."""
    def build(root: Path) -> None:
        assert main(["run", "--raw", str(sources["landing"]), "--out", str(root / "release"), "--base", "2020Q2",
                     "--tiers", "six", "--no-report"]) == 0

    return built_once(tmp_path_factory, worker_id, "release_built", "release/indices.parquet", build) / "release"


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
    """A run as the UI launches it: the named job on the release's instance, with only the launchpad's config
    (every asset but the report, which these rules do not concern: 4-6 s a run; the browser test draws it)."""
    instance = open_instance(release)
    try:
        return dg.execute_job(dg.reconstructable(job), instance, run_config=run_config or {}, tags=tags,
                              asset_selection=[k for k in ASSETS if k != dg.AssetKey("quarterly_report")])
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


