"""The release instance's storage: Dagster's SQLite files and layout, engines kept, history shared with plain Dagster."""
import shutil
from contextlib import closing
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.storage.event_log.base import EventLogCursor

from pipelines.cli import release_instance
from pipelines.storage import (INDEX, KEPT_RUN_ENGINES, RUN_LIST, SCHEDULES, ReleaseEventLogStorage, ReleaseRunStorage,
                               blank_databases, copy_blank)


@dg.asset
def tiny() -> int:
    return 1


def _materialise(instance: dg.DagsterInstance) -> str:
    return dg.materialize([tiny], instance=instance).run_id


def _plain_instance(home: Path) -> dg.DagsterInstance:
    """The same directory opened with Dagster's default SQLite storage (no storage in dagster.yaml)."""
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home))


def test_a_release_instance_uses_the_release_storage_in_dagsters_own_layout(tmp_path):
    instance = release_instance(tmp_path)
    run_id = _materialise(instance)
    assert isinstance(instance.run_storage, ReleaseRunStorage)
    assert isinstance(instance.event_log_storage, ReleaseEventLogStorage)
    home = tmp_path / ".dagster"
    for name in ("history/runs.db", "history/runs/index.db", f"history/runs/{run_id}.db", "schedules/schedules.db"):
        assert (home / name).is_file(), name
    config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["telemetry"] == {"enabled": False}
    assert config["storage"]["custom"] == {"module": "pipelines.storage", "class": "ReleaseStorage",
                                           "config": {"base_dir": str(home.resolve())}}
    instance.dispose()


def test_the_cli_instance_leaves_output_on_the_terminal_and_the_ui_instance_captures_it(tmp_path):
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
    from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager

    cli = release_instance(tmp_path)
    assert isinstance(cli.compute_log_manager, NoOpComputeLogManager)
    _materialise(cli)
    assert not [p for p in (tmp_path / ".dagster").rglob("*") if "compute_logs" in p.parts]
    ui = dg.DagsterInstance.from_config(str(tmp_path / ".dagster"))  # as `dagster dev` opens it (DAGSTER_HOME)
    assert isinstance(ui.compute_log_manager, LocalComputeLogManager)
    assert isinstance(ui.event_log_storage, ReleaseEventLogStorage)
    cli.dispose()
    ui.dispose()


def test_history_written_by_either_storage_is_read_by_the_other(tmp_path):
    ours = release_instance(tmp_path / "a")
    first = _materialise(ours)
    ours.dispose()
    plain = _plain_instance(tmp_path / "a" / ".dagster")
    assert not isinstance(plain.event_log_storage, ReleaseEventLogStorage)
    assert [r.run_id for r in plain.get_runs()] == [first]
    second = _materialise(plain)
    plain.dispose()
    again = release_instance(tmp_path / "a")  # a release made before this storage: its history is kept
    assert [r.run_id for r in again.get_runs()] == [second, first]
    assert again.get_latest_materialization_event(dg.AssetKey("tiny")).run_id == second
    again.dispose()


def _schema(path: Path) -> list:
    import sqlite3

    with closing(sqlite3.connect(path)) as db:
        return [db.execute("PRAGMA journal_mode").fetchone(),
                *db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"),
                *db.execute("SELECT version_num FROM alembic_version")]


def test_databases_copied_from_the_blanks_are_those_dagster_makes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    copied = release_instance(tmp_path / "copied")
    copied_run = _materialise(copied)
    assert blank_databases() is not None
    (tmp_path / "plain").mkdir()
    plain = _plain_instance(tmp_path / "plain")
    plain_run = _materialise(plain)
    for ours, dagsters in [*((RUN_LIST, RUN_LIST), (INDEX, INDEX), (SCHEDULES, SCHEDULES)),
                           (f"history/runs/{copied_run}.db", f"history/runs/{plain_run}.db")]:
        assert _schema(tmp_path / "copied" / ".dagster" / ours) == _schema(tmp_path / "plain" / dagsters), ours
    assert [r.run_id for r in copied.get_runs()] == [copied_run]
    copied.dispose()
    plain.dispose()


def test_a_blank_never_replaces_a_database_and_without_a_cache_dagster_makes_them(tmp_path, monkeypatch):
    import dagster._core.storage.event_log.sqlite.sqlite_event_log as event_log
    import dagster._core.storage.runs.sqlite.sqlite_run_storage as run_list
    import dagster._core.storage.schedules.sqlite.sqlite_schedule_storage as schedules

    kept = tmp_path / "kept.db"
    kept.write_bytes(b"a database already there")
    assert not copy_blank(RUN_LIST, kept)
    assert kept.read_bytes() == b"a database already there"
    checked = []  # Dagster's check of a database's migrations: only where no blank was copied
    for module in (event_log, run_list, schedules):
        check = module.check_alembic_revision
        monkeypatch.setattr(module, "check_alembic_revision", lambda config, conn, check=check: (
            checked.append(Path(conn.engine.url.database).name), check(config, conn))[1])
    copied = release_instance(tmp_path / "copied")
    assert copied.get_run_by_id(_materialise(copied)).is_success and checked == []
    (tmp_path / "not-a-directory").write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-directory"))
    assert blank_databases() is None
    instance = release_instance(tmp_path / "release")
    run_id = _materialise(instance)
    assert instance.get_run_by_id(run_id).is_success
    assert set(checked) == {"runs.db", "schedules.db", "index.db", f"{run_id}.db"}
    copied.dispose()
    instance.dispose()


def test_another_instance_sees_each_commit_while_engines_are_kept(tmp_path):
    writer = release_instance(tmp_path)
    reader = release_instance(tmp_path)  # as the UI's process does, beside the CLI's
    for _ in range(3):
        run_id = _materialise(writer)
        assert reader.get_latest_materialization_event(dg.AssetKey("tiny")).run_id == run_id
        assert reader.get_run_by_id(run_id).is_success
    writer.dispose()
    reader.dispose()


def test_the_index_engine_and_only_the_latest_run_engines_are_kept(tmp_path):
    storage = ReleaseEventLogStorage(str(tmp_path / "runs"))
    with storage.index_connection():
        pass
    index_engine = storage._engines["index"]
    shards = [f"run-{i}" for i in range(KEPT_RUN_ENGINES + 3)]
    for shard in shards:
        with storage.run_connection(shard):
            pass
        with storage.index_connection():
            pass
    assert list(storage._engines) == [*shards[-KEPT_RUN_ENGINES:], "index"]
    assert storage._engines["index"] is index_engine
    with storage.run_connection(shards[-KEPT_RUN_ENGINES]) as conn:  # a kept shard is reused, and is now the newest
        assert conn.engine is storage._engines[shards[-KEPT_RUN_ENGINES]]
    assert list(storage._engines)[-1] == shards[-KEPT_RUN_ENGINES]
    storage.dispose()
    assert not storage._engines


def test_a_moved_release_finds_its_own_history(tmp_path):
    instance = release_instance(tmp_path / "before")
    run_id = _materialise(instance)
    instance.dispose()
    shutil.move(tmp_path / "before", tmp_path / "after")
    moved = release_instance(tmp_path / "after")
    assert [r.run_id for r in moved.get_runs()] == [run_id]
    config = yaml.safe_load((tmp_path / "after" / ".dagster" / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["storage"]["custom"]["config"]["base_dir"] == str((tmp_path / "after" / ".dagster").resolve())
    moved.dispose()


def test_the_config_keeps_other_settings_and_any_path(tmp_path):
    release = tmp_path / "年报 'q1' 😀 #1"
    home = release / ".dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("run_retries:\n  enabled: true\ntelemetry:\n  enabled: true\n", encoding="utf-8")
    instance = release_instance(release)
    config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["run_retries"] == {"enabled": True} and config["telemetry"] == {"enabled": True}
    assert config["storage"]["custom"]["config"]["base_dir"] == str(home.resolve())
    run_id = _materialise(instance)
    again = dg.DagsterInstance.from_ref(instance.get_ref())  # as a run worker opens it
    assert [r.run_id for r in again.get_runs()] == [run_id]
    for _ in range(2):  # runs.db: one engine, kept
        with instance.run_storage.connect() as conn:
            assert conn.engine is instance.run_storage._engine
    instance.dispose()
    again.dispose()


def test_a_moved_release_opened_by_plain_dagster_says_so_instead_of_making_an_empty_history(tmp_path):
    instance = release_instance(tmp_path / "before")
    _materialise(instance)
    instance.dispose()
    shutil.move(tmp_path / "before", tmp_path / "after")
    with pytest.raises(FileNotFoundError, match="moved or copied"):
        dg.DagsterInstance.from_config(str(tmp_path / "after" / ".dagster"))  # dagster dev with DAGSTER_HOME
    assert not (tmp_path / "before").exists()


def _dbapi(conn):
    return conn.connection.dbapi_connection


def _connections_opened(engine, use) -> int:
    opened = []
    sa.event.listen(engine, "connect", lambda *args: opened.append(1))
    for _ in range(3):
        with use():
            pass
    return len(opened)


def test_every_database_keeps_its_connection_and_only_a_write_touches_a_runs_file(tmp_path):
    instance = release_instance(tmp_path)
    run_id = _materialise(instance)
    storage = instance.event_log_storage
    assert _connections_opened(storage._engines["index"], storage.index_connection) == 0
    assert _connections_opened(instance.run_storage._engine, instance.run_storage.connect) == 0
    assert _connections_opened(storage._engines[run_id], lambda: storage.run_connection(run_id)) == 0
    for connect in (storage.index_connection, instance.run_storage.connect, lambda: storage.run_connection(run_id)):
        with connect() as conn:  # a commit in WAL mode with synchronous=NORMAL syncs nothing
            assert [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("journal_mode", "synchronous")] == ["wal", 1]
    run_file = tmp_path / ".dagster" / "history" / "runs" / f"{run_id}.db"
    before = run_file.stat().st_mtime_ns
    assert len(storage.get_records_for_run(run_id).records) > 5
    assert run_file.stat().st_mtime_ns == before  # a read does not wake the watcher (which then reads)
    storage.store_event(next(iter(instance.all_logs(run_id))))
    assert run_file.stat().st_mtime_ns != before
    instance.dispose()


def _engine_event(run_id: str, message: str):
    from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData
    from dagster._core.events.log import EventLogEntry

    return EventLogEntry(error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time(),
                         dagster_event=DagsterEvent(DagsterEventType.ENGINE_EVENT.value, "tiny_job",
                                                    event_specific_data=EngineEventData()))


def test_a_table_or_column_found_in_the_index_is_not_looked_up_again_and_a_missing_one_is(tmp_path, monkeypatch):
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    storage = ReleaseEventLogStorage(str(tmp_path / "runs"))
    asked = []
    has_table, has_column = SqliteEventLogStorage.has_table, SqlEventLogStorage._has_asset_key_col_on_connection
    monkeypatch.setattr(SqliteEventLogStorage, "has_table",
                        lambda self, name: asked.append(name) or has_table(self, name))
    monkeypatch.setattr(SqlEventLogStorage, "_has_asset_key_col_on_connection",
                        lambda self, conn, name: asked.append(name) or has_column(self, conn, name))
    answers = [storage.has_table("dynamic_partitions"), storage.has_table("no_such_table"),
               storage.has_asset_key_index_cols(), storage.has_asset_key_col("no_such_column")]
    assert answers == [True, False, True, False]
    assert [storage.has_table("dynamic_partitions"), storage.has_table("no_such_table"),
            storage.has_asset_key_index_cols(), storage.has_asset_key_col("no_such_column")] == answers
    assert asked == ["dynamic_partitions", "no_such_table", "last_materialization_timestamp", "no_such_column",
                     "no_such_table", "no_such_column"]
    storage.dispose()


def test_a_run_written_after_a_wipe_goes_to_a_new_file_not_the_deleted_one(tmp_path):
    instance = release_instance(tmp_path)
    run_id = _materialise(instance)
    instance.wipe()  # Dagster deletes each run's database file
    instance.event_log_storage.store_event(_engine_event(run_id, "after the wipe"))
    reader = release_instance(tmp_path)
    assert [e.user_message for e in reader.all_logs(run_id)] == ["after the wipe"]
    reader.dispose()
    instance.dispose()


def test_the_ui_watching_a_run_is_told_of_each_new_event(tmp_path):
    """The UI follows a running run with Dagster's watcher on the run's database file; with the connection kept, a
    commit goes to the write-ahead log only, so the storage touches the file."""
    writer = release_instance(tmp_path)
    run_id = _materialise(writer)
    ui = release_instance(tmp_path)
    seen, arrived = [], threading.Event()

    def on_event(entry, cursor):
        seen.append(entry.user_message)
        if entry.user_message == "watched":
            arrived.set()
    ui.watch_event_logs(run_id, str(EventLogCursor.from_storage_id(
        writer.event_log_storage.get_records_for_run(run_id).records[-1].storage_id)), on_event)
    writer.event_log_storage.store_event(_engine_event(run_id, "watched"))
    assert arrived.wait(10), f"the watcher saw {seen}"
    assert seen == ["watched"]
    ui.dispose()
    writer.dispose()


def test_a_forked_process_opens_its_own_connection_and_leaves_the_parents_alone(tmp_path):
    import os

    instance = release_instance(tmp_path)
    run_id = _materialise(instance)
    with instance.event_log_storage.index_connection() as conn:
        parent = _dbapi(conn)
    pid = os.fork()
    if pid == 0:  # the child: reads through the same storage object, on a connection of its own
        try:
            with instance.event_log_storage.index_connection() as conn:
                ok = _dbapi(conn) is not parent
            ok = ok and instance.get_latest_materialization_event(dg.AssetKey("tiny")).run_id == run_id
        finally:
            os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    with instance.event_log_storage.index_connection() as conn:
        assert _dbapi(conn) is parent
    assert instance.get_latest_materialization_event(dg.AssetKey("tiny")).run_id == run_id
    instance.dispose()
