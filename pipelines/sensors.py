"""Sensors: new raw files in the landing folder -> a run for their quarters; a failed run or check -> a webhook.

The landing sensor keeps a cursor of the files it has seen (path, size, mtime -> sha256), so a file is hashed once.
A file is new when its content hash is neither in the cursor nor in the release's raw inventory (byte-identical
copies are one delivery). On new files it inventories the folder with the project's own functions
(`inventory_files`, `data_quarters`), adds the quarters it finds as dynamic partitions, and requests one run of
`quarterly_release` over the quarters the new files touch; that run materialises `raw_inventory` first, so the
partitioned stages see the new files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import polars as pl

from assets.transforms.ingest import InputError, content_hash, data_quarters, inventory_files, list_raw_files
from pipelines.notify import Notifier, failed_checks, summary
from pipelines.partitions import quarterly_partitions

ROOT = Path(__file__).resolve().parent.parent
DEMO_RAW = ROOT / "data" / "demo" / "raw"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def landing_folder() -> str:
    """YUNZHI_LANDING, else the release's raw path (YUNZHI_RAW), else the demo raw folder."""
    return os.environ.get("YUNZHI_LANDING") or os.environ.get("YUNZHI_RAW") or str(DEMO_RAW)


def release_hashes(release_dir: str | None) -> set[str]:
    """Content hashes the release has already ingested (from its raw inventory), if there is one."""
    path = Path(release_dir) / "state" / "assets" / "raw_inventory.parquet" if release_dir else None
    if path is None or not path.exists():
        return set()
    return set(pl.read_parquet(path, columns=["sha256"])["sha256"])


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


def quarters_of_files(inventory: pl.DataFrame, hashes: set[str]) -> list[str]:
    rows = inventory.filter(pl.col("sha256").is_in(list(hashes)) & (pl.col("status") == "ingested"))
    return sorted(set(rows["quarters"].explode().drop_nulls()))


def settings_override(landing: str) -> dict:
    return {"resources": {"settings": {"config": {"raw_path": landing}}}}


@dg.sensor(job_name="quarterly_release", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Watches the landing folder (YUNZHI_LANDING, default the release's raw path) for new raw "
                       "files; adds the quarters found as partitions and requests a run of those quarters.")
def raw_landing_sensor(context: dg.SensorEvaluationContext):
    landing = landing_folder()
    if not Path(landing).exists():
        return dg.SkipReason(f"landing folder {landing} does not exist")
    try:
        cursor = json.loads(context.cursor) if context.cursor else {}
        cursor, fresh = scan_landing(landing, cursor)
    except InputError as exc:
        return dg.SkipReason(str(exc))
    new = set(fresh) - release_hashes(os.environ.get("YUNZHI_RELEASE"))
    if not new:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"no new raw files in {landing}")
    try:
        inventory = inventory_files(landing)
        quarters = data_quarters(inventory)
    except InputError as exc:  # an unreadable delivery: do not advance the cursor, say why
        return dg.SkipReason(f"new files in {landing} cannot be read: {exc}")
    touched = quarters_of_files(inventory, new)
    if not touched:
        context.update_cursor(json.dumps(cursor))
        return dg.SkipReason(f"new files in {landing} hold no dated rows")
    missing = [q for q in quarters if not context.instance.has_dynamic_partition(quarterly_partitions.name, q)]
    first, last = touched[0], quarters[-1]  # a changed quarter and every later one (growth, ranks depend on them)
    request = dg.RunRequest(
        run_key=f"landing-{'-'.join(sorted(new))[:64]}",
        run_config=settings_override(landing),
        tags={RANGE_TAGS[0]: first, RANGE_TAGS[1]: last, "yunzhi/trigger": "raw_landing_sensor"},
    )
    context.update_cursor(json.dumps(cursor))
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
