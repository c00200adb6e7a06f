"""A release's Dagster instance storage: Dagster's SQLite storage, with each database's engine kept while it is used.

Dagster's SQLite run and event-log storages create a SQLAlchemy engine for every statement (the event log also
disposes of it after), so each of a release's ~180 events and ~50 partition lookups paid for a new engine, its
dialect's first-connect queries and compiling its SQL again (the compiled-statement cache lives in the engine).
These subclasses keep one engine per database file instead.

Dagster also opened and closed a connection for every statement. Closing the last connection to a database in WAL
mode (Dagster's) checkpoints it: the log is copied into the database file, both are synced and the log is
removed, a few file syncs per event. Each database now keeps its connection open between uses (a pool; returned
connections are rolled back, so they hold no snapshot or lock, and another process on the instance, the UI or its
daemon, sees every commit). The UI follows a running run by watching its database file change (Dagster's watcher
matches that one path), which in WAL mode happened only at those checkpoints: so a transaction that wrote to a
run's database touches the file, a change of its time the watcher reports, without a sync. Commits themselves
sync nothing either (synchronous=NORMAL, which WAL mode keeps consistent); the checkpoints do.
A new database (the run list, the index and schedules of a new release, and each run's own) is a copy of a blank
one that Dagster's own storage classes made once per Dagster and SQLAlchemy version (`blank_databases`): making
one runs Dagster's schema and alembic's stamp, 0.07-0.1 s each.
The files, their layout and schema are Dagster's own: an instance written by either storage is read by the other.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import sqlalchemy as sa
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster.version import __version__ as DAGSTER_VERSION

KEPT_RUN_ENGINES = 8  # each run has a database of its own; a long-lived UI process reads many
BLANK_RUN = "blank-run"
# where each database lives under an instance's storage directory (Dagster's layout); a run's is named by its id
RUN_LIST, INDEX, SCHEDULES = "history/runs.db", f"history/runs/{INDEX_SHARD_NAME}.db", "schedules/schedules.db"
RUN = f"history/runs/{BLANK_RUN}.db"


def blank_databases() -> Path | None:
    """A directory of blank databases (the run list, the index, schedules and a run's own), made by Dagster's own
    storage classes, once per Dagster and SQLAlchemy version, in the user's cache; None if it cannot be written."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yunzhi"
    home = cache / f"blank-dagster-{DAGSTER_VERSION}-sqlalchemy-{sa.__version__}"
    if (home / "complete").exists():
        return home
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            made = Path(tmp) / "blank"
            storages = [SqliteRunStorage.from_local(_runs_directory(str(made))),
                        SqliteEventLogStorage(_event_logs_directory(str(made))),
                        SqliteScheduleStorage.from_local(_schedule_directory(str(made)))]
            with storages[1].run_connection(BLANK_RUN):
                pass
            for storage in storages:  # their connections are closed after each use: no write-ahead log is left
                storage.dispose()
            (made / "complete").touch()
            try:
                made.rename(home)
            except OSError:  # another process made it meanwhile
                pass
    except OSError:
        return None
    return home if (home / "complete").exists() else None


def copy_blank(kind: str, path: str | Path) -> bool:
    """A new database at `path`: a copy of the blank one of `kind` (RUN_LIST, INDEX, SCHEDULES or RUN); whether
    it was placed. Never over an existing file: if one is there, or appears meanwhile, it is left alone; without
    blanks, Dagster makes the database as it would."""
    path = Path(path)
    if path.exists() or (blank := blank_databases()) is None:
        return False
    source = blank / kind
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.link(tmp, path)  # unlike a rename, fails if the file appeared meanwhile
        return True
    except OSError:  # it did, or the blank is gone: Dagster's own code makes the database if it is still missing
        return False
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sqlite_engine(url: str, **connect_args) -> sa.Engine:
    """An engine on one SQLite file whose connections are kept open between uses (SQLAlchemy's pool for files).
    A kept connection is never used by another process: one inherited through fork is dropped, not shared
    (SQLite forbids using a connection across fork)."""
    engine = sa.create_engine(url, connect_args=connect_args)

    @sa.event.listens_for(engine, "connect")
    def _opened(dbapi_connection, record):
        record.info["pid"] = os.getpid()
        # in WAL mode a commit then syncs nothing; the checkpoints sync. A power cut may lose the last commits
        # (as it may the release's last files, which are not synced either), never the database's consistency
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sa.event.listens_for(engine, "checkout")
    def _check_process(dbapi_connection, record, proxy):
        if record.info["pid"] != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None  # not closed: it is the parent's
            raise sa.exc.DisconnectionError("connection opened in another process")
    return engine


class ReleaseEventLogStorage(SqliteEventLogStorage):
    """The SQLite event log (a database per run plus the index), the engines and connections of the index and of
    recent runs kept; a transaction that wrote to a run's database touches its file, for the UI's watcher."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        self._schema_seen: set[tuple[str, str]] = set()
        fresh = copy_blank(INDEX, Path(base_dir) / f"{INDEX_SHARD_NAME}.db")
        super().__init__(base_dir, inst_data=inst_data)
        if fresh:  # see _connect
            self._initialized_dbs.add(INDEX_SHARD_NAME)

    # Dagster asks the index's schema before storing most events (about 200 times a release), each time on an
    # engine of its own or by reading a table's columns. What was there once stays: migrations only add tables and
    # columns, and a wipe only deletes rows.
    def _remember(self, item: tuple[str, str], present: bool) -> bool:
        if present:
            self._schema_seen.add(item)
        return present

    def has_table(self, table_name: str) -> bool:
        item = ("table", table_name)
        return item in self._schema_seen or self._remember(item, super().has_table(table_name))

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        item = ("asset_keys column", column_name)
        return item in self._schema_seen or self._remember(
            item, super()._has_asset_key_col_on_connection(conn, column_name))

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is None:
            engine = self._engines[shard] = sqlite_engine(self.conn_string_for_shard(shard),
                                                          timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            runs = [s for s in self._engines if s != INDEX_SHARD_NAME]
            for old in runs[:-KEPT_RUN_ENGINES]:
                self._engines.pop(old).dispose()
        else:
            self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str):
        with self._db_lock:  # as SqliteEventLogStorage._connect, but the shard's engine is reused
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                # a fresh copy of a blank is at Dagster's head revision already: checking it would load every
                # alembic migration script (0.05 s a database); an existing database is checked as Dagster does
                if shard == INDEX_SHARD_NAME or not copy_blank(RUN, self.path_for_shard(shard)):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                changes = conn.connection.dbapi_connection.total_changes
                with conn.begin():
                    yield conn
                # the UI's watcher follows a run by its database file, which a commit in WAL mode leaves untouched
                if shard != INDEX_SHARD_NAME and conn.connection.dbapi_connection.total_changes != changes:
                    os.utime(self.path_for_shard(shard))

    def wipe(self) -> None:
        with self._db_lock:  # Dagster deletes the run databases: their kept connections are closed first
            for shard in [s for s in self._engines if s != INDEX_SHARD_NAME]:
                self._engines.pop(shard).dispose()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()


class ReleaseRunStorage(SqliteRunStorage):
    """The SQLite run storage (runs.db), its engine and connection kept."""

    @cached_property
    def _engine(self) -> sa.Engine:
        return sqlite_engine(self._conn_string)

    @contextmanager
    def connect(self):
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        if "_engine" in self.__dict__:
            self.__dict__.pop("_engine").dispose()


class ReleaseStorage(DagsterSqliteStorage):
    """DagsterSqliteStorage (same directories under the instance's home) with the run and event-log storages
    above. Named in each release's dagster.yaml, so the CLI, the UI and its daemon all use it."""

    def __init__(self, base_dir: str, inst_data=None):
        self.base_dir = base_dir
        self._run_storage = _storage_on(ReleaseRunStorage, base_dir, RUN_LIST)
        self._event_log_storage = ReleaseEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = _storage_on(SqliteScheduleStorage, base_dir, SCHEDULES)
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "ReleaseStorage":
        # a copied or moved release opened without the CLI or `make ui` (which rewrite base_dir) must not read, or
        # quietly create, another directory's history
        if not (Path(config_value["base_dir"]) / "dagster.yaml").exists():
            raise FileNotFoundError(f"{config_value['base_dir']}: no Dagster instance there; this release was moved "
                                    "or copied: open it once with `python -m pipelines run|rebase` or "
                                    "`make ui RELEASE=DIR`, which point its dagster.yaml at its own directory")
        return cls.from_local(inst_data=inst_data, **config_value)


def _storage_on(storage_class, base_dir: str, kind: str):
    """The run list's or schedules' storage (`kind`: RUN_LIST or SCHEDULES) under the storage directory. Its
    `from_local` checks the database's migrations, and makes it if missing; a fresh copy of a blank was made and
    checked by those same classes, so it is opened directly."""
    path = Path(base_dir) / kind
    if copy_blank(kind, path):
        return storage_class(create_db_conn_string(str(path.parent), path.stem))
    return storage_class.from_local(str(path.parent))


def write_instance_config(home: Path) -> Path:
    """DIR/.dagster/dagster.yaml names this storage, with no telemetry unless the file says otherwise; other settings
    in it are kept. Its base_dir must be absolute, so it is rewritten when it differs each time the CLI or `make ui`
    opens the instance: a release that was moved still finds its own history."""
    import yaml

    from assets.transforms.files import write_text_atomic

    home = Path(home).resolve()
    config = home / "dagster.yaml"
    before = (yaml.safe_load(config.read_text(encoding="utf-8")) if config.exists() else None) or {}
    after = {"telemetry": {"enabled": False}, **before,
             "storage": {"custom": {"module": __name__, "class": ReleaseStorage.__name__,
                                    "config": {"base_dir": str(home)}}}}
    if after != before:
        write_text_atomic(yaml.safe_dump(after, sort_keys=False, allow_unicode=True), config)
    return config
