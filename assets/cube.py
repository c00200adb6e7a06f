"""Usage cube: consumption and exact distinct accounts per quarter x metric x geo entity x industry."""
import dagster as dg
import polars as pl

from assets.transforms.cube import build_cube
from expectations.adapter import predicate, submit_suite_by_partition
from expectations.suites import USAGE_CUBE
from expectations.invariants import levels_add_up
from pipelines.partitions import quarterly_partitions
from pipelines.quality import check_results
from pipelines.resources import Settings

CUBE_SUITE = "usage_cube_meets_expectations"
CUBE_ADDS_UP = "cube_levels_add_up_to_national"
CUBE_MATCHES_ACCOUNTS = "cube_national_equals_account_usage"


@dg.asset(partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"polars", "parquet", "great_expectations"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(CUBE_SUITE, asset="usage_cube", blocking=True),
                       dg.AssetCheckSpec(CUBE_ADDS_UP, asset="usage_cube", blocking=True),
                       dg.AssetCheckSpec(CUBE_MATCHES_ACCOUNTS, asset="usage_cube", blocking=True)])
def usage_cube(context: dg.AssetExecutionContext, settings: Settings, account_usage: dict):
    """Per quarter, metric, geo entity (every level) and industry (and all): amount in yuan and active accounts."""
    ref = settings.reference()
    cubes, outcomes, rows = {}, {}, {}
    if settings.engine == "spark":  # Spark reads the account-usage Parquet the IO manager stored, all quarters at once
        from assets.transforms import spark_cube

        stored = settings.state / "assets" / "account_usage"
        spark_cubes = spark_cube.build_cubes(spark_cube.session(), {q: [stored / f"{q}.parquet"]
                                                                     for q in context.partition_keys}, ref)
    for quarter in context.partition_keys:
        if settings.engine == "spark":
            cube = spark_cubes[quarter]
        else:
            cube = build_cube(account_usage[quarter], ref).collect(engine="streaming")
        total = account_usage[quarter].select(pl.col("amount").sum().cast(pl.Float64)).collect().item() or 0.0
        national = cube.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))["amount"].sum()
        cubes[quarter], rows[quarter] = cube, cube.height
        outcomes[quarter] = [
            levels_add_up(CUBE_ADDS_UP, cube, "amount"),
            predicate(CUBE_MATCHES_ACCOUNTS, abs(national - total) <= 1e-9 * max(1.0, abs(total)),
                      national=national, account_usage=total),
        ]
    suite = submit_suite_by_partition(CUBE_SUITE, USAGE_CUBE, cubes)  # GX works while Dagster stores the cubes
    yield dg.Output(cubes, metadata={"cells": sum(rows.values())})
    for quarter, outcome in suite.result().items():
        outcomes[quarter].insert(0, outcome)
    yield from check_results(context, settings.state, "cube", "usage_cube", outcomes, rows)
