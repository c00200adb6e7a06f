"""`python -m pipelines bench` and `python -m pipelines.bench [bench|worker|dagster-worker]`: arguments."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.bench.runner import ENGINES, bench
from pipelines.bench.workers import dagster_worker, worker


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
                        "in Dagster), release (the whole `pipelines run`), privacy (the privacy stage alone, on the "
                        "indices the release before it in the round stored), spark, dagster-spark (default "
                        f"{','.join(ENGINES)}: no engine compared with another follows DuckDB's run)")
    p.add_argument("--repeat", type=positive_int, default=3, metavar="K",
                   help="rounds of every engine in turn; each engine's figures are its median run (default 3)")
    p.add_argument("--sparse", action="store_true",
                   help="the sparse variant of the generator (demo-data --sparse: many small cells, dominant and "
                        "shared customers), so that privacy suppresses; add the `privacy` engine after `release` "
                        "to time the privacy stage alone")
    p.add_argument("--history", type=int, default=0, metavar="K",
                   help="also time materialising one new quarter with 1, 2, 4 ... K quarters of history")
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    p.add_argument("--results", type=Path, default=None, help="where to write results (default bench/results.json)")
    p.add_argument("--data-dir", type=Path, default=None, help="where generated data lives (default bench/data)")
    p.add_argument("--keep", action="store_true", help="keep the engines' outputs (scratch directory)")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    bench(args.rows, args.seed, tuple(e.strip() for e in args.engines.split(",") if e.strip()), args.keep,
          args.results, args.history, args.threads, args.data_dir, args.repeat, args.sparse)
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

