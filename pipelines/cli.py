"""Command line: `python -m pipelines run|demo-data ...`; see --help."""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl

from assets.transforms.ingest import InputError
from pipelines.progress import QUARTER_RANGE_TAGS, Progress

# the CLI reports failures itself, in one line; the run log keeps the details in the release instance
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


# The CLI's runs leave their stdout and stderr on the terminal. Capturing them as compute logs started four processes
# per run (two `tail -F` copying the captured output back to the terminal, up to a second late, and two Python
# watchers); runs the UI launches keep the instance's capture.
NO_CAPTURE = {"compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                               "class": "NoOpComputeLogManager"}}


def release_instance(out: Path) -> dg.DagsterInstance:
    """The release's own Dagster instance (DIR/.dagster), so releases never mix runs, as the CLI runs in it."""
    from dagster._core.instance.ref import InstanceRef

    from pipelines.storage import write_instance_config

    home = write_instance_config(Path(out) / ".dagster").parent
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=NO_CAPTURE))


def _input_error(exc: BaseException) -> InputError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, InputError):
            return exc
        exc = getattr(exc, "user_exception", None) or exc.__cause__ or exc.__context__
    return None


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return [f"{e.asset_key.to_user_string()}: {e.check_name}" for e in result.get_asset_check_evaluations()
            if not e.passed]


def code_location():
    """pipelines.definitions (imported on first use: `demo-data` and `report` do without Dagster's assets)."""
    import pipelines.definitions

    return pipelines.definitions


def preload() -> None:
    """For a process that runs releases and then exits (`python -m pipelines run|rebase`, the benchmark, both of
    which started the Great Expectations validator before importing Dagster): import the code location with the
    cyclic garbage collector paused and freeze what it made. Those objects live as long as the process; scanning
    them costs time at every full collection, and more at exit. (Not done for in-process callers such as the
    tests, which go on after a run.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        code_location()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def materialize_uncaptured(assets, selection, instance: dg.DagsterInstance, tags: dict,
                           resources: dict) -> dg.ExecuteInProcessResult:
    """`dg.materialize` without its output capture. In-process execution keeps every step's output in the result
    (for `output_for_node`), so a release's run held every quarter's account usage until it ended: 2.2 GB peak
    instead of 1.8 at 20M rows. A release's outputs are in its IO manager's files; the result keeps the events."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.definitions.materialize import EPHEMERAL_JOB_NAME  # dg.materialize's: the UI shows the same
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags

    defs = dg.Definitions(jobs=[dg.define_asset_job(EPHEMERAL_JOB_NAME, selection=selection)], assets=assets,
                          resources=resources)
    job = defs.resolve_job_def(EPHEMERAL_JOB_NAME)
    run_tags = merge_run_tags(job_def=job, partition_key=None, tags=tags, asset_selection=None, instance=instance,
                              run_config=QUIET)
    return core_execute_in_process(run_config=QUIET, job=InMemoryJob(job.as_ephemeral_job({}, {})),
                                   instance=instance, output_capturing_enabled=False, raise_on_error=True,
                                   run_tags=run_tags, asset_selection=frozenset())


def materialise(out: Path, selection, settings: dict, tags: dict | None = None,
                instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """One in-process run of `selection` in the release's instance (opened here unless given: creating a new one
    costs about 0.8 s, so a caller with several runs passes one)."""
    location = code_location()
    instance = instance or release_instance(out)
    try:
        with Progress(instance, location.ALL_ASSETS, selection, tags) as progress:
            result = materialize_uncaptured(location.ALL_ASSETS, selection, instance, progress.tags,
                                            location.resources(str(out), **settings))
    except Exception as exc:  # a stage raised: report a whole-input error as its one line, re-raise the rest
        found = _input_error(exc)
        if found:
            raise found from None
        raise
    return result


def _stored(out_dir: Path, asset: str) -> pl.DataFrame | None:
    path = out_dir / "state" / "assets" / f"{asset}.parquet"
    return pl.read_parquet(path) if path.exists() else None


def _kept_settings(out_dir: Path) -> dict:
    """The settings a release was published with (manifest.json), reused when it is continued or rebased."""
    return json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))["settings"]


def _check_range(raw: str, inventory: pl.DataFrame, allow_empty: bool, base: str | None = None) -> list[str]:
    """The release's quarters; a whole-input error for an empty quarter inside them or a base without rows."""
    from assets.transforms.ingest import data_quarters

    quarters = data_quarters(inventory)
    with_rows = set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls())
    empty = [q for q in quarters if q not in with_rows]
    if empty and not allow_empty:
        raise InputError(f"{raw}: no rows in quarter {empty[0]} inside {quarters[0]}..{quarters[-1]} "
                         "(column 'usage_date'; --allow-empty-quarters publishes zeros)")
    if base and base not in with_rows:
        raise InputError(f"{raw}: no rows in the base quarter {base} (column 'usage_date')")
    return quarters


def _materialise_quarters(out_dir: Path, quarters: list[str], first: str, last: str, settings: dict,
                          instance: dg.DagsterInstance, until: tuple[str, ...] = ()) -> str:
    """One run over the quarters first..last: every stage after the inventory, or only those `until` needs."""
    instance.add_dynamic_partitions("quarter", [q for q in quarters if not instance.has_dynamic_partition("quarter", q)])
    stages = (dg.AssetSelection.assets(*until).upstream().required_multi_asset_neighbors() if until
              else dg.AssetSelection.all())
    result = materialise(out_dir, stages - dg.AssetSelection.assets("raw_inventory"), settings,
                         dict(zip(QUARTER_RANGE_TAGS, (first, last))), instance)
    failed = _failed_checks(result)
    if failed:
        raise InputError(f"{out_dir}: checks failed: {'; '.join(failed)}")
    return result.run_id


def run_release(raw: str, out: str, base: str | None = None, products: str | None = None,
                until: tuple[str, ...] = (), **options) -> dict:
    """Materialise every stage for `raw` into the release directory `out`; return a summary.

    A new `out` gets a fresh release. An existing one is continued: files it already ingested are skipped by
    hash, the base stays frozen, and only the quarters with new data (and what depends on them) are recomputed;
    changed published values are logged in revisions.parquet. `until` (asset names) stops after the stages those
    assets need: the benchmark times the indices alone this way (nothing is published then), and `--no-report`
    publishes without drawing the report (until the published release).
    """
    out_dir = Path(out)
    previous = _stored(out_dir, "raw_inventory")
    settings = {"raw_path": str(Path(raw).resolve()), "base_period": base or "", "products_path": products or "",
                **{k: v for k, v in options.items() if v is not None}}
    frozen = _stored(out_dir, "base_totals")
    if previous is not None and frozen is not None:
        kept = _kept_settings(out_dir)
        frozen_base = frozen["base_period"][0]
        if base and base != frozen_base:
            raise InputError(f"{out_dir}: the base is frozen at {frozen_base}; to change it run "
                             f"python -m pipelines rebase --to {base} --out {out_dir}")
        given = {k: v for k, v in settings.items() if v not in ("", None)}
        settings = {**kept, **given, "base_period": frozen_base, "revision_reason": "late data"}
    out_dir.mkdir(parents=True, exist_ok=True)
    instance = release_instance(out_dir)
    materialise(out_dir, ["raw_inventory"], settings, instance=instance)
    inventory = _stored(out_dir, "raw_inventory")
    fresh_release = previous is None or frozen is None
    quarters = _check_range(raw, inventory, bool(settings.get("allow_empty_quarters")), base if fresh_release else None)
    if fresh_release:
        changed = quarters
    else:
        known = set(previous.filter(pl.col("status") == "ingested")["sha256"])
        fresh = inventory.filter((pl.col("status") == "ingested") & ~pl.col("sha256").is_in(list(known)))
        # a file overwritten in place takes its rows out of its quarters: those are recomputed too
        gone = inventory.filter(pl.col("status") == "replaced").join(
            previous.filter(pl.col("status") == "ingested"), on=["path", "sha256"], how="semi")
        changed = sorted(set(fresh["quarters"].explode().drop_nulls()) | set(gone["quarters"].explode().drop_nulls()))
        if not changed:
            return {"release": str(out_dir), "quarters": quarters, "recomputed": [], "run_id": None}
        if settings["base_period"] in changed:
            raise InputError(f"{raw}: new data for the base quarter {settings['base_period']}; the base is frozen, "
                             f"so recompute every period with: python -m pipelines rebase --to "
                             f"{settings['base_period']} --out {out_dir}")
    run_id = _materialise_quarters(out_dir, quarters, changed[0], changed[-1], settings, instance, until)
    return {"release": str(out_dir), "quarters": quarters, "recomputed": changed, "run_id": run_id}


def rebase_release(out: str, to: str, until: tuple[str, ...] = ()) -> dict:
    """Recompute every period of an existing release against a new base quarter; changes go to revisions."""
    out_dir = Path(out)
    inventory = _stored(out_dir, "raw_inventory")
    if inventory is None or not (out_dir / "manifest.json").exists():
        raise InputError(f"{out_dir}: no release to rebase (run python -m pipelines run first)")
    kept = _kept_settings(out_dir)
    quarters = _check_range(str(out_dir), inventory, bool(kept.get("allow_empty_quarters")), to)
    settings = {**kept, "base_period": to, "revision_reason": "rebase"}
    run_id = _materialise_quarters(out_dir, quarters, quarters[0], quarters[-1], settings, release_instance(out_dir),
                                   until)
    return {"release": str(out_dir), "quarters": quarters, "recomputed": quarters, "run_id": run_id}


def parser() -> argparse.ArgumentParser:
    from pipelines.bench import add_arguments as bench_arguments, positive_int

    top = argparse.ArgumentParser(prog="python -m pipelines",
                                  description="Cloud-usage and AI indices (Tencent Research Institute method).")
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="compute a release from raw usage",
                         description="Ingest raw usage, validate it, and publish indices into a new release "
                                     "directory (a pure function of the input).")
    run.add_argument("--raw", required=True, help="raw usage: a Parquet or CSV file, or a directory of them "
                                                  "(hive-partitioned or not)")
    run.add_argument("--out", required=True, help="release directory to create (indices.parquet, quarantine.parquet, "
                                                  "quality.json, manifest.json; Dagster instance in DIR/.dagster)")
    run.add_argument("--base", help="base quarter such as 2020Q1 (default: the earliest quarter in the data)")
    run.add_argument("--products", help="your own product catalogue CSV (product, metric[, name]); default: "
                                        "seeds/products.csv")
    run.add_argument("--tiers", choices=["five", "six"], default=None,
                     help="tier scheme: five (新一线 folded into 二线, as the source; default) or six (CBN)")
    run.add_argument("--allow-empty-quarters", action="store_true", default=None,
                     help="publish zeros for a quarter without rows inside the range instead of stopping")
    run.add_argument("--engine", choices=["polars", "spark"], default=None,
                     help="row-level engine: polars (default; streaming, this machine) or spark (PySpark; the "
                          "cluster from spark.master / spark-defaults.conf, default local[*])")
    rebase = sub.add_parser("rebase", help="recompute every period of a release against a new base quarter",
                            description="Recompute every period of an existing release with a new base quarter; "
                                        "every changed value is logged in DIR/revisions.parquet.")
    rebase.add_argument("--to", required=True, help="the new base quarter, such as 2020Q2")
    rebase.add_argument("--out", required=True, help="the release directory to rebase")
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
    bench_arguments(sub.add_parser("bench", help="time the computation against DuckDB and Dagster's overhead",
                                   description="Generate (or reuse) N raw rows, then time the project's computation, "
                                               "DuckDB on the same work, and the Dagster run, each in its own "
                                               "process; check they agree; write bench/results.json."))
    report = sub.add_parser("report", help="(re)write a release's report from its published Parquet",
                            description="Regenerate DIR/report/ (index.html and PNGs) from DIR/indices.parquet and "
                                        "DIR/derived.parquet only; needs a CJK font (e.g. fonts-noto-cjk).")
    report.add_argument("--out", required=True, help="release directory (holds indices.parquet, derived.parquet)")
    return top


def _without_report(args: argparse.Namespace) -> tuple[str, ...]:
    """`until` for run and rebase: every stage, or (--no-report) every stage the published release needs."""
    return ("published_release",) if args.no_report else ()


def main(argv: list[str] | None = None, exits_after: bool = False) -> int:
    """The CLI; `exits_after` (python -m pipelines) says the process ends with the command, so it may `preload`,
    and freeze what the command made before the interpreter's last collection."""
    args = parser().parse_args(argv)
    started = time.perf_counter()
    if exits_after and args.command in ("run", "rebase"):
        preload()
    try:
        if args.command == "run":
            summary = run_release(args.raw, args.out, args.base, args.products, tier_scheme=args.tiers,
                                  allow_empty_quarters=args.allow_empty_quarters, engine=args.engine,
                                  until=_without_report(args))
            recomputed = summary["recomputed"]
            print(f"release {summary['release']}: {len(summary['quarters'])} quarters "
                  f"({summary['quarters'][0]}..{summary['quarters'][-1]}), "
                  f"{'recomputed ' + recomputed[0] + '..' + recomputed[-1] if recomputed else 'nothing new to ingest'}"
                  f" in {time.perf_counter() - started:.1f}s")
        elif args.command == "rebase":
            summary = rebase_release(args.out, args.to, _without_report(args))
            print(f"release {summary['release']}: rebased to {args.to}, {len(summary['quarters'])} quarters "
                  f"recomputed in {time.perf_counter() - started:.1f}s")
        if args.command in ("run", "rebase") and args.no_report and summary["recomputed"]:
            shutil.rmtree(Path(args.out) / "report", ignore_errors=True)  # it shows the figures before this run
        if args.command == "bench":
            from pipelines.bench import run_from_args

            return run_from_args(args)
        elif args.command == "demo-data":
            from pipelines.demo_data import write_demo_raw

            summary = write_demo_raw(args.out, rows=args.rows, seed=args.seed)
            print(f"raw {args.out}: {summary.get('rows', args.rows)} rows in {time.perf_counter() - started:.1f}s")
        elif args.command == "report":
            from assets.transforms.report import MissingFontError
            from pipelines.report import write_report

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
