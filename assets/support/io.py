"""Parquet IO manager: one file per asset (per quarter if partitioned) under DIR/state/assets, written atomically.

Outputs may be DataFrames or LazyFrames (streamed to disk), or, for a run over several quarters, a dict of them
keyed by quarter. Inputs come back as LazyFrames, or a dict of them keyed by quarter for a partitioned upstream.
Every file is stamped (Parquet key-value metadata) with the run that wrote it and, for a quarter, the fingerprint of
the inputs it was computed from (the output's `inputs` metadata, by quarter): what tells a stale quarter.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from pydantic import Field

from assets.support.metadata import markdown_preview, table_schema
from assets.support.partitions import PARTITIONED_ASSETS
from assets.support.settings import release_directory
from assets.transforms.dictionary import describe
from assets.transforms.files import STATE_COMPRESSION, write_parquet_atomic
from assets.transforms.ingest.inventory import data_quarters
from assets.transforms.release import (STAMP_INPUTS, STAMP_RUN, quarter_fingerprints, read_settings, read_stamps,
                                       stale_quarters, unpublished_quarters)

INPUTS = "inputs"  # output metadata: {quarter: fingerprint of what it was computed from}


def stored_path(release_dir: str | Path, asset: str, partition: str | None = None) -> Path:
    base = Path(release_dir) / "state" / "assets" / asset
    return base / f"{partition}.parquet" if partition else base.with_suffix(".parquet")


def stored_stamps(release_dir: str | Path, asset: str, partitions: list[str]) -> dict[str, str]:
    """The inputs' fingerprint each stored quarter of `asset` was computed from (what a downstream stage inherits)."""
    return {p: read_stamps(stored_path(release_dir, asset, p)).get(STAMP_INPUTS.decode(), "") for p in partitions}


def quarters_to_compute(release_dir: str | Path, inventory: pl.DataFrame | None = None) -> list[str]:
    """The quarters a run must cover to publish the release as its files now are (`inventory`, by default the stored
    one): those whose stored outputs were computed from other files, base or settings, and those the published
    release does not reflect yet (all of them for a release never published)."""
    if inventory is None:
        inventory = pl.read_parquet(stored_path(release_dir, "raw_inventory"))
    settings = read_settings(release_dir)
    expected = quarter_fingerprints(inventory, settings, settings.base_period or data_quarters(inventory)[0])
    stale = stale_quarters(Path(release_dir) / "state", PARTITIONED_ASSETS, expected)
    return sorted(set(stale) | set(unpublished_quarters(release_dir, expected)))


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores every output under the release's state/assets/."""

    release_dir: str = Field(default="", description="Release directory; empty = YUNZHI_RELEASE, as the settings")

    @property
    def directory(self) -> Path:
        return release_directory(self.release_dir)

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        frames = obj if isinstance(obj, dict) else {None: obj}
        if context.has_asset_partitions and None in frames:
            raise TypeError(f"{context.asset_key.to_user_string()}: a partitioned output must be a dict by quarter")
        inputs = context.output_metadata.get(INPUTS)
        inputs = inputs.value if inputs is not None else {}
        if context.has_asset_partitions and set(frames) - set(inputs):
            raise ValueError(f"{context.asset_key.to_user_string()}: no inputs fingerprint for "
                             f"{sorted(set(frames) - set(inputs))}")
        name = "/".join(context.asset_key.path)
        rows, schema, last = 0, None, None
        for partition, frame in frames.items():
            stamps = {STAMP_RUN.decode(): context.run_id,
                      **({STAMP_INPUTS.decode(): inputs[partition]} if partition is not None else {})}
            path = write_parquet_atomic(frame, stored_path(self.directory, name, partition), STATE_COMPRESSION,
                                        stamps)
            rows += pq.read_metadata(path).num_rows
            schema, last = pl.read_parquet_schema(path), path
        if schema is None:
            return
        metadata = {"dagster/row_count": rows, "dagster/column_schema": table_schema(schema, describe(name, schema)),
                    "path": dg.MetadataValue.path(str(last.parent if len(frames) > 1 else last))}
        if context.definition_metadata.get("preview") and last is not None:
            metadata["preview"] = markdown_preview(pl.read_parquet(last, n_rows=5))
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext):
        name = "/".join(context.asset_key.path)
        if context.has_asset_partitions:
            return {p: self._scan(name, p) for p in context.asset_partition_keys}
        return self._scan(name, None)

    def _scan(self, name: str, partition: str | None) -> pl.LazyFrame:
        path = stored_path(self.directory, name, partition)
        if not path.exists():
            raise FileNotFoundError(f"{name}{f' [{partition}]' if partition else ''}: not materialised in this "
                                    f"release ({path})")
        return pl.scan_parquet(path)
