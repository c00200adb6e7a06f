"""Base totals: the national, all-industry consumption of the base quarter, per metric (the index denominator)."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.settings import Settings
from assets.transforms.base import base_totals_of, check_metric_quarters
from assets.transforms.ingest.inventory import data_quarters
from expectations.adapter import submit_suite
from expectations.outcomes import predicate
from expectations.suites import BASE_TOTALS

BASE_SUITE = "base_totals_meet_expectations"
BASE_IN_RANGE = "base_period_is_a_data_quarter"
CHECKS = {
    BASE_SUITE: ("Great Expectations: one row per metric, each with a positive base amount", True),
    BASE_IN_RANGE: ("The base quarter is one of the release's quarters", True),
}


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="2", metadata={"preview": True},
          check_specs=specs("base_totals", CHECKS))
def base_totals(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame,
                usage_cube: dict):
    """One row per metric: the base quarter and its national consumption in yuan (index 100)."""
    inventory = raw_inventory.collect()
    quarters = data_quarters(inventory)
    base = settings.release.base(inventory)  # a first publication without a base: the earliest quarter
    cubes = {q: usage_cube[q].collect() for q in quarters}
    check_metric_quarters(cubes, settings.release.settings.allow_empty_quarters, settings.release.delivery)
    totals = base_totals_of(cubes, base)
    suite = submit_suite(BASE_SUITE, BASE_TOTALS, totals)  # GX works while Dagster stores the totals
    yield dg.Output(totals, metadata={f"base_{m}": float(a) for m, a in zip(totals["metric"], totals["base_amount"])}
                    | {"base_period": base})
    outcomes = [suite.result(),
                predicate(BASE_IN_RANGE, base in cubes, base_period=base, first=quarters[0], last=quarters[-1])]
    yield from check_results(context, settings.state, "base", "base_totals", {None: outcomes}, {None: totals.height})
