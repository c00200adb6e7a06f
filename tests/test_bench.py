"""Smoke test of the benchmark: a tiny run of `python -m pipelines bench` (project and DuckDB agree)."""
from __future__ import annotations

import json

import pytest

from pipelines.bench.engines import compare_indices
from pipelines.bench.runner import _median_run, bench
from pipelines.cli import parser


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")  # the generated rows are shared by this module's tests


def test_bench_smoke(bench_dir):
    report = bench(50_000, seed=5, engines=("project", "duckdb", "dagster"), results=bench_dir / "results.json",
                   data_dir=bench_dir, repeat=1)
    saved = json.loads((bench_dir / "results.json").read_text())
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
    assert (bench_dir / "raw-50000-seed5" / "_bench.json").exists()  # reused by the next run


def test_bench_rounds(bench_dir):
    bench(50_000, seed=5, engines=("project",), results=bench_dir / "rounds.json", data_dir=bench_dir, repeat=2)
    saved = json.loads((bench_dir / "rounds.json").read_text())
    runs = saved["engines"]["project"]["runs"]  # two rounds: the engine is its faster run (the lower median)
    assert saved["repeat"] == 2 and len(runs) == 2
    assert saved["engines"]["project"]["wall_s"] == min(r["wall_s"] for r in runs)


def test_an_engine_is_its_median_run():
    runs = [{"wall_s": 3.0, "peak_rss_mb": 10.0, "stages": "c"}, {"wall_s": 1.0, "peak_rss_mb": 30.0, "stages": "a"},
            {"wall_s": 2.0, "peak_rss_mb": 20.0, "stages": "b"}]
    median = _median_run(runs)
    assert (median["wall_s"], median["stages"], median["peak_rss_mb"]) == (2.0, "b", 20.0)
    assert [r["wall_s"] for r in median["runs"]] == [3.0, 1.0, 2.0]  # every run kept, in the order they ran
    assert _median_run(runs[:2])["wall_s"] == 1.0


def test_bench_is_a_cli_command():
    args = parser().parse_args(["bench", "--rows", "1_000", "--engines", "project,duckdb"])
    assert args.command == "bench" and args.rows == 1000 and args.repeat == 3
    assert parser().parse_args(["bench", "--repeat", "1"]).repeat == 1
    with pytest.raises(SystemExit):
        parser().parse_args(["bench", "--repeat", "0"])
    assert parser().parse_args(["run", "--raw", "r", "--out", "o", "--engine", "spark"]).engine == "spark"


def test_compare_flags_a_difference():
    import polars as pl

    cells = {"metric": ["cloud"], "period": ["2020Q1"], "geo_level": ["national"], "geo_code": ["CN"],
             "industry": ["all"]}
    a = pl.DataFrame({**cells, "value": [100.0], "amount": [5.0], "accounts": [3]})
    assert compare_indices(a, a)["mismatches"] == 0
    assert compare_indices(a, a.with_columns(pl.lit(2).alias("accounts")))["mismatches"] == 1
    assert compare_indices(a, a.with_columns(pl.lit(100.0 + 1e-6).alias("value")))["mismatches"] == 1
