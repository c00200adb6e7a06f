"""Base totals: the national, all-industry consumption of the base quarter, per metric (the index denominator)."""
import dagster as dg
import polars as pl

from assets.transforms.base import compute_base_totals, metrics_present
from expectations.adapter import predicate, submit_suite
from expectations.suites import BASE_TOTALS
from pipelines.quality import check_results
from pipelines.resources import Settings

BASE_SUITE = "base_totals_meet_expectations"
BASE_IN_RANGE = "base_period_is_a_data_quarter"


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(BASE_SUITE, asset="base_totals", blocking=True),
                       dg.AssetCheckSpec(BASE_IN_RANGE, asset="base_totals", blocking=True)])
def base_totals(context: dg.AssetExecutionContext, settings: Settings, usage_cube: dict):
    """One row per metric: the base quarter and its national consumption in yuan (index 100)."""
    quarters = sorted(usage_cube)
    base = settings.base_period or quarters[0]
    cubes = {q: usage_cube[q].collect() for q in quarters}
    totals = compute_base_totals(cubes.get(base, cubes[quarters[0]].clear()), base, metrics_present(list(cubes.values())))
    suite = submit_suite(BASE_SUITE, BASE_TOTALS, totals)  # GX works while Dagster stores the totals
    yield dg.Output(totals, metadata={f"base_{m}": float(a) for m, a in zip(totals["metric"], totals["base_amount"])}
                    | {"base_period": base})
    outcomes = [suite.result(),
                predicate(BASE_IN_RANGE, base in cubes, base_period=base, first=quarters[0], last=quarters[-1])]
    yield from check_results(context, settings.state, "base", "base_totals", {None: outcomes}, {None: totals.height})
