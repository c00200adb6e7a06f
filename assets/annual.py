"""Annual indices: each complete year's index is the sum of its four quarters; accounts distinct over the year."""
import dagster as dg
import polars as pl

from assets.transforms.annual import complete_years, sum_quarters_to_year, year_account_usage
from assets.transforms.cube import build_cube
from assets.transforms.indices import INDEX_COLUMNS
from expectations.adapter import predicate, submit_suite
from expectations.invariants import levels_add_up
from expectations.suites import INDICES
from pipelines.quality import check_results
from pipelines.resources import Settings

ANNUAL_SUITE = "annual_indices_meet_expectations"
ANNUAL_ADDS_UP = "annual_levels_add_up_to_national"
YEARS_COMPLETE = "only_complete_years_are_published"


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(ANNUAL_SUITE, asset="annual_indices", blocking=True),
                       dg.AssetCheckSpec(ANNUAL_ADDS_UP, asset="annual_indices", blocking=True),
                       dg.AssetCheckSpec(YEARS_COMPLETE, asset="annual_indices", blocking=True)])
def annual_indices(context: dg.AssetExecutionContext, settings: Settings, quarterly_indices: dict,
                   account_usage: dict):
    """Per complete year, metric, entity and industry: the annual index and the year's distinct active accounts."""
    ref = settings.reference()
    years = complete_years(sorted(quarterly_indices))
    tables = []
    for year in years:
        quarters = [f"{year}Q{i}" for i in (1, 2, 3, 4)]
        year_usage = year_account_usage([account_usage[q] for q in quarters])
        year_cube = build_cube(year_usage, ref).collect(engine="streaming")
        tables.append(sum_quarters_to_year([quarterly_indices[q].collect() for q in quarters], year_cube, year))
    empty = quarterly_indices[sorted(quarterly_indices)[0]].clear().collect() if quarterly_indices else None
    table = pl.concat(tables) if tables else empty
    suite = submit_suite(ANNUAL_SUITE, INDICES, table.select(INDEX_COLUMNS))  # GX works while Dagster stores it
    yield dg.Output(table, metadata={"years": ", ".join(years) or "none"})
    outcomes = [suite.result(), levels_add_up(ANNUAL_ADDS_UP, table, "value"),
                predicate(YEARS_COMPLETE, set(table["period"].unique()) == set(years), years=", ".join(years))]
    yield from check_results(context, settings.state, "annual", "annual_indices", {None: outcomes}, {None: table.height})
