"""Usage cube: consumption and exact distinct accounts per quarter x metric x geo entity x industry."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.io import INPUTS, stored_stamps
from assets.support.partitions import quarterly_partitions
from assets.support.settings import Settings
from assets.transforms.cube import cube_quarter
from expectations.adapter import submit_suite_by_partition
from expectations.invariants import levels_add_up
from expectations.outcomes import predicate
from expectations.suites import USAGE_CUBE

CUBE_SUITE = "usage_cube_meets_expectations"
CUBE_ADDS_UP = "cube_levels_add_up_to_national"
CUBE_MATCHES_ACCOUNTS = "cube_national_equals_account_usage"
CHECKS = {
    CUBE_SUITE: ("Great Expectations on the whole cube: keys present and unique, levels known, amount and "
                 "accounts not negative", True),
    CUBE_ADDS_UP: ("Province, city (with unallocated) and tier amounts each add up to national; industries to all",
                   True),
    CUBE_MATCHES_ACCOUNTS: ("The national amount equals the sum of the quarter's account-level usage", True),
}


@dg.asset(partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"polars", "parquet", "great_expectations"}, code_version="3",
          check_specs=specs("usage_cube", CHECKS))
def usage_cube(context: dg.AssetExecutionContext, settings: Settings, account_usage: dict):
    """Per quarter, metric, geo entity (every level) and industry (and all): amount in yuan and active accounts."""
    ref, quarters = settings.reference(), list(context.partition_keys)
    cubes, outcomes, rows = {}, {}, {}
    if settings.release.settings.engine == "spark":  # Spark reads the stored account usage, all quarters at once
        from assets.transforms import spark_cube

        stored = settings.state / "assets" / "account_usage"
        cubes = spark_cube.build_cubes(spark_cube.session(), {q: [stored / f"{q}.parquet"] for q in quarters}, ref)
    for quarter in quarters:
        cube = cubes[quarter] if quarter in cubes else cube_quarter(account_usage[quarter], ref)
        total = account_usage[quarter].select(pl.col("amount").sum().cast(pl.Float64)).collect().item() or 0.0
        national = cube.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))["amount"].sum()
        cubes[quarter], rows[quarter] = cube, cube.height
        outcomes[quarter] = [
            levels_add_up(CUBE_ADDS_UP, cube, "amount"),
            predicate(CUBE_MATCHES_ACCOUNTS, abs(national - total) <= 1e-9 * max(1.0, abs(total)),
                      national=national, account_usage=total),
        ]
    suite = submit_suite_by_partition(CUBE_SUITE, USAGE_CUBE, cubes)  # GX works while Dagster stores the cubes
    yield dg.Output(cubes, metadata={"cells": sum(rows.values()), INPUTS: dg.MetadataValue.json(
        stored_stamps(settings.directory, "account_usage", quarters))})  # computed from what account usage was
    for quarter, outcome in suite.result().items():
        outcomes[quarter].insert(0, outcome)
    yield from check_results(context, settings.state, "cube", "usage_cube", outcomes, rows)
