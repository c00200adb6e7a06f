"""Operating from the UI: definitions (owners, kinds, job, sensors, schedule), the landing sensor, the quarterly
schedule, the failure webhook (against a local http.server) and the CLI's progress display."""
from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import threading
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipelines.notify import Notifier, summary
from pipelines.schedules import CRON, quarter_before, quarterly_schedule
from pipelines.sensors import raw_landing_sensor, run_failure_webhook, scan_landing

from tests.e2e.fixture import QUARTERS, tiny_rows, write_tiny_raw


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny release built by the CLI from a landing folder (its raw path), kept aside for each test to copy."""
    from pipelines.release import run_release

    root = tmp_path_factory.mktemp("built")
    raw = write_tiny_raw(root / "raw")
    run_release(raw, root / "release", skip=("quarterly_report",))
    return raw, root / "release"


@pytest.fixture()
def env(monkeypatch, tmp_path, built):
    """A copy of the built release and its landing folder (the release's settings name the copy's folder)."""
    import dataclasses
    import shutil

    from assets.transforms.release import read_settings, settings_path, write_settings

    raw, release = tmp_path / "raw", tmp_path / "release"
    shutil.copytree(built[0], raw)
    shutil.copytree(built[1], release)
    write_settings(dataclasses.replace(read_settings(release), raw_path=str(raw)), settings_path(release))
    monkeypatch.setenv("YUNZHI_RELEASE", str(release))
    monkeypatch.delenv("YUNZHI_LANDING", raising=False)
    monkeypatch.delenv("YUNZHI_WEBHOOK_URL", raising=False)
    return raw, release


def _late_quarter(raw: Path) -> None:
    """A delivery for 2020Q3, a quarter the release does not hold yet."""
    late = tiny_rows().with_columns(pl.col("usage_date").str.replace(r"^2020-0[45]", "2020-08"))
    late.filter(pl.col("usage_date").str.starts_with("2020-08")).write_csv(raw / "usage_2020Q3.csv")


# ------------------------------------------------------------------------------------------------ definitions
def test_definitions_show_owners_kinds_groups_job_sensors_and_schedule(env):
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        assert node.group_name and node.description, key
        assert node.kinds, key
        if node.partitions_def is not None:
            assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    repo = defs.get_repository_def()
    job = repo.get_job("quarterly_release")
    assert job.partitions_def is not None
    assert {s.name for s in repo.sensor_defs} == {"raw_landing_sensor", "run_failure_webhook", "failed_check_webhook"}
    schedule = repo.get_schedule_def("quarterly_schedule")
    assert schedule.cron_schedule == CRON and schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert "notifier" in repo.get_top_level_resources() and "settings" in repo.get_top_level_resources()


# ------------------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("moment, quarter", [(dt.date(2021, 4, 1), "2021Q1"), (dt.date(2021, 1, 1), "2020Q4"),
                                             (dt.date(2020, 7, 1), "2020Q2"), (dt.date(2020, 12, 31), "2020Q3")])
def test_quarter_before(moment, quarter):
    assert quarter_before(moment) == quarter


def test_schedule_requests_the_quarter_just_ended_and_skips_one_without_rows(env):
    with dg.instance_for_test() as instance:
        at = dt.datetime(2020, 7, 1, 6, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        request = quarterly_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=at))
        assert isinstance(request, dg.RunRequest) and request.run_config == {}  # the release's own raw path
        assert (request.tags["dagster/asset_partition_range_start"],
                request.tags["dagster/asset_partition_range_end"]) == ("2020Q2", "2020Q2")
        assert set(instance.get_dynamic_partitions("quarter")) == set(QUARTERS)
        later = dt.datetime(2021, 1, 1, 6, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        skip = quarterly_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=later))
        assert isinstance(skip, dg.SkipReason) and "2020Q4" in skip.skip_message


# ------------------------------------------------------------------------------------------------ landing sensor
def _tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return raw_landing_sensor(context), context.cursor


def test_landing_sensor_requests_only_the_quarters_new_files_change(env):
    raw, _ = env
    with dg.instance_for_test() as instance:
        result, cursor = _tick(instance)  # the release holds every file of its landing folder
        assert isinstance(result, dg.SkipReason) and "no new raw files" in result.skip_message
        assert set(json.loads(cursor)) == {str(p) for p in raw.glob("*.csv")}
        _late_quarter(raw)
        result, cursor = _tick(instance, cursor)
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2020Q3"
        assert request.tags["dagster/asset_partition_range_end"] == "2020Q3"
        assert request.run_config == {}  # the run reads the release's raw path, under the release's settings
        [add] = result.dynamic_partitions_requests
        assert add.partitions_def_name == "quarter" and list(add.partition_keys) == ["2020Q1", "2020Q2", "2020Q3"]
        again, _ = _tick(instance, cursor)  # seen once: not requested again
        assert isinstance(again, dg.SkipReason)


def test_landing_sensor_delivers_another_folder_named_by_yunzhi_landing(env, monkeypatch, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    _late_quarter(landing)
    monkeypatch.setenv("YUNZHI_LANDING", str(landing))
    with dg.instance_for_test() as instance:
        result, _ = _tick(instance)
        [request] = result.run_requests
        assert request.run_config["resources"]["settings"]["config"]["raw_path"] == str(landing)
        assert request.tags["dagster/asset_partition_range_start"] == "2020Q3"


def test_scan_landing_hashes_a_file_once(env):
    raw, _ = env
    cursor, fresh = scan_landing(str(raw), {})
    assert len(fresh) == len(QUARTERS)
    cursor2, fresh2 = scan_landing(str(raw), cursor)
    assert fresh2 == [] and cursor2 == cursor


# ------------------------------------------------------------------------------------------------ webhook
class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def webhook():
    _Hook.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


@dg.asset(check_specs=[dg.AssetCheckSpec("numbers_are_positive", asset="numbers")])
def numbers():
    yield dg.Output([1, 2])
    yield dg.AssetCheckResult(check_name="numbers_are_positive", passed=False, metadata={"negative": 1})


@dg.asset
def broken(numbers):
    raise ValueError("cube levels do not add up in 2020Q2\nmore detail")


def _failed_run(instance):
    result = dg.materialize([numbers, broken], instance=instance, raise_on_error=False,
                            tags={"dagster/partition": "2020Q2", "yunzhi/release": "/data/release"})
    assert not result.success
    return instance.get_run_by_id(result.run_id)


def test_failure_summary_is_one_paragraph_naming_steps_checks_and_where_to_look():
    with dg.instance_for_test() as instance:
        run = _failed_run(instance)
        text = summary(instance, run, "http://127.0.0.1:3000")
    assert "\n" not in text and "2020Q2" in text and "failed" in text
    assert "broken (ValueError: cube levels do not add up in 2020Q2)" in text or "cube levels do not add up" in text
    assert "numbers: numbers_are_positive" in text
    assert f"http://127.0.0.1:3000/runs/{run.run_id}" in text and "/data/release/quality.json" in text


def test_run_failure_sensor_posts_the_summary_to_the_webhook(webhook):
    url, received = webhook
    with dg.instance_for_test() as instance:
        run = _failed_run(instance)
        failure = next(r.dagster_event for r in instance.all_logs(run.run_id)
                       if r.dagster_event and r.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(sensor_name="run_failure_webhook", dagster_instance=instance,
                                                     dagster_run=run, dagster_event=failure).for_run_failure()
        run_failure_webhook(context, notifier=Notifier(webhook_url=url))
        assert len(received) == 1 and received[0]["run_id"] == run.run_id
        assert "numbers_are_positive" in received[0]["text"]
        # off by default: no URL, no post
        skipped = run_failure_webhook(context, notifier=Notifier(webhook_url_env="YUNZHI_NO_SUCH_VARIABLE"))
        assert isinstance(skipped, dg.SkipReason) and len(received) == 1


def test_notifier_reads_the_url_from_the_environment(monkeypatch, webhook):
    url, received = webhook
    monkeypatch.setenv("YUNZHI_WEBHOOK_URL", url)
    notifier = Notifier()
    assert notifier.enabled and notifier.post("hello") == 204 and received == [{"text": "hello"}]


# ------------------------------------------------------------------------------------------------ CLI progress
def test_cli_progress_counts_outputs_across_quarters_and_stages(monkeypatch):
    from pipelines.progress import Progress

    monkeypatch.setenv("YUNZHI_PROGRESS", "1")
    with dg.instance_for_test() as instance:
        selection = [dg.AssetKey("raw_usage_profile"), dg.AssetKey("base_totals")]
        progress = Progress(instance, selection, ["2020Q1", "2020Q2", "2020Q3", "2020Q4"])
        assert progress.enabled and progress.total == 4 + 1 and Progress.TAG in progress.tags
    monkeypatch.setenv("YUNZHI_PROGRESS", "0")
    assert not Progress(None, [dg.AssetKey("raw_inventory")], None).enabled


def test_make_ui_environment_points_at_the_release(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from ui import ui_env

    env = ui_env(tmp_path, base={})
    assert env["DAGSTER_HOME"] == str(tmp_path.resolve() / ".dagster")
    assert env["YUNZHI_RELEASE"] == str(tmp_path.resolve()) and "YUNZHI_RAW" not in env
