"""Parquet IO manager: one file per asset (per quarter if partitioned) under DIR/state/assets, written atomically.

Outputs may be DataFrames or LazyFrames (streamed to disk), or, for a run over several quarters, a dict of them
keyed by quarter. Inputs come back as LazyFrames, or a dict of them keyed by quarter for a partitioned upstream.
"""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq

from assets.transforms.files import STATE_COMPRESSION, write_parquet_atomic
from pipelines.metadata import markdown_preview, table_schema


class ParquetIOManager(dg.ConfigurableIOManager):
    release_dir: str

    def _path(self, asset_key: dg.AssetKey, partition: str | None) -> Path:
        base = Path(self.release_dir) / "state" / "assets" / "/".join(asset_key.path)
        return base / f"{partition}.parquet" if partition else base.with_suffix(".parquet")

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        frames = obj if isinstance(obj, dict) else {None: obj}
        if context.has_asset_partitions and None in frames:
            raise TypeError(f"{context.asset_key.to_user_string()}: a partitioned output must be a dict by quarter")
        rows, schema, last = 0, None, None
        for partition, frame in frames.items():
            path = write_parquet_atomic(frame, self._path(context.asset_key, partition), STATE_COMPRESSION)
            rows += pq.read_metadata(path).num_rows
            schema, last = pl.read_parquet_schema(path), path
        if schema is None:
            return
        metadata = {"dagster/row_count": rows, "dagster/column_schema": table_schema(schema),
                    "path": dg.MetadataValue.path(str(last.parent if len(frames) > 1 else last))}
        if context.definition_metadata.get("preview") and last is not None:
            metadata["preview"] = markdown_preview(pl.read_parquet(last, n_rows=5))
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext):
        key = context.asset_key
        if context.has_asset_partitions:
            return {p: self._scan(key, p) for p in context.asset_partition_keys}
        return self._scan(key, None)

    def _scan(self, key: dg.AssetKey, partition: str | None) -> pl.LazyFrame:
        path = self._path(key, partition)
        if not path.exists():
            raise FileNotFoundError(f"{key.to_user_string()}{f' [{partition}]' if partition else ''}: "
                                    f"not materialised in this release ({path})")
        return pl.scan_parquet(path)
