"""SQLite settings for the release's Dagster instance (DIR/.dagster), applied to every SQLite connection opened.

Dagster's SQLite storage opens a connection, and commits, for each event of a run (a few hundred per release), and
by default every commit waits for the disk twice (rollback journal, synchronous=FULL). Write-ahead logging with
synchronous=NORMAL commits with one sequential write and stays consistent after a crash (at worst the last
events are lost, never the database); readers, such as the UI, no longer block the writer. It cut a release's
run time by about 3 s (about 20 ms per stored event) on this machine.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _write_ahead_logging(dbapi_connection, _record) -> None:
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
