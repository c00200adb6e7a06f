"""Publish: assemble the release's tables and documents from the stage outputs (pure; writing is atomic)."""
from __future__ import annotations

import datetime as dt
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


def build_manifest(inventory: pl.DataFrame, settings: dict, vintages: dict, counts: dict,
                   quarter_inputs: dict[str, str]) -> dict:
    """The release's provenance: code, inputs, seeds, settings, row counts, and what each quarter was computed from
    (the fingerprints a later run compares to tell which quarters the published release does not reflect)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [{k: r[k] for k in ("source_file", "sha256", "format", "bytes", "rows", "status")}
                   for r in inventory.iter_rows(named=True)],
        "seed_vintages": vintages,
        "settings": settings,
        "row_counts": counts,
        "quarter_inputs": quarter_inputs,
    }



KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
REVISION_SCHEMA = {**{k: pl.String for k in KEY}, "old_value": pl.Float64, "new_value": pl.Float64,
                   "old_status": pl.String, "new_status": pl.String, "old_accounts": pl.Int64,
                   "new_accounts": pl.Int64, "run_id": pl.String, "revised_at": pl.String, "reason": pl.String}


def diff_revisions(old: pl.DataFrame | None, new: pl.DataFrame, run_id: str, at: str, reason: str) -> pl.DataFrame:
    """Every published cell whose value, accounts or status this release changes (new cells are not revisions)."""
    if old is None or old.height == 0:
        return pl.DataFrame(schema=REVISION_SCHEMA)
    joined = old.select(*KEY, pl.col("value").alias("old_value"), pl.col("status").alias("old_status"),
                        pl.col("accounts").alias("old_accounts")).join(
        new.select(*KEY, pl.col("value").alias("new_value"), pl.col("status").alias("new_status"),
                   pl.col("accounts").alias("new_accounts")), on=KEY, how="left")
    changed = joined.filter(pl.col("old_value").ne_missing(pl.col("new_value"))
                            | pl.col("old_status").ne_missing(pl.col("new_status"))
                            | pl.col("old_accounts").ne_missing(pl.col("new_accounts")))
    return (changed.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(at).alias("revised_at"),
                                 pl.lit(reason).alias("reason"))
            .select(list(REVISION_SCHEMA)).cast(REVISION_SCHEMA))
