"""Publish: assemble the release's tables and documents from the stage outputs (pure; writing is atomic)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from importlib import metadata
from pathlib import Path

import polars as pl

from assets.transforms.indices import INDEX_COLUMNS, sort_index_rows
from assets.transforms.validate import QUARANTINE_COLUMNS

SCHEMA_VERSION = "1.0"
INDEX_DTYPES = {"metric": pl.String, "period": pl.String, "period_type": pl.String, "geo_level": pl.String,
                "geo_code": pl.String, "geo_name": pl.String, "geo_name_en": pl.String, "industry": pl.String,
                "value": pl.Float64, "accounts": pl.Int64, "status": pl.String, "base_period": pl.String}


def assemble_indices(disclosed: pl.DataFrame) -> pl.DataFrame:
    """The published long table: quarters then complete years, in one documented order and schema."""
    return sort_index_rows(disclosed.select(INDEX_COLUMNS).cast(INDEX_DTYPES))


def assemble_quarantine(frames: list[pl.DataFrame]) -> pl.DataFrame:
    schema = {c: (pl.Int64 if c == "source_row" else pl.String) for c in QUARANTINE_COLUMNS}
    parts = [f.select(QUARANTINE_COLUMNS).cast(schema) for f in frames if f.height]
    table = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return table.sort("source_file", "source_row")


def code_version() -> str:
    version = metadata.version("yunzhi")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


def build_manifest(inventory: pl.DataFrame, settings: dict, vintages: dict, counts: dict) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [{k: r[k] for k in ("source_file", "sha256", "format", "bytes", "rows", "status")}
                   for r in inventory.iter_rows(named=True)],
        "seed_vintages": vintages,
        "settings": settings,
        "row_counts": counts,
    }


def dumps(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str)
