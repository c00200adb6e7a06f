"""Annual indices: each complete year's index is the sum of its four quarters; accounts distinct over the year."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.settings import Settings
from assets.transforms.annual import complete_years, index_year
from assets.transforms.indices import INDEX_COLUMNS
from expectations.adapter import submit_suite
from expectations.invariants import levels_add_up
from expectations.outcomes import predicate
from expectations.suites import INDICES

ANNUAL_SUITE = "annual_indices_meet_expectations"
ANNUAL_ADDS_UP = "annual_levels_add_up_to_national"
YEARS_COMPLETE = "only_complete_years_are_published"
CHECKS = {
    ANNUAL_SUITE: ("Great Expectations on the annual table: keys present and unique, labels known, values and "
                   "accounts not negative", True),
    ANNUAL_ADDS_UP: ("Province, city (with unallocated) and tier indices each add up to national; industries to "
                     "all", True),
    YEARS_COMPLETE: ("Exactly the years whose four quarters are all in the release are published", True),
}


# no preview: the table holds every cell before suppression, which only disclosed_indices may show
@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="3",
          check_specs=specs("annual_indices", CHECKS))
def annual_indices(context: dg.AssetExecutionContext, settings: Settings, quarterly_indices: dict,
                   account_usage: dict):
    """Per complete year, metric, entity and industry: the annual index and the year's distinct active accounts."""
    ref = settings.reference()
    years = complete_years(sorted(quarterly_indices))
    in_years = {q: quarterly_indices[q].collect() for q in quarterly_indices if q[:4] in years}
    tables = [index_year(year, in_years, account_usage, ref) for year in years]
    empty = quarterly_indices[sorted(quarterly_indices)[0]].clear().collect() if quarterly_indices else None
    table = pl.concat(tables) if tables else empty
    suite = submit_suite(ANNUAL_SUITE, INDICES, table.select(INDEX_COLUMNS))  # GX works while Dagster stores it
    yield dg.Output(table, metadata={"years": ", ".join(years) or "none"})
    outcomes = [suite.result(), levels_add_up(ANNUAL_ADDS_UP, table, "value"),
                predicate(YEARS_COMPLETE, set(table["period"].unique()) == set(years), years=", ".join(years))]
    yield from check_results(context, settings.state, "annual", "annual_indices", {None: outcomes}, {None: table.height})
