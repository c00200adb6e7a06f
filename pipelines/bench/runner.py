"""The benchmark: rounds of every engine in turn, medians, ratios, agreement checks, results JSON."""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from pipelines.bench.data import BENCH_DIR, data_info, ensure_data
from pipelines.bench.engines import compare_indices
from pipelines.bench.workers import history_experiment, run_dagster, run_engine, step_seconds, warm_page_cache


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _median(values: list):
    """The median of `values`, the lower of the two middle ones for an even count (so it is one of them)."""
    return sorted(values)[(len(values) - 1) // 2]


def _median_run(runs: list[dict]) -> dict:
    """An engine's repeated runs as one: the run with the median wall time, with the median peak RSS and every
    run's wall time and peak RSS under `runs`."""
    wall = _median([r["wall_s"] for r in runs])
    chosen = dict(next(r for r in runs if r["wall_s"] == wall))
    chosen["peak_rss_mb"] = _median([r["peak_rss_mb"] for r in runs])
    chosen["runs"] = [{"wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"]} for r in runs]
    return chosen


def _run(engine: str, raw: Path, scratch: Path, threads: int | None) -> dict:
    if engine in ("dagster", "release"):
        result = run_dagster(raw, scratch, scope="release" if engine == "release" else "indices")
    elif engine == "dagster-spark":
        result = run_dagster(raw, scratch, "spark")
    else:
        return run_engine(engine, raw, scratch, threads)
    result.update(step_seconds(result["release"]))  # read now: the next run replaces the release
    return result


# the default engines, in their order in each round: no engine compared with another follows DuckDB's run
ENGINES = ("project", "dagster", "duckdb", "release")


def bench(rows: int, seed: int = 2021, engines: tuple = ENGINES,
          keep: bool = False, results: Path | None = None, history: int = 0, threads: int | None = None,
          data_dir: Path | None = None, repeat: int = 3, sparse: bool = False) -> dict:
    import polars as pl

    raw = ensure_data(rows, seed, data_dir, sparse)
    scratch = Path(tempfile.mkdtemp(prefix="yunzhi-bench-", dir=BENCH_DIR / "data" if data_dir is None else data_dir))
    report = {"rows": rows, "seed": seed, "sparse": sparse, "raw": str(raw), "data": data_info(raw),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "repeat": repeat, "engines": {}}
    try:
        import duckdb
        import polars

        report["versions"] = {"polars": polars.__version__, "duckdb": duckdb.__version__}
        # rounds of every engine in turn: the machine's speed drifts by 10-20 % over minutes, and each round's
        # engines share its drift; each engine is then its median run
        runs = {engine: [] for engine in engines}
        for round_ in range(1, repeat + 1):
            for engine in engines:
                print(f"[bench] {engine} ({round_}/{repeat}) ...", flush=True)
                warm_page_cache(raw)
                if engine == "privacy":  # on the indices the round's release stored
                    if not runs.get("release"):
                        raise SystemExit("the privacy engine needs the release engine before it in each round")
                    e = run_engine("privacy", Path(runs["release"][-1]["release"]), scratch, threads)
                else:
                    e = _run(engine, raw, scratch, threads)
                runs[engine].append(e)
                print(f"[bench] {engine:<8} wall {e['wall_s']:8.2f} s   peak RSS {e['peak_rss_mb']:9.1f} MB",
                      flush=True)
        report["engines"] = {engine: _median_run(done) for engine, done in runs.items()}
        got = report["engines"]
        checks, by_round = {}, {}
        if "project" in got and "duckdb" in got:  # the outputs of the last round: every round computes the same
            checks["project_vs_duckdb"] = compare_indices(pl.read_parquet(scratch / "project" / "indices.parquet"),
                                                          pl.read_parquet(scratch / "duckdb" / "indices.parquet"))
            report["ratios"] = {"time_project_over_duckdb": _ratio(got["project"]["wall_s"], got["duckdb"]["wall_s"]),
                                "rss_project_over_duckdb": _ratio(got["project"]["peak_rss_mb"],
                                                                  got["duckdb"]["peak_rss_mb"])}
            by_round["time_project_over_duckdb"] = [_ratio(a["wall_s"], b["wall_s"])
                                                    for a, b in zip(runs["project"], runs["duckdb"])]
        if "spark" in got and "duckdb" in got:
            checks["spark_vs_duckdb"] = compare_indices(pl.read_parquet(scratch / "spark" / "indices.parquet"),
                                                        pl.read_parquet(scratch / "duckdb" / "indices.parquet"))
        for engine in ("dagster", "release"):
            if engine not in got:
                continue
            if "duckdb" in got:
                state = Path(got[engine]["release"]) / "state" / "assets"
                indices = pl.concat([pl.read_parquet(state / "quarterly_indices"),
                                     pl.read_parquet(state / "annual_indices.parquet")], how="diagonal_relaxed")
                checks[f"{engine}_vs_duckdb"] = compare_indices(indices, pl.read_parquet(scratch / "duckdb" /
                                                                                         "indices.parquet"))
            if "project" in got:
                ratios = report.setdefault("ratios", {})
                ratios[f"{engine}_over_project"] = _ratio(got[engine]["wall_s"], got["project"]["wall_s"])
                # the runs alone, without starting the process, importing and creating the release's instance
                ratios[f"{engine}_runs_over_project"] = _ratio(_median([sum(r["runs_s"]) for r in runs[engine]]),
                                                               got["project"]["wall_s"])
                by_round[f"{engine}_over_project"] = [_ratio(a["wall_s"], b["wall_s"])
                                                      for a, b in zip(runs[engine], runs["project"])]
        if "release" in got:
            # the privacy stage inside the whole release (its Dagster step), as a share of the release's wall time
            step = _median([r["steps_s"].get("disclosed_indices", 0.0) for r in runs["release"]])
            report.setdefault("ratios", {})["privacy_step_over_release"] = _ratio(step, got["release"]["wall_s"])
            by_round["privacy_step_over_release"] = [_ratio(r["steps_s"].get("disclosed_indices", 0.0), r["wall_s"])
                                                     for r in runs["release"]]
        report["ratios_by_round"] = by_round
        report["checks"] = checks
        if history:
            report["history"] = history_experiment(max(rows // 5, 10_000), history, seed, scratch)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    for name, check in report.get("checks", {}).items():
        print(f"[bench] {name}: {check['cells_compared']} cells, {check['mismatches']} mismatches, "
              f"max rel diff {check['max_rel_diff_value']:.2e}")
    for name, value in report.get("ratios", {}).items():
        rounds = report["ratios_by_round"].get(name)
        print(f"[bench] {name}: {value}" + (f"   (by round: {', '.join(map(str, rounds))})" if repeat > 1 and rounds
                                             else ""))
    for h in report.get("history", []):
        print(f"[bench] new quarter with {h['history_quarters']:>2} quarters of history: "
              f"{h['wall_s']:.2f} s, {h['peak_rss_mb']:.0f} MB ({h['stages']})")
    target = results or BENCH_DIR / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"[bench] results: {target}")
    bad = [n for n, c in report.get("checks", {}).items() if c["mismatches"]]
    if bad:
        raise AssertionError(f"indices disagree: {', '.join(bad)}: {report['checks'][bad[0]]['example']}")
    return report
