"""Smoke test of the benchmark: a tiny run of `python -m pipelines bench` (project and DuckDB agree)."""
from __future__ import annotations

import json

from pipelines.bench import bench, compare_indices
from pipelines.cli import parser


def test_bench_smoke(tmp_path):
    report = bench(50_000, seed=5, engines=("project", "duckdb", "dagster"), results=tmp_path / "results.json",
                   data_dir=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["checks"]["project_vs_duckdb"]["mismatches"] == 0
    assert saved["checks"]["dagster_vs_duckdb"]["mismatches"] == 0  # the same indices, materialised by Dagster
    steps = saved["engines"]["dagster"]["steps_s"]
    assert {"validated_usage", "usage_cube", "annual_indices"} <= set(steps) and "quarterly_report" not in steps
    assert saved["ratios"]["dagster_over_project"] > 0
    phases = saved["engines"]["dagster"]["phases_s"]  # where the worker's time went, adding up to its wall time
    assert list(phases) == ["python_start", "import_cli", "preload", "run_release", "exit"]
    assert min(phases.values()) >= 0
    assert abs(sum(phases.values()) - saved["engines"]["dagster"]["wall_s"]) < 0.01
    assert saved["checks"]["project_vs_duckdb"]["cells_with_usage"] > 1000
    for engine in ("project", "duckdb"):
        assert report["engines"][engine]["wall_s"] > 0 and report["engines"][engine]["peak_rss_mb"] > 0
    assert set(report["ratios"]) >= {"time_project_over_duckdb", "rss_project_over_duckdb"}
    assert (tmp_path / "raw-50000-seed5" / "_bench.json").exists()  # reused by the next run


def test_bench_is_a_cli_command():
    args = parser().parse_args(["bench", "--rows", "1_000", "--engines", "project,duckdb"])
    assert args.command == "bench" and args.rows == 1000
    assert parser().parse_args(["run", "--raw", "r", "--out", "o", "--engine", "spark"]).engine == "spark"


def test_compare_flags_a_difference():
    import polars as pl

    cells = {"metric": ["cloud"], "period": ["2020Q1"], "geo_level": ["national"], "geo_code": ["CN"],
             "industry": ["all"]}
    a = pl.DataFrame({**cells, "value": [100.0], "amount": [5.0], "accounts": [3]})
    assert compare_indices(a, a)["mismatches"] == 0
    assert compare_indices(a, a.with_columns(pl.lit(2).alias("accounts")))["mismatches"] == 1
    assert compare_indices(a, a.with_columns(pl.lit(100.0 + 1e-6).alias("value")))["mismatches"] == 1
