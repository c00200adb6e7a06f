"""Checks: their specs (a predicate's name, what it asserts, whether it blocks), and outcomes -> Dagster
AssetCheckResults, each also recorded under DIR/state/quality for quality.json."""
from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from assets.transforms.files import write_json_atomic
from expectations.outcomes import Outcome


def specs(asset: str, checks: dict[str, tuple[str, bool]]) -> list[dg.AssetCheckSpec]:
    """The check specs of `asset`: {name: (description, blocking)}."""
    return [dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking)
            for name, (description, blocking) in checks.items()]


def _plain(value):
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def check_results(context: dg.AssetExecutionContext, state: Path, stage: str, asset: str,
                  outcomes: dict[str | None, list[Outcome]], rows: dict[str | None, int] | None = None):
    """Record each partition's outcomes, then yield one AssetCheckResult per check over all of them."""
    merged: dict[str, dict] = {}
    for partition, items in outcomes.items():
        write_json_atomic({"stage": stage, "asset": asset, "partition": partition,
                           "rows": (rows or {}).get(partition), "run_id": context.run.run_id,
                           "checks": [{"name": o.name, "passed": o.passed,
                                       "metadata": {k: _plain(v) for k, v in o.metadata.items()}} for o in items]},
                          state / "quality" / asset / f"{partition or '_'}.json")
        for o in items:
            entry = merged.setdefault(o.name, {"passed": True, "metadata": {}})
            entry["passed"] &= o.passed
            for key, value in o.metadata.items():
                entry["metadata"][f"{partition} {key}" if partition else key] = _plain(value)
    owners = {key.name: key.asset_key for key in context.assets_def.check_keys}
    for name, entry in merged.items():
        yield dg.AssetCheckResult(asset_key=owners.get(name, dg.AssetKey(asset)), check_name=name,
                                  passed=entry["passed"], metadata=entry["metadata"])


def read_recorded(state: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((state / "quality").rglob("*.json"))]


def summarise(records: list[dict]) -> dict:
    """Per stage: checks run, passed, failed (with names), and rows by asset."""
    stages: dict[str, dict] = {}
    for record in records:
        stage = stages.setdefault(record["stage"], {"checks_run": 0, "passed": 0, "failed": 0, "failures": [],
                                                     "rows": {}})
        for check in record["checks"]:
            stage["checks_run"] += 1
            stage["passed" if check["passed"] else "failed"] += 1
            if not check["passed"]:
                stage["failures"].append(f"{record['asset']}[{record['partition'] or '-'}] {check['name']}")
        if record.get("rows") is not None:
            stage["rows"].setdefault(record["asset"], 0)
            stage["rows"][record["asset"]] += record["rows"]
    return stages
