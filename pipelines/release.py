"""Launching a release's runs from Python (the CLI, the benchmark, the tests): the same jobs the UI runs.

A run into a release is two runs of `quarterly_release` (or `rebase_release`) on the release's own Dagster instance
(DIR/.dagster): the raw inventory first (it finds the quarters, adds them as partitions and applies the release's
rules), then every other stage over the quarters that need computing. Every rule lives in the graph: this module
only holds the release's writer lock across the two runs, picks the quarter range and reports errors in one line.
"""
from __future__ import annotations

import gc
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import yaml

from assets.support.io import quarters_to_compute
from assets.support.settings import LOCK_WAIT_SECONDS, RANGE_TAGS, acquire, writer_lock
from assets.transforms.errors import InputError
from assets.transforms.files import write_text_atomic
from assets.transforms.ingest.inventory import data_quarters
from assets.transforms.release import is_published

INVENTORY = dg.AssetKey("raw_inventory")
# Each release's Dagster instance: stock SQLite storage under DIR/.dagster (relative, so a moved release keeps its
# history), no telemetry nor first-visit pop-up, and one run at a time for runs the UI's daemon launches (sensor,
# schedule, backfill; the release's writer lock covers every other way of running), each started within a second of
# being queued (Dagster's default looks every 5 s; the queue is one local SQLite file).
INSTANCE_CONFIG = {"telemetry": {"enabled": False}, "nux": {"enabled": False},
                   "run_queue": {"max_concurrent_runs": 1, "dequeue_interval_seconds": 1}}


@dataclass
class Outcome:
    """What a CLI call did: the release, its quarters, the quarters recomputed and the runs."""

    release: Path
    quarters: list[str]
    recomputed: list[str]
    run_ids: list[str] = field(default_factory=list)


def preload() -> None:
    """For a process that runs releases and then exits (`python -m pipelines run|rebase`, the benchmark, both of
    which started the Great Expectations validator before importing Dagster): import the code location with the
    cyclic garbage collector paused and freeze what it made. Those objects live as long as the process; scanning
    them costs time at every full collection, and more at exit. (Not done for in-process callers such as the
    tests, which go on after a run.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        import pipelines.definitions  # noqa: F401
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def instance_home(release_dir: str | Path) -> Path:
    """DIR/.dagster, with a stock dagster.yaml (written once; settings added to it by hand are kept)."""
    home = Path(release_dir).resolve() / ".dagster"
    config = home / "dagster.yaml"
    before = (yaml.safe_load(config.read_text(encoding="utf-8")) if config.exists() else None) or {}
    after = {**INSTANCE_CONFIG, **before}
    if after != before:
        write_text_atomic(yaml.safe_dump(after, sort_keys=False), config)
    return home


def open_instance(release_dir: str | Path) -> dg.DagsterInstance:
    """The release's own Dagster instance, so releases never mix runs."""
    return dg.DagsterInstance.from_config(str(instance_home(release_dir)))


def quarterly_release_job() -> dg.JobDefinition:
    from pipelines.definitions import defs

    return defs.resolve_job_def("quarterly_release")


def rebase_release_job() -> dg.JobDefinition:
    from pipelines.definitions import defs

    return defs.resolve_job_def("rebase_release")


JOB_FUNCTIONS = {"quarterly_release": quarterly_release_job, "rebase_release": rebase_release_job}


def run_config(release_dir: Path, settings: dict) -> dict:
    named = {k: v for k, v in settings.items() if v is not None}
    return {"resources": {"settings": {"config": {"release_dir": str(release_dir), **named}},
                          "io_manager": {"config": {"release_dir": str(release_dir)}}},
            "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # errors are reported in one line


def execute(instance: dg.DagsterInstance, job_name: str, config: dict, selection: list[dg.AssetKey],
            quarters: list[str] | None = None) -> dg.JobExecutionResult:
    """One run of the named job in this process, as the UI's run worker would execute it (the job's executor; the
    outputs stay in the IO manager's files rather than in the result); a failure as one line."""
    from pipelines.progress import Progress

    tags = dict(zip(RANGE_TAGS, (quarters[0], quarters[-1]))) if quarters else {}
    with Progress(instance, selection, quarters) as progress:
        result = dg.execute_job(dg.reconstructable(JOB_FUNCTIONS[job_name]), instance, run_config=config,
                                tags={**tags, **progress.tags}, asset_selection=selection)
    if not result.success:
        raise InputError(failure_line(result))
    return result


def failure_line(result: dg.JobExecutionResult) -> str:
    """A failed run in one line: the whole-input error a stage raised, else the failed checks, else the error."""
    for event in result.all_events:
        if event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE", "RESOURCE_INIT_FAILURE"):
            error = getattr(event.event_specific_data, "error", None)
            while error is not None:
                if error.cls_name == "InputError":
                    return error.message.strip().splitlines()[-1].split("InputError: ", 1)[-1]
                error = error.cause
    failed = [f"{e.asset_key.to_user_string()}: {e.check_name}" for e in result.get_asset_check_evaluations()
              if not e.passed]
    if failed:
        return f"checks failed: {'; '.join(failed)}"
    for event in result.all_events:
        if event.is_failure:
            return event.message or event.event_type_value
    return f"run {result.run_id} failed"


def selection(until: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> list[dg.AssetKey]:
    """Every asset but the inventory and `skip`, or only those `until` (asset names) needs."""
    from pipelines.definitions import ALL_ASSETS

    chosen = (dg.AssetSelection.assets(*until).upstream().required_multi_asset_neighbors() if until
              else dg.AssetSelection.all()) - dg.AssetSelection.assets(*skip)
    return sorted(chosen.resolve(ALL_ASSETS) - {INVENTORY}, key=lambda k: k.to_user_string())


def run_release(raw: str | None, out: str | Path, until: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                rebase_to: str = "", say=None, **settings) -> Outcome:
    """Deliver `raw` into the release `out` (a new release is created with `settings`; an existing one keeps its
    own) and publish it: the inventory run, then one run over the quarters that need computing (all of them for a
    rebase). `until` (asset names) stops after the stages those need (the benchmark times the indices this way;
    nothing is published then); `skip` leaves assets out (the report, with --no-report). A first run that fails
    leaves no release behind."""
    out_dir = Path(out).resolve()
    created = not out_dir.exists() or not any(out_dir.iterdir())
    out_dir.mkdir(parents=True, exist_ok=True)
    instance = open_instance(out_dir)
    lock = writer_lock(out_dir)
    job_name = "rebase_release" if rebase_to else "quarterly_release"
    config = run_config(out_dir, {**settings, "raw_path": str(Path(raw).resolve()) if raw else None,
                                  "rebase_to": rebase_to or None})
    try:
        acquire(lock, out_dir, f"python -m pipelines {'rebase' if rebase_to else 'run'}", LOCK_WAIT_SECONDS,
                say or (lambda line: print(line, file=sys.stderr, flush=True)))
        try:
            runs = [execute(instance, job_name, config, [INVENTORY]).run_id]
            import polars as pl

            quarters = data_quarters(pl.read_parquet(out_dir / "state" / "assets" / "raw_inventory.parquet"))
            todo = quarters if rebase_to or until else quarters_to_compute(out_dir)
            if not todo:
                return Outcome(out_dir, quarters, [], runs)
            runs.append(execute(instance, job_name, config, selection(until, skip), todo).run_id)
            return Outcome(out_dir, quarters, todo, runs)
        finally:
            lock.release()
    except BaseException:
        if created:  # a failed first run leaves no half-made release
            instance.dispose()
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        instance.dispose()


def rebase_release(out: str | Path, to: str, raw: str | None = None, until: tuple[str, ...] = (),
                   skip: tuple[str, ...] = ()) -> Outcome:
    """Recompute every quarter of the release `out` against the base quarter `to` (taking `raw` too, if given)."""
    if not is_published(out):
        raise InputError(f"{Path(out)}: no release to rebase (run python -m pipelines run first)")
    return run_release(raw, out, until, skip, rebase_to=to)
