"""Atomic file writes: a reader sees the old file or the new one, never half of either."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import polars as pl

PARQUET_OPTIONS = {"compression": "zstd", "statistics": True}
# Intermediate files (a release's state, read back by the next stage) favour write speed over size.
STATE_COMPRESSION = "lz4"


def _tmp_beside(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a published file is as readable as any other
    return tmp


def write_parquet_atomic(frame: pl.DataFrame | pl.LazyFrame, path: str | Path, compression: str = "zstd",
                         metadata: dict[str, str] | None = None, descriptions: dict[str, str] | None = None) -> Path:
    """Write (or stream, for a LazyFrame) a frame to Parquet, then move it into place; `metadata` goes into the
    file's key-value metadata, `descriptions` (column -> text) into each column's field metadata, where pyarrow,
    DuckDB and other Arrow readers find it."""
    path = Path(path)
    tmp = _tmp_beside(path)
    options = {**PARQUET_OPTIONS, "compression": compression, **({"metadata": metadata} if metadata else {})}
    try:
        if descriptions:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = (frame.collect() if isinstance(frame, pl.LazyFrame) else frame).to_arrow()
            schema = pa.schema([f.with_metadata({"description": descriptions[f.name]}) if f.name in descriptions
                                else f for f in table.schema], metadata=metadata)
            pq.write_table(table.cast(schema), tmp, compression=compression, write_statistics=True)
        elif isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, **options)
        else:
            frame.write_parquet(tmp, **options)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    path = Path(path)
    tmp = _tmp_beside(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json_atomic(data: dict, path: str | Path) -> Path:
    return write_text_atomic(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n", path)
