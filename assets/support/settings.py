"""Settings: one resource, read from the release when a run starts, whatever launched the run.

The fields are what a run may name (launchpad, CLI, sensor, schedule, backfill, `dagster asset materialize`); left
empty, each is as the release says (DIR/state/settings.json, `assets.transforms.release`). Opening the release
takes its writer lock for the whole run, completes a publication a killed run left halfway, and refuses a run that
contradicts a frozen setting before any step writes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import dagster as dg
import polars as pl
from filelock import FileLock, Timeout
from pydantic import Field, PrivateAttr

from assets.transforms.errors import InputError
from assets.transforms.quarters import quarters_between
from assets.transforms.reference import SEEDS_DIR, Reference
from assets.transforms.release import Release, finish_interrupted_swaps, open_release, quarter_fingerprints

QUARTER_OR_EMPTY = r"^(\d{4}Q[1-4])?$"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
LOCK_WAIT_SECONDS = 3600  # a run waits this long for another writer of its release (another run, a CLI call)


class Settings(dg.ConfigurableResource):
    """The release this run writes, and the settings it names (empty: as the release says)."""

    release_dir: str = Field(default="", description="Release directory: published files at its top, working "
                             "state in state/; empty = the environment variable YUNZHI_RELEASE (set by make ui)")
    raw_path: Optional[str] = Field(default=None, description="Raw usage this run delivers: a Parquet or CSV file, "
                                    "or a directory of them; empty = the release's raw path (its landing folder)")
    base_period: Optional[str] = Field(default=None, pattern=QUARTER_OR_EMPTY, description="Base quarter such as 2020Q1 "
                                       "(a new release; empty = the earliest quarter in the data). Frozen once "
                                       "published: change it with rebase_to")
    rebase_to: Optional[str] = Field(default=None, pattern=QUARTER_OR_EMPTY, description="Rebase: recompute every quarter "
                                     "against this base quarter (launch over all partitions)")
    products_path: Optional[str] = Field(default=None, description="Product catalogue CSV (a new release; empty "
                                         "= seeds/products.csv)")
    seeds_dir: Optional[str] = Field(default=None, description="Reference data folder (a new release; empty = the "
                                     "project's seeds/)")
    tier_scheme: Optional[str] = Field(default=None, pattern=r"^(five|six)?$", description="'five' (新一线 folded into 二线, "
                                                          "as the source; the default) or 'six' (CBN), for a new "
                                                          "release")
    tier_vintage: Optional[str] = Field(default=None, description="city_tiers.csv vintage (a new release; empty = "
                                        "the earliest)")
    engine: Optional[str] = Field(default=None, pattern=r"^(polars|spark)?$", description="Row-level engine of "
                                                         "account_usage and usage_cube (a new release): 'polars' "
                                                         "(the default; streaming, this machine) or 'spark'")
    privacy_k: Optional[int] = Field(default=None, ge=1, description="Suppress a cell (all but national x all) "
                                     "with usage and fewer than this many contributors (customers; a new release; "
                                     "default 5)")
    privacy_p: Optional[float] = Field(default=None, gt=0, le=100, description="p% rule: suppress a cell whose "
                                       "total minus its two largest contributions is below p% of the largest (a new "
                                       "release; default 10)")
    privacy_protection_percent: Optional[float] = Field(default=None, ge=0, le=100, description="q: every "
                                                        "suppressed sensitive cell keeps an interval reaching q% "
                                                        "below and above its value (a new release; 0 or empty = p)")
    allow_empty_quarters: Optional[bool] = Field(default=None, description="Publish zeros for a quarter with no "
                                                 "rows inside the range instead of stopping (kept by the release)")
    max_quarantine_share: Optional[float] = Field(default=None, ge=0, le=100, description="Stop before publishing "
                                                  "when more than this percent of the rows delivered is quarantined "
                                                  "(default 5; kept by the release)")
    national_change_factor: Optional[float] = Field(default=None, gt=1, description="Warn (a check, in the UI and "
                                                    "the run's summary) when a national series moves by more than "
                                                    "this factor in a quarter (default 3; kept by the release)")
    growth_rank_min_reference: Optional[float] = Field(default=None, ge=0, description="Growth ranks leave out "
                                                       "entities whose reference value is below this many index "
                                                       "points (a new release; default 0.001)")
    sample_rows: Optional[int] = Field(default=None, ge=1, description="Rows sampled per quarter for the "
                                       "row-level Great Expectations suites (default 10,000)")

    _release: Optional[Release] = PrivateAttr(default=None)
    _reference: Optional[Reference] = PrivateAttr(default=None)
    _lock: Optional[FileLock] = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        directory, run = release_directory(self.release_dir), context.run
        given = {k: getattr(self, k) for k in type(self).model_fields if k not in ("release_dir", "rebase_to")}
        arguments = (directory, given, SEEDS_DIR, self.rebase_to or "", run.job_name, run_quarters(run.tags),
                     context.instance.get_dynamic_partitions("quarter"))
        open_release(*arguments, write=False)  # a run the release refuses stops before it writes anything
        self._lock = writer_lock(directory)
        acquire(self._lock, directory, f"run {run.run_id}", LOCK_WAIT_SECONDS)
        try:
            finish_interrupted_swaps(directory / "state", directory)
            self._release = open_release(*arguments)  # again, under the lock: another writer may have published
        except BaseException:
            self._lock.release()
            raise
        # a run's GX suites go to the validator process: started now, it loads GX while the first stages work
        from expectations import validator

        validator.start()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()

    @property
    def release(self) -> Release:
        if self._release is None:
            raise RuntimeError("the release is opened when a run starts (Settings.setup_for_execution)")
        return self._release

    @property
    def directory(self) -> Path:
        return self.release.directory

    @property
    def state(self) -> Path:
        return self.release.state

    def fingerprints(self, inventory: pl.DataFrame, quarters: list[str]) -> dict[str, str]:
        """What each of `quarters` is computed from in this run (`assets.transforms.release.quarter_fingerprints`)."""
        found = quarter_fingerprints(inventory, self.release.settings, self.release.base(inventory))
        outside = [q for q in quarters if q not in found]
        if outside:
            raise InputError(f"{self.directory}: quarter {outside[0]} is outside the release's data "
                             f"({min(found)}..{max(found)}); materialise only quarters with data")
        return {q: found[q] for q in quarters}

    def reference(self) -> Reference:
        if self._reference is None:
            self._reference = self.release.settings.reference()
        return self._reference


def release_directory(configured: str) -> Path:
    """The release a run writes: its configured directory, else YUNZHI_RELEASE (read when the run starts)."""
    found = configured or os.environ.get("YUNZHI_RELEASE", "")
    if not found:
        raise InputError("no release directory: set release_dir in the run's config or YUNZHI_RELEASE")
    return Path(found).expanduser().resolve()


def run_quarters(tags: dict) -> list[str] | None:
    """The quarters a run covers (its partition or partition range), or None for a run without partitions."""
    start, end = (tags.get(t) for t in RANGE_TAGS)
    if start and end:
        return quarters_between(start, end)
    return [tags["dagster/partition"]] if tags.get("dagster/partition") else None


# ------------------------------------------------------------------------------------------------ one writer
def writer_lock(directory: Path) -> FileLock:
    """The release's writer lock (DIR/state/.writer.lock). Re-entrant in a process: the CLI holds it across its runs,
    and each run, executing in the CLI's process, takes it again."""
    path = directory / "state" / ".writer.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, thread_local=False, is_singleton=True)


def acquire(lock: FileLock, directory: Path, who: str, wait_seconds: float, say=None) -> None:
    """Take the writer lock, waiting for another writer up to `wait_seconds` (`say` is told once who it waits
    for); an InputError (one line) if it is still held then."""
    owner = Path(lock.lock_file).with_suffix(".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text(encoding="utf-8").strip() if owner.exists() else "another writer"
        if say is not None:
            say(f"{directory}: waiting for {holder} to finish writing this release")
        started = time.monotonic()
        try:
            lock.acquire(timeout=wait_seconds)
        except Timeout:
            raise InputError(f"{directory}: {holder} has been writing this release for over "
                             f"{time.monotonic() - started:.0f} s; try again when it ends (lock {lock.lock_file})")
    if lock.lock_counter == 1:
        owner.write_text(f"{who} (pid {os.getpid()})\n", encoding="utf-8")
