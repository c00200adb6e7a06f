"""Publish: write the release (indices, quarantine, quality, manifest) at the top of the release directory."""
import datetime as dt

import dagster as dg
import polars as pl

from assets.transforms.files import write_json_atomic, write_parquet_atomic
from assets.transforms.publish import assemble_indices, assemble_quarantine, build_manifest, diff_revisions
from expectations.adapter import predicate, submit_suite
from expectations.suites import PUBLISHED_INDICES
from pipelines.metadata import markdown_preview
from pipelines.quality import check_results, read_recorded, summarise
from pipelines.resources import Settings

PUBLISHED_SUITE = "published_indices_meet_expectations"
ROWS_RECONCILE = "all_rows_in_equal_rows_used_plus_quarantined"


@dg.asset(kinds={"polars", "parquet", "great_expectations"},
          check_specs=[dg.AssetCheckSpec(PUBLISHED_SUITE, asset="published_release"),
                       dg.AssetCheckSpec(ROWS_RECONCILE, asset="published_release")])
def published_release(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame,
                      disclosed_indices: pl.LazyFrame, undated_rows: pl.LazyFrame, quarantined_rows: dict,
                      account_usage: dict, derived_measures: pl.LazyFrame):
    """The published release: indices.parquet (one row per metric x period x entity x industry) and its files."""
    quarters = sorted(account_usage)
    indices = assemble_indices(disclosed_indices.collect())
    quarantine = assemble_quarantine([undated_rows.collect()] + [quarantined_rows[q].collect() for q in quarters])
    suite = submit_suite(PUBLISHED_SUITE, PUBLISHED_INDICES, indices.filter(pl.col("status") == "ok"))
    inventory = raw_inventory.collect()
    rows_in = int(inventory.filter(pl.col("status") == "ingested")["rows"].sum())
    used = sum(int(account_usage[q].select(pl.col("rows").sum()).collect().item() or 0) for q in quarters)
    outcomes = [suite.result(),
                predicate(ROWS_RECONCILE, rows_in == used + quarantine.height, rows_in=rows_in, rows_used=used,
                          rows_quarantined=quarantine.height)]
    checks = list(check_results(context, settings.state, "publish", "published_release", {None: outcomes},
                                {None: indices.height}))
    counts = {"rows_in": rows_in, "rows_used": used, "rows_quarantined": quarantine.height,
              "index_rows": indices.height, "quarters": len(quarters)}
    out = settings.release
    previous = pl.read_parquet(out / "indices.parquet") if (out / "indices.parquet").exists() else None
    revised = diff_revisions(previous, indices, context.run.run_id,
                             dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), settings.revision_reason)
    logged = out / "revisions.parquet"
    write_parquet_atomic(pl.concat([pl.read_parquet(logged), revised]) if logged.exists() else revised, logged)
    write_parquet_atomic(indices, out / "indices.parquet")
    write_parquet_atomic(quarantine, out / "quarantine.parquet")
    write_parquet_atomic(derived_measures.collect(), out / "derived.parquet")
    write_json_atomic(summarise(read_recorded(settings.state)), out / "quality.json")
    write_json_atomic(build_manifest(inventory, settings_dict(settings), settings.reference().vintages, counts),
                      out / "manifest.json")
    national = indices.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": indices.height, "path": dg.MetadataValue.path(str(out / "indices.parquet")),
        "quarantined_rows": quarantine.height, "revised_cells": revised.height, "national_index": markdown_preview(
            national.select("metric", "period", "value"), rows=national.height)})
    yield from checks


def settings_dict(settings: Settings) -> dict:
    """Every setting of the run but the release's own path: what continuing or rebasing the release reuses."""
    return {k: getattr(settings, k) for k in type(settings).model_fields if k != "release_dir"}
