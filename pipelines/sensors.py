"""Sensors: new raw files in the landing folder -> a run for their quarters; a failed run or check -> a webhook.

The landing folder is the release's raw path (DIR/state/settings.json; YUNZHI_LANDING overrides it). The landing
sensor keeps a cursor of the files it has seen (path, size, mtime -> sha256), so a file is hashed once. A file is
new when its content hash is neither in the cursor nor in the release's raw inventory (byte-identical copies are one
delivery). On new files it inventories them with the project's own functions, adds the quarters found as dynamic
partitions, and requests one run of `quarterly_release` over every quarter that then needs computing; that run
inventories the folder first, under the release's settings and rules, as every run does.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import polars as pl

from assets.support.io import quarters_to_compute, stored_path
from assets.support.partitions import quarterly_partitions
from assets.support.settings import RANGE_TAGS
from assets.transforms.errors import InputError
from assets.transforms.ingest.inventory import content_hash, data_quarters, take_inventory
from assets.transforms.ingest.read import list_raw_files
from assets.transforms.release import read_settings
from pipelines.notify import Notifier, failed_checks, summary


def release_dir() -> Path | None:
    found = os.environ.get("YUNZHI_RELEASE")
    return Path(found) if found else None


def landing_folder(release: Path | None = None) -> str:
    """YUNZHI_LANDING, else the release's raw path (its settings), else ''."""
    release = release or release_dir()
    settings = read_settings(release) if release else None
    return os.environ.get("YUNZHI_LANDING") or (settings.raw_path if settings else "")


def stored_inventory(release: Path | None) -> pl.DataFrame | None:
    path = stored_path(release, "raw_inventory") if release else None
    return pl.read_parquet(path) if path is not None and path.exists() else None


def scan_landing(landing: str, cursor: dict) -> tuple[dict, list[str]]:
    """(new cursor, hashes of files not seen before): hashes only files whose (size, mtime) changed."""
    seen, fresh = {}, []
    for path in list_raw_files(landing):
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        old = cursor.get(str(path))
        if old and old[:2] == stamp:
            seen[str(path)] = old
            continue
        digest = content_hash(path)
        seen[str(path)] = stamp + [digest]
        fresh.append(digest)
    return seen, fresh


def delivery_config(release: Path, landing: str) -> dict:
    """The run's config: none when it reads the release's own raw path; the landing folder when that differs."""
    if landing == read_settings(release).raw_path:
        return {}
    return {"resources": {"settings": {"config": {"raw_path": landing}}}}


def plan(release: Path, landing: str) -> tuple[list[str], list[str]]:
    """(the release's quarters with the landing folder delivered, the quarters a run must then compute)."""
    inventory = take_inventory(landing, stored_inventory(release))
    return data_quarters(inventory), quarters_to_compute(release, inventory)


@dg.sensor(job_name="quarterly_release", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the release's landing folder (its raw path; YUNZHI_LANDING overrides) for new raw "
                       "files; adds the quarters found as partitions and requests one run over the quarters to "
                       "compute.")
def raw_landing_sensor(context: dg.SensorEvaluationContext):
    release = release_dir()
    if release is None or read_settings(release) is None:
        return dg.SkipReason("no release to watch for (YUNZHI_RELEASE is not a release with settings)")
    landing = landing_folder(release)
    if not landing or not Path(landing).exists():
        return dg.SkipReason(f"landing folder {landing or '(none)'} does not exist")
    try:
        cursor, fresh = scan_landing(landing, json.loads(context.cursor) if context.cursor else {})
    except InputError as exc:
        return dg.SkipReason(str(exc))
    known = stored_inventory(release)
    new = set(fresh) - (set(known["sha256"]) if known is not None else set())
    if not new:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"no new raw files in {landing}")
    try:
        quarters, todo = plan(release, landing)
    except InputError as exc:  # an unreadable delivery: do not advance the cursor, say why
        return dg.SkipReason(f"new files in {landing} cannot be read: {exc}")
    context.update_cursor(json.dumps(cursor))
    if not todo:
        return dg.SkipReason(f"new files in {landing} change no quarter")
    missing = [q for q in quarters if not context.instance.has_dynamic_partition(quarterly_partitions.name, q)]
    request = dg.RunRequest(run_key=f"landing-{'-'.join(sorted(new))[:64]}", run_config=delivery_config(release, landing),
                            tags={RANGE_TAGS[0]: todo[0], RANGE_TAGS[1]: todo[-1],
                                  "yunzhi/trigger": "raw_landing_sensor"})
    return dg.SensorResult(run_requests=[request],
                           dynamic_partitions_requests=[quarterly_partitions.build_add_request(missing)] if missing
                           else [])


@dg.run_failure_sensor(name="run_failure_webhook", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Posts a one-paragraph summary of a failed run (steps, checks, where to look) "
                                   "to the webhook URL setting; does nothing while it is empty.")
def run_failure_webhook(context: dg.RunFailureSensorContext, notifier: Notifier):
    if not notifier.enabled:
        return dg.SkipReason("no webhook URL set (YUNZHI_WEBHOOK_URL)")
    text = summary(context.instance, context.dagster_run, notifier.ui_url,
                   context.failure_event.message if context.failure_event else None)
    notifier.post(text, run_id=context.dagster_run.run_id, status="failure")
    context.log.info(f"posted failure summary of run {context.dagster_run.run_id}")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="failed_check_webhook",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Posts a summary when a run succeeds but some (non-blocking) checks failed.")
def failed_check_webhook(context: dg.RunStatusSensorContext, notifier: Notifier):
    if not notifier.enabled:
        return dg.SkipReason("no webhook URL set (YUNZHI_WEBHOOK_URL)")
    if not failed_checks(context.instance, context.dagster_run.run_id):
        return dg.SkipReason("all checks passed")
    notifier.post(summary(context.instance, context.dagster_run, notifier.ui_url),
                  run_id=context.dagster_run.run_id, status="failed_checks")
    context.log.info(f"posted failed-check summary of run {context.dagster_run.run_id}")


SENSORS = [raw_landing_sensor, run_failure_webhook, failed_check_webhook]
