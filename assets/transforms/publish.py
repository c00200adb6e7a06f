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
                "geo_code": pl.String, "geo_name": pl.String, "geo_name_en": pl.String, "geo_name_short": pl.String,
                "industry": pl.String,
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


DATASET_NOTE = "_dataset.json"  # a raw folder's own description (the demo generator writes one)


def provenance(raw_path: str) -> dict:
    """What the release's data is: the raw folder's own description (DATASET_NOTE) if it has one."""
    note = Path(raw_path) / DATASET_NOTE
    if raw_path and note.is_file():
        return json.loads(note.read_text(encoding="utf-8"))
    return {"synthetic": False, "description": "the raw billing files listed under inputs"}


def build_manifest(inventory: pl.DataFrame, settings: dict, vintages: dict, counts: dict,
                   quarter_inputs: dict[str, str], summary: dict, notes: list[dict]) -> dict:
    """The release's provenance: code, inputs (full path and hash), seeds, settings, row counts, what each quarter
    was computed from (the fingerprints a later run compares to tell which quarters the published release does not
    reflect), the summary of the run that published it, and the notes of every publication."""
    return {
        "schema_version": SCHEMA_VERSION,
        "code_version": code_version(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [{k: r[k] for k in ("source_file", "path", "sha256", "format", "bytes", "rows", "status")}
                   for r in inventory.iter_rows(named=True)],
        "provenance": provenance(settings.get("raw_path", "")),
        "seed_vintages": vintages,
        "settings": settings,
        "row_counts": counts,
        "quarter_inputs": quarter_inputs,
        "summary": summary,
        "release_notes": notes,
    }


def new_files(inventory: pl.DataFrame, published_inputs: list[dict]) -> pl.DataFrame:
    """The ingested files the published release did not hold yet (all of them for a first publication)."""
    held = {entry["sha256"] for entry in published_inputs if entry.get("status") == "ingested"}
    return inventory.filter((pl.col("status") == "ingested") & ~pl.col("sha256").is_in(list(held)))


def quarantine_share(quarantine: pl.DataFrame, files: pl.DataFrame) -> dict:
    """Of the rows in `files`: how many were quarantined, by reason, and the file with the most."""
    rows = int(files["rows"].sum())
    bad = quarantine.filter(pl.col("source_file").is_in(files["source_file"].implode()))
    reasons = bad.group_by("reason").len().sort("len", "reason", descending=[True, False])
    worst = bad.group_by("source_file").len().sort("len", "source_file", descending=[True, False])
    return {"rows": rows, "quarantined": bad.height, "share": bad.height / rows if rows else 0.0,
            "by_reason": dict(zip(reasons["reason"], reasons["len"])),
            "worst_file": worst["source_file"][0] if worst.height else None}


def revision_reasons(inventory: pl.DataFrame, published_inputs: list[dict], rebased: bool) -> dict[str, str]:
    """Why each period's values may change in this publication: `rebase`, else `replaced file` for the quarters (and
    their years) a file overwritten in place held, else `late data`."""
    if rebased:
        return {"*": "rebase"}
    held = {e["sha256"] for e in published_inputs if e.get("status") == "ingested"}
    replaced = inventory.filter((pl.col("status") == "replaced") & pl.col("sha256").is_in(list(held)))
    quarters = set(replaced["quarters"].explode().drop_nulls())
    return {"*": "late data", **{q: "replaced file" for q in quarters}, **{q[:4]: "replaced file" for q in quarters}}



KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
REVISION_SCHEMA = {**{k: pl.String for k in KEY}, "old_value": pl.Float64, "new_value": pl.Float64,
                   "old_status": pl.String, "new_status": pl.String, "old_accounts": pl.Int64,
                   "new_accounts": pl.Int64, "run_id": pl.String, "revised_at": pl.String, "reason": pl.String}


def diff_revisions(old: pl.DataFrame | None, new: pl.DataFrame, run_id: str, at: str,
                   reasons: dict[str, str]) -> pl.DataFrame:
    """Every published cell whose value, accounts or status this release changes (new cells are not revisions), with
    the reason of its period (`reasons`: period -> reason, "*" for every other period)."""
    if old is None or old.height == 0:
        return pl.DataFrame(schema=REVISION_SCHEMA)
    joined = old.select(*KEY, pl.col("value").alias("old_value"), pl.col("status").alias("old_status"),
                        pl.col("accounts").alias("old_accounts")).join(
        new.select(*KEY, pl.col("value").alias("new_value"), pl.col("status").alias("new_status"),
                   pl.col("accounts").alias("new_accounts")), on=KEY, how="left")
    changed = joined.filter(pl.col("old_value").ne_missing(pl.col("new_value"))
                            | pl.col("old_status").ne_missing(pl.col("new_status"))
                            | pl.col("old_accounts").ne_missing(pl.col("new_accounts")))
    reason = pl.col("period").replace_strict({k: v for k, v in reasons.items() if k != "*"}, default=reasons["*"],
                                            return_dtype=pl.String)
    return (changed.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(at).alias("revised_at"), reason.alias("reason"))
            .select(list(REVISION_SCHEMA)).cast(REVISION_SCHEMA))


def run_summary(counts: dict, quarantine: pl.DataFrame, delivered: dict, recomputed: list[str] | None,
                indices: pl.DataFrame, revised: pl.DataFrame, base: str, delivery: dict, warnings: list[str]) -> dict:
    """What a publication did and holds: rows in, used and quarantined by reason; the files delivered (new, already
    held, byte-identical copies, replaced); quarters recomputed; cells suppressed; revisions by reason; the checks
    that warned."""
    reasons = quarantine.group_by("reason").len().sort("reason")
    revisions = revised.group_by("reason").len().sort("reason")
    return {"rows_in": counts["rows_in"], "rows_used": counts["rows_used"],
            "rows_quarantined": counts["rows_quarantined"],
            "quarantined_by_reason": dict(zip(reasons["reason"], reasons["len"])),
            "delivery": {**delivery, "rows_new": delivered["rows"], "rows_new_quarantined": delivered["quarantined"]},
            "quarters_recomputed": recomputed or [], "base_period": base,
            "cells_suppressed": indices.filter(pl.col("status") == "suppressed").height,
            "revisions": dict(zip(revisions["reason"], revisions["len"])), "warnings": warnings}


def release_note(summary: dict, published_inputs: dict[str, str], quarter_inputs: dict[str, str],
                 rebased: bool) -> dict:
    """One publication's changes, for the notes kept in the manifest and shown in the report."""
    return {"quarters_new": sorted(set(quarter_inputs) - set(published_inputs)),
            "quarters_recomputed": summary["quarters_recomputed"], "revisions": summary["revisions"],
            "rebased_to": summary["base_period"] if rebased else None}


def summary_lines(summary: dict) -> list[str]:
    """The summary as the CLI prints it (and the run's metadata shows it)."""
    reasons = ", ".join(f"{r} {n:,}" for r, n in summary["quarantined_by_reason"].items())
    delivery = summary["delivery"]
    held = delivery.get("files_already_held", 0) + delivery.get("duplicates_delivered", 0)
    revisions = ", ".join(f"{r} {n:,}" for r, n in summary["revisions"].items()) or "none"
    recomputed = summary["quarters_recomputed"]
    return [f"rows: {summary['rows_in']:,} in = {summary['rows_used']:,} used + {summary['rows_quarantined']:,} "
            f"quarantined" + (f" ({reasons})" if reasons else ""),
            f"files: {delivery.get('files_new', 0)} new ({delivery['rows_new']:,} rows, "
            f"{delivery['rows_new_quarantined']:,} quarantined), {held} skipped (already held or byte-identical)"
            + (f", {delivery['files_replaced']} replaced" if delivery.get("files_replaced") else ""),
            f"quarters recomputed: {recomputed[0] + '..' + recomputed[-1] if recomputed else 'none'}; base "
            f"{summary['base_period']}",
            f"cells suppressed: {summary['cells_suppressed']:,}; revisions: {revisions}",
            *([f"warnings: {'; '.join(summary['warnings'])}"] if summary.get("warnings") else [])]


def summary_markdown(summary: dict) -> str:
    return "\n".join(f"- {line}" for line in summary_lines(summary))


PRIMARY_KEYS = {"indices": KEY, "derived": [*KEY, "measure", "comparison"],
                "shift_share": ["metric", "period", "period_type", "geo_level", "geo_code"]}


def _field_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "number"
    return {pl.Date: "date", pl.Boolean: "boolean"}.get(dtype, "array" if isinstance(dtype, pl.List) else "string")


def data_package(schemas: dict[str, pl.Schema], base_period: str, created_at: str) -> dict:
    """The release's data dictionary as a Frictionless Data Package descriptor (datapackage.json): every published
    table, each column with its type and description, and the values of measure, comparison and status."""
    from assets.transforms.dictionary import COMPARISONS, FILES, MEASURES, STATUSES, describe

    enums = {"measure": MEASURES, "comparison": COMPARISONS, "status": STATUSES}
    resources = []
    for name, schema in schemas.items():
        descriptions = describe(name, schema.names())
        fields = []
        for column, dtype in schema.items():
            field = {"name": column, "type": _field_type(dtype), "description": descriptions[column]}
            if column in enums and name in ("indices", "derived", "shift_share"):
                values = {k: v for k, v in enums[column].items() if name != "indices" or k != "new"}
                field["constraints"] = {"enum": list(values)}
                field["description"] += ". " + "; ".join(f"{k}: {v}" for k, v in values.items())
            fields.append(field)
        resources.append({"name": name, "path": f"{name}.parquet", "format": "parquet",
                          "mediatype": "application/vnd.apache.parquet", "description": FILES[name],
                          "schema": {"fields": fields, **({"primaryKey": PRIMARY_KEYS[name]}
                                                          if name in PRIMARY_KEYS else {})}})
    return {"name": "yunzhi-release", "title": "Cloud-usage (用云量) and AI-enablement (赋智量) indices for China",
            "description": f"Index points: 100 x consumption / consumption of the base quarter {base_period}, "
                           "national, all industries, per metric. Municipalities (北京, 天津, 上海, 重庆) appear at "
                           "both province and city level with the same code.",
            "created": created_at, "resources": resources}


def release_readme(package: dict) -> str:
    """The data dictionary as a page for people (DIR/README.md), from the same descriptor."""
    lines = [f"# {package['title']}", "", package["description"], ""]
    for resource in package["resources"]:
        lines += [f"## `{resource['path']}`", "", resource["description"] + ".", "",
                  "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{f['name']}` | {f['type']} | {f['description'].replace('|', '/')} |"
                  for f in resource["schema"]["fields"]]
        lines.append("")
    return "\n".join(lines)
