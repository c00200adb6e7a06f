"""Publish: the release staged under DIR/state/staging/<run>/, checked, then swapped into DIR whole (all or nothing)."""
import dataclasses
import datetime as dt
import hashlib
import json
import math
import shutil

import dagster as dg
import polars as pl

from assets.support.checks import check_results, read_recorded, specs, summarise
from assets.support.metadata import markdown_preview, table_schema
from assets.support.partitions import PARTITIONED_ASSETS
from assets.support.settings import Settings, run_quarters
from assets.transforms.dictionary import describe
from assets.transforms.files import write_json_atomic, write_parquet_atomic, write_text_atomic
from assets.transforms.ingest.inventory import data_quarters
from assets.transforms.errors import InputError
from assets.transforms.publish import (assemble_indices, assemble_quarantine, build_manifest, data_package,
                                       diff_revisions, new_files, quarantine_share, release_note, release_readme,
                                       revision_reasons, run_summary, summary_markdown)
from assets.transforms.release import (MANIFEST, SETTINGS_FILE, outdated_outputs, quarter_fingerprints, stale_quarters,
                                       staging_dir, swap_in, write_settings)
from expectations.adapter import submit_suite
from expectations.outcomes import predicate
from expectations.suites import PUBLISHED_INDICES

PUBLISHED_FILES = ("indices.parquet", "derived.parquet", "shift_share.parquet", "quarantine.parquet", "revisions.parquet", "quality.json",
                   "manifest.json", "datapackage.json", "README.md")
# computed whole in every run that publishes: their stored outputs must be this run's
WHOLE_STAGES = ("base_totals", "annual_indices", "disclosed_indices", "derived_measures", "shift_share")

PUBLISHED_SUITE = "published_indices_meet_expectations"
ROWS_RECONCILE = "all_rows_in_equal_rows_used_plus_quarantined"
STAGES_CURRENT = "every_stage_is_computed_from_the_release_as_it_is"
STAGED_CHECKS = {
    PUBLISHED_SUITE: ("Great Expectations on the published cells: keys, labels, periods, values not negative", True),
    ROWS_RECONCILE: ("Rows in (every ingested file) = rows used + rows quarantined, over the whole release", True),
    STAGES_CURRENT: ("Every quarter's stored outputs were computed from the release's current files, base and "
                     "settings, and every whole-release stage by this run: else the quarters to rerun are named",
                     True),
}


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="2",
          check_specs=specs("staged_release", STAGED_CHECKS))
def staged_release(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame,
                   disclosed_indices: pl.LazyFrame, undated_rows: pl.LazyFrame, quarantined_rows: dict,
                   account_usage: dict, derived_measures: pl.LazyFrame, shift_share: pl.LazyFrame):
    """The release as this run will publish it (indices, derived measures, shift-share, quarantine, revisions,
    manifest), staged
    in DIR/state/staging/<run id>/ until every check has passed."""
    release, run_id, out = settings.release, context.run.run_id, settings.directory
    staging = staging_dir(settings.state, run_id)
    shutil.rmtree(staging, ignore_errors=True)
    inventory = raw_inventory.collect()
    quarters = data_quarters(inventory)
    indices = assemble_indices(disclosed_indices.collect())
    quarantine = assemble_quarantine([undated_rows.collect()] + [quarantined_rows[q].collect() for q in quarters])
    published = json.loads((out / MANIFEST).read_text(encoding="utf-8")) if (out / MANIFEST).exists() else {}
    delivered = quarantine_share(quarantine, new_files(inventory, published.get("inputs", [])))
    limit = release.settings.max_quarantine_share
    if delivered["share"] * 100 > limit:  # stop before anything is staged: the operator looks at the rows first
        reasons = ", ".join(f"{r} {n}" for r, n in list(delivered["by_reason"].items())[:3])
        raise InputError(f"{delivered['worst_file']}: {delivered['share']:.1%} of the {delivered['rows']} rows "
                         f"delivered are quarantined, more than max_quarantine_share {limit:g}% ({reasons}); to "
                         f"publish them anyway and read them in quarantine.parquet: --max-quarantine-share "
                         f"{math.ceil(delivered['share'] * 100)}")
    suite = submit_suite(PUBLISHED_SUITE, PUBLISHED_INDICES, indices.filter(pl.col("status") == "ok"))
    rows_in = int(inventory.filter(pl.col("status") == "ingested")["rows"].sum())
    used = sum(int(account_usage[q].select(pl.col("rows").sum()).collect().item() or 0) for q in quarters)
    base = release.base(inventory)
    expected = quarter_fingerprints(inventory, release.settings, base)
    stale = stale_quarters(settings.state, PARTITIONED_ASSETS, expected)
    outdated = outdated_outputs(settings.state, WHOLE_STAGES, run_id)
    previous = pl.read_parquet(out / "indices.parquet") if (out / "indices.parquet").exists() else None
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    revised = diff_revisions(previous, indices, run_id, now,
                             revision_reasons(inventory, published.get("inputs", []), release.rebases))
    logged = out / "revisions.parquet"  # the published log plus this run's: a rerun never adds a row twice
    counts = {"rows_in": rows_in, "rows_used": used, "rows_quarantined": quarantine.height,
              "index_rows": indices.height, "quarters": len(quarters)}
    warnings = [f"{r['asset']}: {c['name']} ({', '.join(f'{k} {v}' for k, v in c['metadata'].items())})"
                for r in read_recorded(settings.state) if r["run_id"] == run_id for c in r["checks"] if not c["passed"]]
    summary = run_summary(counts, quarantine, delivered, run_quarters(context.run.tags),
                          indices, revised, base, delivery_of(context), warnings)
    notes = [*published.get("release_notes", []), {"run_id": run_id, "published_at": now, **release_note(
        summary, published.get("quarter_inputs", {}), expected, release.rebases)}]
    published_settings = release.published_settings(base)
    tables = {"indices": indices, "derived": derived_measures.collect(), "shift_share": shift_share.collect(),
              "quarantine": quarantine,
              "revisions": pl.concat([pl.read_parquet(logged), revised]) if logged.exists() else revised}
    for name, table in tables.items():  # each column described in the file itself
        write_parquet_atomic(table, staging / f"{name}.parquet", descriptions=describe(name, table.columns))
    package = data_package({name: table.schema for name, table in tables.items()}, base, now)
    write_json_atomic(package, staging / "datapackage.json")
    write_text_atomic(release_readme(package), staging / "README.md")
    write_json_atomic(build_manifest(inventory, dataclasses.asdict(published_settings), settings.reference().vintages,
                                     counts, expected, summary, notes), staging / MANIFEST)
    write_settings(published_settings, staging / SETTINGS_FILE)
    national = indices.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": indices.height, "path": dg.MetadataValue.path(str(staging)),
        "dagster/column_schema": table_schema(indices.schema, describe("indices", indices.columns)),
        "summary": dg.MetadataValue.md(summary_markdown(summary)),
        "quarantined_rows": quarantine.height, "revised_cells": revised.height, "base_period": base,
        "national_index": markdown_preview(national.select("metric", "period", "value"), rows=national.height)})
    outcomes = [suite.result(),
                predicate(ROWS_RECONCILE, rows_in == used + quarantine.height, rows_in=rows_in, rows_used=used,
                          rows_quarantined=quarantine.height),
                predicate(STAGES_CURRENT, not stale and not outdated,
                          stale_quarters=", ".join(stale) or "none", stages_not_from_this_run=", ".join(outdated) or
                          "none", rerun=f"{stale[0]}..{stale[-1]} (python -m pipelines run --out {out})" if stale
                          else "nothing")]
    yield from check_results(context, settings.state, "publish", "staged_release", {None: outcomes},
                             {None: indices.height})


def delivery_of(context: dg.AssetExecutionContext) -> dict:
    """What the raw inventory took in last (its materialisation's metadata): files new, already held, copies."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("raw_inventory"))
    metadata = event.asset_materialization.metadata if event else {}
    return {k: metadata[k].value for k in ("files_delivered", "files_new", "files_already_held",
                                           "duplicates_delivered", "files_replaced") if k in metadata}


SWAPPED_WHOLE = "published_files_are_the_staged_ones"


@dg.asset(kinds={"parquet"}, code_version="2", deps=["staged_release", "quarterly_report"],
          check_specs=specs("published_release", {SWAPPED_WHOLE: (
              "Every published file is byte for byte the one this run staged", False)}))
def published_release(context: dg.AssetExecutionContext, settings: Settings):
    """The published release: DIR/indices.parquet (one row per metric x period x entity x industry) and its files,
    swapped in together once every check of the run has passed."""
    out, staging = settings.directory, staging_dir(settings.state, context.run.run_id)
    if not (staging / "indices.parquet").exists():
        raise FileNotFoundError(f"{staging}: nothing staged by this run; publish with staged_release in the same run")
    write_json_atomic(summarise(read_recorded(settings.state)), staging / "quality.json")
    with_report = (staging / "report" / "index.html").exists()
    staged = {name: _digest(staging / name) for name in PUBLISHED_FILES}
    moves = [(name, name) for name in PUBLISHED_FILES] + [(SETTINGS_FILE, f"state/{SETTINGS_FILE}")]
    # a run without the report leaves none: an earlier one would show the figures before this run
    swap_in(staging, out, moves + ([("report", "report")] if with_report else []), [] if with_report else ["report"])
    indices = pl.scan_parquet(out / "indices.parquet")
    schema, statuses = indices.collect_schema(), indices.select("status").collect()["status"]
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": statuses.len(), "path": dg.MetadataValue.path(str(out / "indices.parquet")),
        "dagster/column_schema": table_schema(schema, describe("indices", schema.names())),
        "suppressed_cells": int((statuses == "suppressed").sum()), "report": with_report})
    differ = [name for name, digest in staged.items() if _digest(out / name) != digest]
    yield from check_results(context, settings.state, "publish", "published_release", {None: [
        predicate(SWAPPED_WHOLE, not differ, files=len(staged), differ=", ".join(differ) or "none")]})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
