"""Command line: `python -m pipelines run|demo-data ...`; see --help."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl

from assets.transforms.ingest import InputError

QUARTER_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def release_instance(out: Path) -> dg.DagsterInstance:
    """The release's own Dagster instance (DIR/.dagster), so releases never mix runs."""
    home = out / ".dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return dg.DagsterInstance.from_config(str(home))


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


def materialise(out: Path, selection, settings: dict, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    from pipelines.definitions import ALL_ASSETS, resources

    instance = release_instance(out)
    try:
        result = dg.materialize(ALL_ASSETS, selection=selection, instance=instance, tags=tags or {},
                                resources=resources(str(out), **settings), run_config=QUIET, raise_on_error=True)
    except Exception as exc:  # a stage raised: report a whole-input error as its one line, re-raise the rest
        found = _input_error(exc)
        if found:
            raise found from None
        raise
    return result


def run_release(raw: str, out: str, base: str | None = None, products: str | None = None, **options) -> dict:
    """Materialise every stage for `raw` into the release directory `out`; return a summary."""
    from assets.transforms.ingest import data_quarters

    out_dir = Path(out)
    if (out_dir / "state").exists():
        raise InputError(f"{out_dir}: already holds a release; publish into a new directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"raw_path": str(Path(raw).resolve()), "base_period": base or "", "products_path": products or "",
                **{k: v for k, v in options.items() if v is not None}}
    materialise(out_dir, ["raw_inventory"], settings)
    inventory = pl.read_parquet(out_dir / "state" / "assets" / "raw_inventory.parquet")
    quarters = data_quarters(inventory)
    with_rows = set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls())
    empty = [q for q in quarters if q not in with_rows]
    if empty and not options.get("allow_empty_quarters"):
        raise InputError(f"{raw}: no rows in quarter {empty[0]} inside {quarters[0]}..{quarters[-1]} "
                         "(column 'usage_date'; --allow-empty-quarters publishes zeros)")
    if base and base not in with_rows:
        raise InputError(f"{raw}: no rows in the base quarter {base} (column 'usage_date')")
    instance = release_instance(out_dir)
    instance.add_dynamic_partitions("quarter", [q for q in quarters if not instance.has_dynamic_partition("quarter", q)])
    result = materialise(out_dir, dg.AssetSelection.all() - dg.AssetSelection.assets("raw_inventory"), settings,
                         dict(zip(QUARTER_RANGE_TAGS, (quarters[0], quarters[-1]))))
    failed = _failed_checks(result)
    if failed:
        raise InputError(f"{out_dir}: checks failed: {'; '.join(failed)}")
    return {"release": str(out_dir), "quarters": quarters, "run_id": result.run_id}


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def parser() -> argparse.ArgumentParser:
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
    demo = sub.add_parser("demo-data", help="write the default (calibrated) raw dataset",
                          description="Write deterministic raw usage for 2020Q1-2021Q1 as Parquet, hive-partitioned "
                                      "by quarter, calibrated to reproduce the source's published figures.")
    demo.add_argument("--out", required=True, help="directory to write (quarter=2020Q1/part-*.parquet ...)")
    demo.add_argument("--rows", type=_positive, default=2_000_000, help="number of rows (default 2,000,000)")
    demo.add_argument("--seed", type=int, default=2021, help="random seed (default 2021)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.command == "run":
            summary = run_release(args.raw, args.out, args.base, args.products, tier_scheme=args.tiers,
                                  allow_empty_quarters=args.allow_empty_quarters)
            print(f"release {summary['release']}: {len(summary['quarters'])} quarters "
                  f"({summary['quarters'][0]}..{summary['quarters'][-1]}) in {time.perf_counter() - started:.1f}s")
        elif args.command == "demo-data":
            from pipelines.demo_data import write_demo_raw

            summary = write_demo_raw(args.out, rows=args.rows, seed=args.seed)
            print(f"raw {args.out}: {summary.get('rows', args.rows)} rows in {time.perf_counter() - started:.1f}s")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
