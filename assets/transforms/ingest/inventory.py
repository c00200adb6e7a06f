"""The inventory of a release's raw files: path, content hash, format, rows and rows per quarter; byte-identical
copies are one delivery, and a file overwritten in place replaces the earlier delivery."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from assets.transforms.errors import InputError
from assets.transforms.ingest.profile import PROFILE_STRUCT, profile_file
from assets.transforms.ingest.read import check_columns, check_utf8, file_format, list_raw_files, scan_file
from assets.transforms.quarters import quarters_between

def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def inventory_files(raw: str | Path, known: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per raw file: path, content hash, format, rows, rows by quarter, undated rows.

    Byte-identical files are one delivery: the later copies are listed with status `duplicate` and not read.
    A file listed in `known` (a release's inventory) at the same path, size and modification time is taken from
    there unread, so a landing folder that keeps growing costs only its new files.
    """
    root = Path(raw)
    rows, seen = [], {}
    unchanged = {} if known is None or "mtime_ns" not in known.columns else {
        (r["path"], r["bytes"], r["mtime_ns"]): r for r in known.iter_rows(named=True)}
    files = [(path, path.stat()) for path in list_raw_files(root)]
    known_as = {path: unchanged.get((str(path.resolve()), stat.st_size, stat.st_mtime_ns)) for path, stat in files}
    new = [path for path, _ in files if known_as[path] is None]
    # hashing releases the GIL: the new files are hashed on every core while the loop profiles them one by one
    pool = ThreadPoolExecutor(max_workers=max(1, min(len(new), os.cpu_count() or 1)))
    try:
        digests = {path: pool.submit(content_hash, path) for path in new}
        for path, stat in files:
            previous = known_as[path]
            if previous is not None:
                seen.setdefault(previous["sha256"], previous["source_file"])
                rows.append(previous)
            else:
                rows.append(_inventory_entry(root, path, stat, digests[path], seen))
    finally:
        pool.shutdown(cancel_futures=True)  # a bad file stops the inventory without hashing the rest
    return pl.DataFrame(rows, schema={"source_file": pl.String, "path": pl.String, "sha256": pl.String,
                                      "format": pl.String, "bytes": pl.Int64, "mtime_ns": pl.Int64,
                                      "status": pl.String, "rows": pl.Int64,
                                      "undated_rows": pl.Int64, "quarters": pl.List(pl.String),
                                      "quarter_rows": pl.List(pl.Int64), "profile": pl.List(PROFILE_STRUCT)})


def _inventory_entry(root: Path, path: Path, stat: os.stat_result, hashing: Future, seen: dict) -> dict:
    """One new file's inventory row (checked, then profiled unless it is a copy of one `seen`)."""
    if file_format(path) == "csv":
        check_utf8(path)
    lf, schema = scan_file(path)
    check_columns(path, schema)
    digest = hashing.result()
    name = str(path.relative_to(root)) if root.is_dir() else path.name
    entry = {"source_file": name, "path": str(path.resolve()), "sha256": digest, "format": file_format(path),
             "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "status": "duplicate" if digest in seen else "ingested",
             "rows": 0, "undated_rows": 0, "quarters": [], "quarter_rows": [], "profile": []}
    if digest not in seen:
        seen[digest] = name
        entry.update(profile_file(path, lf, schema))
    return entry


def data_quarters(inventory: pl.DataFrame) -> list[str]:
    """The contiguous quarters from the earliest to the latest quarter with rows."""
    present = sorted(set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls()))
    if not present:
        raise InputError(f"{inventory['source_file'][0] if inventory.height else 'input'}: "
                         "no rows with a valid usage_date in column 'usage_date'")
    return quarters_between(present[0], present[-1])


def merge_inventory(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.DataFrame:
    """A release's inventory after a new delivery: what it held, plus each file not listed before.

    A file whose bytes the release already ingested (same sha256) is a `duplicate`, whatever its name. A file
    delivered again at the same path with other bytes replaces the earlier delivery, which is then `replaced`
    (no longer read: its rows were overwritten).
    """
    if previous is None or previous.height == 0:
        return current
    known = set(previous.filter(pl.col("status") == "ingested")["sha256"])
    new = (current.join(previous.select("source_file", "sha256"), on=["source_file", "sha256"], how="anti")
           .with_columns(pl.when(pl.col("sha256").is_in(list(known))).then(pl.lit("duplicate"))
                      .otherwise(pl.col("status")).alias("status")))
    overwritten = (pl.col("status") == "ingested") & pl.col("path").is_in(new["path"].implode())
    previous = previous.with_columns(pl.when(overwritten).then(pl.lit("replaced")).otherwise(pl.col("status"))
                                     .alias("status"))
    return pl.concat([previous, new], how="diagonal_relaxed")


def take_inventory(raw: str | Path, previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """A release's inventory after delivering `raw`: what it held (`previous`), plus each file not listed before
    (files already listed at the same path, size and modification time are not read again)."""
    return merge_inventory(previous, inventory_files(raw, previous))
