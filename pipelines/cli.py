"""Command line: `python -m pipelines run|rebase|demo-data|report|bench ...`; see --help.

`run` and `rebase` launch the release's jobs (`pipelines.release`), the same the Dagster UI runs; every rule of a
release is applied inside them.
"""
from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import time
from pathlib import Path

from assets.transforms.errors import InputError


class OneLineParser(argparse.ArgumentParser):
    """argparse with a malformed command reported in one line and exit status 2 (`error` is the method argparse
    documents for this)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def quarter(text: str) -> str:
    """An argparse type: a quarter label such as 2020Q1 (2020q1 accepted)."""
    found = re.fullmatch(r"(\d{4})[Qq]([1-4])", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a quarter such as 2020Q1")
    return f"{found[1]}Q{found[2]}"


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def percent(text: str) -> float:
    """An argparse type: a percentage above 0 and at most 100."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage in (0, 100]")
    return value


def parser() -> argparse.ArgumentParser:
    from pipelines.bench.cli import add_arguments as bench_arguments, positive_int

    top = OneLineParser(prog="python -m pipelines",
                        description="Cloud-usage and AI indices (Tencent Research Institute method).")
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="compute a release from raw usage, or continue one with new files",
                         description="Ingest raw usage, validate it, and publish indices. Into a new directory, a "
                                     "release that is a pure function of its input, with the settings given here. "
                                     "Into an existing release, continue it: files it already holds are skipped (by "
                                     "content hash), its settings and base stay as they are, only the quarters with "
                                     "new data are recomputed, and every changed published value is logged in "
                                     "DIR/revisions.parquet.")
    run.add_argument("--raw", help="raw usage: a Parquet or CSV file, or a directory of them (hive-partitioned or "
                                   "not). Required for a new release; continuing one, the default is the release's "
                                   "own raw path (its landing folder)")
    run.add_argument("--out", required=True, help="release directory: a new one to create, or an existing release to "
                                                  "continue (indices.parquet, derived.parquet, quarantine.parquet, "
                                                  "revisions.parquet, quality.json, manifest.json, report/; its "
                                                  "Dagster instance in DIR/.dagster)")
    run.add_argument("--base", type=quarter, help="base quarter such as 2020Q1 (default: the earliest quarter in the "
                                                  "data); a release keeps it: change it with `rebase`")
    run.add_argument("--products", help="your own product catalogue CSV (product, metric[, name]); default: "
                                        "seeds/products.csv")
    run.add_argument("--tiers", choices=["five", "six"], default=None,
                     help="tier scheme: five (新一线 folded into 二线, as the source; default) or six (CBN)")
    run.add_argument("--allow-empty-quarters", action="store_true", default=None,
                     help="publish zeros for a quarter without rows inside the range instead of stopping")
    run.add_argument("--engine", choices=["polars", "spark"], default=None,
                     help="row-level engine: polars (default; streaming, this machine) or spark (PySpark; the "
                          "cluster from spark.master / spark-defaults.conf, default local[*])")
    run.add_argument("--max-quarantine-share", type=percent, default=None, metavar="PERCENT",
                     help="stop before publishing when more than PERCENT of the rows delivered are quarantined "
                          "(default 5; the release keeps the value given)")
    run.add_argument("--privacy-k", type=positive_int, default=None,
                     help="suppress a cell (all but national x all) with usage and fewer than K contributors "
                          "(default 5)")
    run.add_argument("--privacy-p", type=percent, default=None, metavar="PERCENT",
                     help="p%% rule: suppress a cell whose total minus its two largest contributions is below "
                          "PERCENT of the largest (default 10)")
    run.add_argument("--privacy-protection-percent", type=percent, default=None, metavar="PERCENT",
                     help="every sensitive cell keeps an interval reaching PERCENT below and above its value "
                          "against an attacker solving every published equation (default: p)")
    run.add_argument("--growth-rank-min-reference", type=non_negative_float, default=None, metavar="POINTS",
                     help="growth ranks leave out cells whose reference value is below POINTS index points, so tiny "
                          "bases do not top the list (default 0.001; the release keeps the value given)")
    rebase = sub.add_parser("rebase", help="recompute every period of a release against a new base quarter",
                            description="Recompute every period of an existing release with a new base quarter; "
                                        "every changed value is logged in DIR/revisions.parquet.")
    rebase.add_argument("--to", required=True, type=quarter, help="the new base quarter, such as 2020Q2")
    rebase.add_argument("--out", required=True, help="the release directory to rebase")
    rebase.add_argument("--raw", help="new raw usage to take in with the rebase (for instance late data for the base "
                                      "quarter); default: the release's files only")
    for command in (run, rebase):
        command.add_argument("--no-report", action="store_true",
                             help="publish the Parquet files, quality.json and manifest.json without drawing "
                                  "DIR/report/ (no CJK font needed; an earlier report, now out of date, is removed); "
                                  "draw it later with `python -m pipelines report --out DIR`")
    demo = sub.add_parser("demo-data", help="write the default (calibrated) raw dataset",
                          description="Write deterministic raw usage for 2020Q1-2021Q1 as Parquet, hive-partitioned "
                                      "by quarter, calibrated to reproduce the source's published figures.")
    demo.add_argument("--out", required=True, help="directory to write (quarter=2020Q1/part-*.parquet ...)")
    demo.add_argument("--rows", type=positive_int, default=2_000_000, help="number of rows (default 2,000,000)")
    demo.add_argument("--seed", type=int, default=2021, help="random seed (default 2021)")
    demo.add_argument("--sparse", action="store_true",
                      help="the sparse variant: many small cells, dominant customers, accounts sharing a customer "
                           "(a customer_id column), so that privacy suppresses many cells; not calibrated for the "
                           "figures")
    bench_arguments(sub.add_parser("bench", help="time the computation against DuckDB and Dagster's overhead",
                                   description="Generate (or reuse) N raw rows, then time the project's computation, "
                                               "DuckDB on the same work, and the Dagster run, each in its own "
                                               "process; check they agree; write bench/results.json."))
    report = sub.add_parser("report", help="(re)write a release's report from its published Parquet",
                            description="Regenerate DIR/report/ (index.html and PNGs) from DIR/indices.parquet and "
                                        "DIR/derived.parquet only; needs a CJK font (e.g. fonts-noto-cjk).")
    report.add_argument("--out", required=True, help="release directory (holds indices.parquet, derived.parquet)")
    export = sub.add_parser("export", help="write a release's tables as CSV or an Excel workbook",
                            description="Write indices, derived measures and revisions of a published release as "
                                        "CSV (UTF-8 with a byte-order mark, so Excel shows the Chinese names) or one "
                                        "Excel workbook. The quarantine is not exported: it holds account ids.")
    export.add_argument("--out", required=True, help="release directory")
    export.add_argument("--format", choices=["csv", "xlsx"], default="csv", help="csv (default) or xlsx")
    export.add_argument("--to", help="folder to write into (default DIR/export/)")
    return top


def _skipped(args: argparse.Namespace) -> tuple[str, ...]:
    """Assets left out of run and rebase: the report with --no-report."""
    return ("quarterly_report",) if args.no_report else ()


def main(argv: list[str] | None = None, exits_after: bool = False) -> int:
    """The CLI; `exits_after` (python -m pipelines) says the process ends with the command, so it may `preload`,
    and freeze what the command made before the interpreter's last collection."""
    args = parser().parse_args(argv)
    started = time.perf_counter()
    if exits_after and args.command in ("run", "rebase"):
        from pipelines.release import preload

        preload()
    try:
        if args.command in ("run", "rebase"):
            from pipelines.release import rebase_release, run_release

            if args.command == "run":
                if args.raw is None and not (Path(args.out) / "state" / "settings.json").exists():
                    raise InputError(f"{args.out}: not a release yet: name its raw input with --raw PATH")
                done = run_release(args.raw, args.out, skip=_skipped(args), base_period=args.base,
                                   products_path=args.products, tier_scheme=args.tiers,
                                   allow_empty_quarters=args.allow_empty_quarters, engine=args.engine,
                                   privacy_k=args.privacy_k, privacy_p=args.privacy_p,
                                   privacy_protection_percent=args.privacy_protection_percent,
                                   max_quarantine_share=args.max_quarantine_share,
                                   growth_rank_min_reference=args.growth_rank_min_reference)
            else:
                done = rebase_release(args.out, args.to, args.raw, skip=_skipped(args))
            what = (f"recomputed {done.recomputed[0]}..{done.recomputed[-1]}" if done.recomputed
                    else "nothing new to ingest")
            print(f"release {done.release}: {len(done.quarters)} quarters ({done.quarters[0]}..{done.quarters[-1]}), "
                  f"{'rebased to ' + args.to + ', ' if args.command == 'rebase' else ''}{what} in "
                  f"{time.perf_counter() - started:.1f}s")
            if done.recomputed:
                from assets.transforms.publish import summary_lines

                manifest = json.loads((done.release / "manifest.json").read_text(encoding="utf-8"))
                print("\n".join(f"  {line}" for line in summary_lines(manifest["summary"])))
        elif args.command == "bench":
            from pipelines.bench.cli import run_from_args

            return run_from_args(args)
        elif args.command == "demo-data":
            from pipelines.demo.data import write_demo_raw

            summary = write_demo_raw(args.out, rows=args.rows, seed=args.seed, sparse=args.sparse)
            print(f"raw {args.out}: {summary.get('rows', args.rows)} rows in {time.perf_counter() - started:.1f}s")
        elif args.command == "export":
            from assets.transforms.export import export_release

            written = export_release(args.out, args.format, args.to)
            print(f"export: {', '.join(str(p) for p in written)}")
        elif args.command == "report":
            from assets.transforms.report import MissingFontError
            from assets.transforms.report_page import write_report

            try:
                charts = write_report(args.out)
            except (FileNotFoundError, MissingFontError) as exc:
                raise InputError(str(exc)) from None
            print(f"report {Path(args.out) / 'report' / 'index.html'}: {len(charts)} charts")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if exits_after:
            gc.freeze()  # the interpreter's last collection need not scan what the run made (0.15-0.4 s)
    return 0
