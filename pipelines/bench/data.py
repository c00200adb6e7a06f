"""The benchmark's raw data: generated once per (rows, seed) with the default generator, then reused."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "bench"


def ensure_data(rows: int, seed: int, data_dir: Path | None = None, sparse: bool = False) -> Path:
    """The raw directory for (rows, seed[, sparse]): reused if complete, else written with the demo generator."""
    from pipelines.demo.data import write_demo_raw

    out = (data_dir or BENCH_DIR / "data") / f"raw-{rows}-seed{seed}{'-sparse' if sparse else ''}"
    marker = out / "_bench.json"
    if marker.exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    summary = write_demo_raw(out, rows=rows, seed=seed, sparse=sparse)
    info = {"rows": rows, "seed": seed, "sparse": sparse, "seconds": round(time.perf_counter() - started, 1),
            "accounts": summary.get("accounts"), "rows_per_quarter": summary.get("rows_per_quarter")}
    marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def data_info(raw: Path) -> dict:
    marker = raw / "_bench.json"
    info = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    info["bytes"] = sum(p.stat().st_size for p in raw.rglob("*.parquet"))
    return info
