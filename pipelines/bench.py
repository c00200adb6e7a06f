"""Benchmark: the project's computation against DuckDB on the same raw files, and what Dagster adds.

    python -m pipelines bench --rows 20_000_000            (or `make bench ROWS=...`)

1. Generates (or reuses) N raw rows with `pipelines.demo_data.write_demo_raw`, hive-partitioned by quarter, under
   `bench/data/raw-N-seedS/`.
2. In one run, each engine in its own subprocess (so each has its own peak RSS, read with `os.wait4`):
   * `project`: raw files -> `indices.parquet` through the transform functions the Dagster assets call
     (inventory -> classify -> account_usage -> cube -> base -> indices -> annual), quarter by quarter, with the
     intermediate outputs written to Parquet as the IO manager does;
   * `duckdb`: the same indices in SQL from the same files (classification, sums and exact distinct accounts per
     cell at every level, quarters and complete years);
   * `dagster`: the same work materialised by Dagster, every partition in one run (the stages from the raw files
     to the quarterly and annual indices, with their checks and Great Expectations suites): what orchestration
     adds to the computation;
   * `release`: the whole `python -m pipelines run` a user runs (also privacy, derived measures, publishing and
     the report), with each stage's seconds from the release's Dagster instance;
   * optionally `spark` (`--engines ...,spark`): the project with the Spark engine.
   The engines run in turn, in `--repeat` rounds (default 3): this VM's speed drifts by 10-20 % between minutes
   (a plain Python loop included), so one run of each would compare the drift as much as the engines. Each
   engine's figures are its median run; every run's are kept, and each ratio is also given round by round.
3. Asserts the indices agree (amount and value to 1e-9 relative, accounts exactly), prints wall time and peak RSS
   of each and their ratios, and writes `bench/results.json`.

`--history` adds the incremental experiment: the cost of materialising one quarter, given 1..K quarters of history.
No dagster import at module level (the workers must not pay for it).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
KEYS = ["metric", "period", "geo_level", "geo_code", "industry"]
RTOL = 1e-9


# ---------------------------------------------------------------------------------------------------- data


def ensure_data(rows: int, seed: int, data_dir: Path | None = None) -> Path:
    """The raw directory for (rows, seed): reused if complete, else written with the demo generator."""
    from pipelines.demo_data import write_demo_raw

    out = (data_dir or BENCH_DIR / "data") / f"raw-{rows}-seed{seed}"
    marker = out / "_bench.json"
    if marker.exists():
        return out
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    summary = write_demo_raw(out, rows=rows, seed=seed)
    info = {"rows": rows, "seed": seed, "seconds": round(time.perf_counter() - started, 1),
            "accounts": summary.get("accounts"), "rows_per_quarter": summary.get("rows_per_quarter")}
    marker.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def data_info(raw: Path) -> dict:
    marker = raw / "_bench.json"
    info = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
    info["bytes"] = sum(p.stat().st_size for p in raw.rglob("*.parquet"))
    return info


# ---------------------------------------------------------------------------------------------------- engines


def project_indices(raw: str | Path, work: str | Path, engine: str = "polars", spark=None) -> dict:
    """Raw files -> indices.parquet through the assets' transform functions; returns stage timings.

    Each quarter is read once (file-level pruning by the inventory), classified and aggregated per account in one
    streaming pass that also yields its quarantine; the account-level frame goes to Parquet, as the IO manager
    stores it, and everything downstream reads it back lazily.
    """
    import polars as pl

    from assets.transforms.annual import complete_years, sum_quarters_to_year, year_account_usage
    from assets.transforms.base import compute_base_totals, metrics_present
    from assets.transforms.cube import build_cube
    from assets.transforms.files import STATE_COMPRESSION, write_parquet_atomic
    from assets.transforms.indices import index_grid, normalise_to_base_period
    from assets.transforms.ingest import data_quarters, inventory_files, read_raw, unreadable_named
    from assets.transforms.reference import load_reference
    from assets.transforms.validate import Codebook, usage_and_quarantine

    work = Path(work)
    timings, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - t, 3)
        t = now

    ref = load_reference()
    inventory = inventory_files(raw)
    quarters = data_quarters(inventory)
    lap("inventory")
    usage, cubes = {}, {}
    if engine == "spark":
        from assets.transforms import spark_cube

        session = spark or spark_cube.session()
        for q, (usage_lf, quarantine_lf) in spark_cube.account_usage(session, inventory, quarters, ref,
                                                                    work / "spark").items():
            usage_path = write_parquet_atomic(usage_lf, work / "account_usage" / f"{q}.parquet", STATE_COMPRESSION)
            write_parquet_atomic(quarantine_lf, work / "quarantine" / f"{q}.parquet", STATE_COMPRESSION)
            usage[q] = pl.scan_parquet(usage_path)
        lap("account_usage")
        paths = {q: [work / "account_usage" / f"{q}.parquet"] for q in quarters}
        paths |= {y: [work / "account_usage" / f"{y}Q{i}.parquet" for i in (1, 2, 3, 4)]
                  for y in complete_years(quarters)}
        cubes = spark_cube.build_cubes(session, paths, ref)
        lap("cube")
    else:
        book = Codebook(ref)
        for q in quarters:
            with unreadable_named(inventory, [q]):
                account, quarantine = usage_and_quarantine(read_raw(inventory, [q]), book)
            usage[q] = pl.scan_parquet(write_parquet_atomic(account, work / "account_usage" / f"{q}.parquet",
                                                            STATE_COMPRESSION))
            write_parquet_atomic(quarantine, work / "quarantine" / f"{q}.parquet", STATE_COMPRESSION)
            del account, quarantine
        lap("account_usage")
        for q in quarters:
            cubes[q] = build_cube(usage[q], ref).collect(engine="streaming")
        lap("cube")
    base_period = quarters[0]
    base = compute_base_totals(cubes[base_period], base_period, metrics_present([cubes[q] for q in quarters]))
    grid = index_grid(ref, base["metric"].to_list())
    tables = {q: normalise_to_base_period(cubes[q], base, grid, q) for q in quarters}
    lap("indices")
    years = []
    for year in complete_years(quarters):
        qs = [f"{year}Q{i}" for i in (1, 2, 3, 4)]
        if engine == "spark":
            year_cube = cubes[year]
        else:
            year_cube = build_cube(year_account_usage([usage[q] for q in qs]), ref).collect(engine="streaming")
        years.append(sum_quarters_to_year([tables[q] for q in qs], year_cube, year))
    lap("annual")
    indices = pl.concat([*tables.values(), *years])
    write_parquet_atomic(indices, work / "indices.parquet")
    lap("write")
    return {"stages": timings, "quarters": quarters, "rows_out": indices.height}


def duckdb_indices(raw: str | Path, work: str | Path, threads: int | None = None) -> dict:
    """The same indices in DuckDB SQL, from the same files: quarters and complete years, every level and industry.

    The reference lookups (region codes, industry spellings, products, geo membership) are the project's tables,
    registered as DuckDB relations; everything that touches raw rows is SQL.
    """
    import duckdb
    import polars as pl

    from assets.transforms.cube import geo_membership
    from assets.transforms.ingest import list_raw_files
    from assets.transforms.reference import load_reference

    work = Path(work)
    timings, t = {}, time.perf_counter()
    ref = load_reference()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{work / 'duckdb.tmp'}'")
    regions = ref.region_lookup()  # noqa: F841 (registered by name below)
    industries = ref.industry_lookup()
    products = ref.product_lookup()
    members = geo_membership(ref)
    for name, frame in {"regions": regions, "industries": industries, "products": products,
                        "members": members}.items():
        con.register(name, frame.to_arrow())
    files = [str(p) for p in list_raw_files(raw)]
    con.execute(f"""
    CREATE TEMP TABLE account_usage AS
    WITH raw AS (
        SELECT usage_date, trim(account_id) AS account_id, trim(region_code) AS region_code,
               trim(industry) AS industry, trim(product) AS product, lower(trim(metric)) AS metric, amount
        FROM read_parquet({files!r}, hive_partitioning = false)
    ), resolved AS (
        SELECT r.*, g.geo_code, g.province_code, coalesce(i.code, 'other') AS industry_code, p.product_metric,
               i.code AS industry_found
        FROM raw r
        LEFT JOIN regions g ON g.code = regexp_replace(r.region_code, '\\.0+$', '')
        LEFT JOIN industries i ON i.spelling = lower(r.industry)
        LEFT JOIN products p ON p.product = lower(r.product)
    )
    SELECT year(usage_date) || 'Q' || quarter(usage_date) AS quarter,
           coalesce(nullif(metric, ''), product_metric) AS metric, geo_code, industry_code AS industry, account_id,
           sum(amount::DECIMAL(38, 9)) AS amount
    FROM resolved
    WHERE usage_date >= DATE '2000-01-01' AND usage_date < DATE '2100-01-01'
      AND coalesce(account_id, '') <> '' AND coalesce(region_code, '') <> '' AND geo_code IS NOT NULL
      AND (coalesce(industry, '') = '' OR industry_found IS NOT NULL)
      AND CASE WHEN coalesce(metric, '') <> ''
               THEN metric IN ('cloud', 'ai') AND (product_metric IS NULL OR product_metric = metric)
               ELSE product_metric IS NOT NULL END
      AND amount IS NOT NULL AND isfinite(amount) AND amount >= 0 AND amount <= 1e15
    GROUP BY ALL
    """)
    now = time.perf_counter()
    timings["account_usage"], t = round(now - t, 3), now
    # Quarters and complete years: a year's accounts are distinct over its four quarters.
    con.execute("""
    CREATE TEMP TABLE periods AS
    WITH q AS (SELECT DISTINCT quarter FROM account_usage),
         y AS (SELECT left(quarter, 4) AS year FROM q GROUP BY 1 HAVING count(*) = 4)
    SELECT quarter, quarter AS period, 'quarter' AS period_type FROM q
    UNION ALL SELECT q.quarter, y.year, 'year' FROM q JOIN y ON left(q.quarter, 4) = y.year
    """)
    cube = con.sql("""
    WITH per_account AS (
        SELECT p.period, p.period_type, a.metric, m.geo_level, m.entity AS geo_code, a.industry, a.account_id,
               sum(a.amount) AS amount
        FROM account_usage a JOIN periods p USING (quarter) JOIN members m USING (geo_code)
        GROUP BY GROUPING SETS ((p.period, p.period_type, a.metric, m.geo_level, m.entity, a.industry, a.account_id),
                                (p.period, p.period_type, a.metric, m.geo_level, m.entity, a.account_id))
    )
    SELECT metric, period, period_type, geo_level, geo_code, coalesce(industry, 'all') AS industry,
           sum(amount)::DOUBLE AS amount, count(*) FILTER (WHERE amount > 0) AS accounts
    FROM per_account GROUP BY ALL
    """).pl()
    now = time.perf_counter()
    timings["cube"], t = round(now - t, 3), now
    quarters = sorted(cube.filter(pl.col("period_type") == "quarter")["period"].unique().to_list())
    base = (cube.filter((pl.col("period") == quarters[0]) & (pl.col("geo_level") == "national")
                        & (pl.col("industry") == "all"))
            .select("metric", pl.col("amount").alias("base_amount")))
    indices = (cube.join(base, on="metric")
               .with_columns((100.0 * pl.col("amount") / pl.col("base_amount")).alias("value"))
               .drop("base_amount"))
    indices.write_parquet(work / "indices.parquet")
    timings["indices"] = round(time.perf_counter() - t, 3)
    con.close()
    return {"stages": timings, "quarters": quarters, "rows_out": indices.height}


def compare_indices(project: "pl.DataFrame", duck: "pl.DataFrame") -> dict:
    """Every cell with usage agrees (amount, value to 1e-9 relative; accounts exactly); the rest are zeros."""
    import polars as pl

    proj = project.select(*KEYS, "value", "amount", "accounts")
    used = proj.filter((pl.col("amount") != 0) | (pl.col("accounts") != 0))
    both = used.join(duck.select(*KEYS, pl.col("value").alias("value_d"), pl.col("amount").alias("amount_d"),
                                 pl.col("accounts").cast(pl.Int64).alias("accounts_d")), on=KEYS, how="full",
                     coalesce=True)

    def rel(a, b):
        return ((pl.col(a) - pl.col(b)).abs() / pl.max_horizontal(pl.col(a).abs(), pl.col(b).abs(), pl.lit(1e-300)))

    bad = both.filter(pl.col("value").is_null() | pl.col("value_d").is_null() | (rel("value", "value_d") > RTOL)
                      | (rel("amount", "amount_d") > RTOL) | (pl.col("accounts") != pl.col("accounts_d")))
    return {"cells_compared": both.height, "cells_with_usage": used.height, "mismatches": bad.height,
            "max_rel_diff_value": float(both.select(rel("value", "value_d").max()).item() or 0.0),
            "example": bad.head(3).to_dicts() if bad.height else []}


# ---------------------------------------------------------------------------------------------------- workers


def worker(engine: str, raw: str, work: str, report: str, threads: int | None = None) -> int:
    """Run one engine in this process and write its report (stage timings, compute seconds, own peak RSS)."""
    import resource

    started = time.perf_counter()
    if engine == "project":
        result = project_indices(raw, work)
    elif engine == "spark":
        result = project_indices(raw, work, engine="spark")
    elif engine == "duckdb":
        result = duckdb_indices(raw, work, threads)
    elif engine == "quarter":  # one quarter's account usage + cube, as materialising a new partition does
        result = one_quarter(raw, work)
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    result["compute_s"] = round(time.perf_counter() - started, 3)
    result["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(report).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


def one_quarter(raw: str, work: str) -> dict:
    """Materialise the newest quarter only: inventory, then its account usage, quarantine, cube and index table."""
    from assets.transforms.cube import build_cube
    from assets.transforms.ingest import data_quarters, inventory_files, read_raw
    from assets.transforms.reference import load_reference
    from assets.transforms.validate import usage_and_quarantine

    t0 = time.perf_counter()
    ref, inventory = load_reference(), inventory_files(raw)
    quarter = data_quarters(inventory)[-1]
    t1 = time.perf_counter()
    account, quarantine = usage_and_quarantine(read_raw(inventory, [quarter]), ref)
    cube = build_cube(account.lazy(), ref).collect(engine="streaming")
    t2 = time.perf_counter()
    return {"quarter": quarter, "stages": {"inventory": round(t1 - t0, 3), "quarter": round(t2 - t1, 3)},
            "cells": cube.height, "quarantined": quarantine.height}


# Every library any engine imports (Dagster's and GX's are thousands of files). After a run that took much memory,
# this VM re-read them from disk: importing Dagster took 2.1 s instead of 0.6-0.9 s, and the engine that came
# next paid for the disk where the other did not. A throwaway process imports them all once (7-8 s) and lists the
# files it read (each module's compiled file, else its source; mapped shared libraries); later warm-ups read them.
WARM_IMPORTS = ("import json, os, sys\n"
                "import duckdb, polars, pipelines.cli, pipelines.definitions, pipelines.report\n"
                "from expectations.adapter import prepare_gx\n"
                "prepare_gx()\n"
                "files = {c if c and os.path.exists(c) else f for m in list(sys.modules.values())\n"
                "         for f, c in [(getattr(m, '__file__', None), getattr(m, '__cached__', None))] if f}\n"
                "files |= {line.split()[5] for line in open('/proc/self/maps') if len(line.split()) == 6\n"
                "          and line.split()[5].startswith('/')}\n"
                "print(json.dumps(sorted(files)))\n")
_library_files: list[str] = []


def _read_through(paths) -> None:
    for path in paths:
        try:
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass
        except OSError:  # a file gone since it was listed (a module written to a temporary directory)
            continue


def warm_page_cache(raw: Path) -> None:
    """Write out what the engine before left dirty (DuckDB's spill files), then read every raw file and every
    library file once, so no engine pays for the disk where another did not."""
    os.sync()
    _read_through(sorted(p for p in raw.rglob("*") if p.is_file()))
    if not _library_files:
        done = subprocess.run([sys.executable, "-c", WARM_IMPORTS], cwd=ROOT, check=True, capture_output=True,
                              text=True)
        _library_files.extend(json.loads(done.stdout.strip().splitlines()[-1]))
    else:
        _read_through(_library_files)


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run a child process; its wall time and peak RSS (os.wait4: this child and its own children)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    stdout, stderr = b"", b""
    # read the pipes while it runs, then reap it with wait4 (Popen.communicate would reap it first)
    import threading

    chunks = {"out": [], "err": []}
    readers = [threading.Thread(target=lambda s=s, k=k: chunks[k].append(s.read()), daemon=True)
               for s, k in ((proc.stdout, "out"), (proc.stderr, "err"))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    stdout, stderr = b"".join(chunks["out"]), b"".join(chunks["err"])
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:5])}... failed ({proc.returncode}):\n"
                           f"{stderr.decode(errors='replace')[-3000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "stdout": stdout.decode(errors="replace").strip()[-500:]}


def run_engine(engine: str, raw: Path, scratch: Path, threads: int | None = None) -> dict:
    work = scratch / engine
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    report = work / "report.json"
    cmd = [sys.executable, "-m", "pipelines.bench", "worker", "--engine", engine, "--raw", str(raw),
           "--work", str(work), "--report", str(report)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = run_child(cmd)
    out.update(json.loads(report.read_text(encoding="utf-8")))
    out.pop("stdout", None)
    return out


INDEX_ASSETS = ("quarterly_indices", "annual_indices")


def run_dagster(raw: Path, scratch: Path, engine: str = "polars", scope: str = "indices") -> dict:
    """The Dagster materialisation of every quarter in a child process: `indices`, the same work as the project
    engine (raw files to the quarterly and annual indices, with those stages' checks), or `release`, the
    `python -m pipelines run` a user runs (privacy, derived measures, publishing and the report too)."""
    out_dir = scratch / f"dagster-{scope}-{engine}"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if scope == "release":
        cmd = [sys.executable, "-m", "pipelines", "run", "--raw", str(raw), "--out", str(out_dir)]
    else:
        cmd = [sys.executable, "-m", "pipelines.bench", "dagster-worker", "--raw", str(raw), "--out", str(out_dir)]
    if engine != "polars":
        cmd += ["--engine", engine]
    started = time.time()
    result = run_child(cmd, env={"DAGSTER_HOME": str(out_dir / ".dagster")})
    result["release"] = str(out_dir)
    phases = out_dir / "bench-phases.json"
    if phases.exists():  # where the worker's time went: each stamp ends a phase, and the exit ends the last
        stamps = json.loads(phases.read_text(encoding="utf-8"))
        times = [started, *(stamps[name] for name in WORKER_PHASES), started + result["wall_s"]]
        result["phases_s"] = {name: round(b - a, 3) for name, a, b in zip([*WORKER_PHASES, "exit"], times, times[1:])}
    return result


WORKER_PHASES = ("python_start", "import_cli", "preload", "run_release")  # each ends at its stamp


def dagster_worker(raw: str, out: str, engine: str | None = None) -> int:
    stamps = {"python_start": time.time()}
    from expectations import validator

    validator.start()  # as `python -m pipelines run` does: before Dagster is imported
    from pipelines.cli import preload, run_release

    stamps["import_cli"] = time.time()
    preload()
    stamps["preload"] = time.time()
    summary = run_release(raw, out, until=INDEX_ASSETS, engine=engine)
    stamps["run_release"] = time.time()
    print(f"indices for {len(summary['quarters'])} quarters in {out}")
    from assets.transforms.files import write_json_atomic

    write_json_atomic(stamps, Path(out) / "bench-phases.json")
    gc.freeze()  # as `python -m pipelines run` does before it exits
    return 0


def step_seconds(release: str | Path) -> dict:
    """Seconds per stage (Dagster step) of the release's runs, from its own instance, and each run's total."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(Path(release) / ".dagster"))
    steps, runs = {}, []
    for run in reversed(instance.get_runs()):
        stats = instance.get_run_stats(run.run_id)
        runs.append(round(stats.end_time - stats.start_time, 3))
        for step in instance.get_run_step_stats(run.run_id):
            steps[step.step_key] = round(step.end_time - step.start_time, 3)
    instance.dispose()
    return {"runs_s": runs, "steps_s": steps}


# ---------------------------------------------------------------------------------------------------- history


def history_experiment(rows_per_quarter: int, max_quarters: int, seed: int, scratch: Path) -> list[dict]:
    """Cost of materialising the newest quarter given 1, 2, 4, ... quarters of history (same rows per quarter).

    History is built by copying one generated quarter's file under earlier quarter labels with its dates shifted
    (the rows are otherwise identical), so only the amount of history differs between the runs.
    """
    import polars as pl

    src = ensure_data(max(rows_per_quarter * 5, 30_000), seed)
    files = sorted(src.glob("quarter=2020Q4/*.parquet"))
    one = pl.read_parquet(files).head(rows_per_quarter)
    out = []
    k = 1
    while k <= max_quarters:
        raw = scratch / f"history-{k}"
        if raw.exists():
            shutil.rmtree(raw)
        for i in range(k):  # quarters 2020Q4 - (k-1-i) ... 2020Q4
            months = 3 * (k - 1 - i)
            label_year, label_q = divmod(2020 * 4 + 3 - (k - 1 - i), 4)
            part = raw / f"quarter={label_year}Q{label_q + 1}"
            part.mkdir(parents=True)
            one.with_columns(pl.col("usage_date").dt.offset_by(f"-{months}mo")).write_parquet(part / "part-0.parquet")
        result = run_engine("quarter", raw, scratch / f"history-{k}-work")
        out.append({"history_quarters": k, "new_quarter_rows": rows_per_quarter, **{
            key: result[key] for key in ("wall_s", "peak_rss_mb", "stages", "quarter")}})
        shutil.rmtree(raw)
        k *= 2
    return out


# ---------------------------------------------------------------------------------------------------- main


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
          data_dir: Path | None = None, repeat: int = 3) -> dict:
    import polars as pl

    raw = ensure_data(rows, seed, data_dir)
    scratch = Path(tempfile.mkdtemp(prefix="yunzhi-bench-", dir=BENCH_DIR / "data" if data_dir is None else data_dir))
    report = {"rows": rows, "seed": seed, "raw": str(raw), "data": data_info(raw),
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


def positive_int(text: str) -> int:
    """An argparse type: a positive integer, `_` allowed as a digit separator (also the CLI's `demo-data --rows`)."""
    value = int(text.replace("_", ""))
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--rows", type=positive_int, default=20_000_000,
                   help="raw rows to generate or reuse (default 20,000,000)")
    p.add_argument("--seed", type=int, default=2021, help="random seed of the generated data (default 2021)")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="comma-separated, run in this order in each round: project, duckdb, dagster (the same work "
                        "in Dagster), release (the whole `pipelines run`), spark, dagster-spark (default "
                        f"{','.join(ENGINES)}: no engine compared with another follows DuckDB's run)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="K",
                   help="rounds of every engine in turn; each engine's figures are its median run (default 3)")
    p.add_argument("--history", type=int, default=0, metavar="K",
                   help="also time materialising one new quarter with 1, 2, 4 ... K quarters of history")
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    p.add_argument("--results", type=Path, default=None, help="where to write results (default bench/results.json)")
    p.add_argument("--data-dir", type=Path, default=None, help="where generated data lives (default bench/data)")
    p.add_argument("--keep", action="store_true", help="keep the engines' outputs (scratch directory)")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    bench(args.rows, args.seed, tuple(e.strip() for e in args.engines.split(",") if e.strip()), args.keep,
          args.results, args.history, args.threads, args.data_dir, args.repeat)
    return 0


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m pipelines.bench")
    sub = top.add_subparsers(dest="command")
    add_arguments(sub.add_parser("bench", help="run the benchmark (the default)"))
    w = sub.add_parser("worker", help="internal: one engine in this process")
    w.add_argument("--engine", required=True)
    w.add_argument("--raw", required=True)
    w.add_argument("--work", required=True)
    w.add_argument("--report", required=True)
    w.add_argument("--threads", type=int, default=None)
    d = sub.add_parser("dagster-worker", help="internal: the indices' stages, materialised by Dagster")
    d.add_argument("--raw", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--engine", default=None)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("bench", "worker", "dagster-worker", "-h", "--help"):
        argv = ["bench", *argv]
    args = top.parse_args(argv)
    if args.command == "worker":
        return worker(args.engine, args.raw, args.work, args.report, args.threads)
    if args.command == "dagster-worker":
        return dagster_worker(args.raw, args.out, args.engine)
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
