"""Each engine in a process of its own (wall time and peak RSS per process), with the page cache warmed alike."""
from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipelines.bench.data import ROOT, ensure_data
from pipelines.bench.engines import duckdb_indices, one_quarter, privacy_stage, project_indices


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
    elif engine == "privacy":  # `raw` is a release directory: its stored indices
        result = privacy_stage(raw)
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    result["compute_s"] = round(time.perf_counter() - started, 3)
    result["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    Path(report).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


# next paid for the disk where the other did not. A throwaway process imports them all once (7-8 s) and lists the
# files it read (each module's compiled file, else its source; mapped shared libraries); later warm-ups read them.
WARM_IMPORTS = ("import json, os, sys\n"
                "import duckdb, polars, pipelines.cli, pipelines.definitions, assets.transforms.report_page\n"
                "from expectations.gx import prepare_gx\n"
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
        # a script file, not `python -c`: pyspark (which GX imports when it is installed) exits a process whose
        # __main__ has neither a file nor a spec, taking it for a doctest run
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "warm_imports.py"
            script.write_text(WARM_IMPORTS, encoding="utf-8")
            done = subprocess.run([sys.executable, str(script)], cwd=ROOT, check=True, capture_output=True,
                                  text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
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
    from pipelines.release import preload, run_release

    stamps["import_cli"] = time.time()
    preload()
    stamps["preload"] = time.time()
    done = run_release(raw, out, until=INDEX_ASSETS, engine=engine)
    stamps["run_release"] = time.time()
    print(f"indices for {len(done.quarters)} quarters in {out}")
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
