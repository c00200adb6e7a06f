"""Privacy: the index table as it may be published, with small or dominated cells suppressed."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.settings import Settings
from assets.transforms.cube import geo_membership
from assets.transforms.privacy import blank, combine_periods, exposed_cells, suppression_flags
from expectations.adapter import submit_suite
from expectations.outcomes import predicate
from expectations.suites import PUBLISHED_INDICES

DISCLOSED_SUITE = "disclosed_indices_meet_expectations"
NATIONAL_NEVER_SUPPRESSED = "national_cells_are_never_suppressed"
PRIMARY_SUPPRESSED = "small_or_dominated_cells_are_suppressed"
NO_VALUE = "suppressed_cells_have_no_value"
NOT_RECOVERABLE = "no_suppressed_cell_is_recoverable_by_subtraction"
CHECKS = {
    DISCLOSED_SUITE: ("Great Expectations on the published cells: keys present and unique, labels known, values "
                      "and accounts not negative", True),
    NATIONAL_NEVER_SUPPRESSED: ("No national cell is suppressed", True),
    PRIMARY_SUPPRESSED: ("Every cell with usage and too few accounts, or one dominant account, is suppressed", True),
    NO_VALUE: ("A suppressed cell publishes neither value nor accounts", True),
    NOT_RECOVERABLE: ("No published equation (geo, industry, quarters to year) holds exactly one suppressed cell",
                      True),
}


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="2", metadata={"preview": True},
          check_specs=specs("disclosed_indices", CHECKS))
def disclosed_indices(context: dg.AssetExecutionContext, settings: Settings, quarterly_indices: dict,
                      annual_indices: pl.LazyFrame):
    """Every published index cell (quarters and complete years), status `ok` or `suppressed` (value null).

    Primary suppression (fewer than k active accounts, or one account above p% of the cell) and complementary
    suppression across the geo, industry and time hierarchies (CONTRACT.md "Privacy")."""
    quarters = sorted(quarterly_indices)
    membership = geo_membership(settings.reference())
    k, dominance = settings.release.settings.privacy_k, settings.release.settings.privacy_dominance_percent / 100.0
    combined = combine_periods([quarterly_indices[q].collect() for q in quarters], annual_indices.collect())
    flags = suppression_flags(combined, k, dominance, membership)
    table = blank(flags)
    suppressed = table.filter(pl.col("status") == "suppressed").height
    n_primary = int(flags["primary"].sum())
    # GX works while Dagster stores the table
    suite = submit_suite(DISCLOSED_SUITE, PUBLISHED_INDICES, table.filter(pl.col("status") == "ok"))
    yield dg.Output(table, metadata={"suppressed_cells": suppressed, "primary_suppressions": n_primary,
                                     "complementary_suppressions": suppressed - n_primary,
                                     "k_accounts": k, "dominance_percent": settings.release.settings.privacy_dominance_percent})
    national = table.filter(pl.col("geo_level") == "national")
    hidden = table.filter(pl.col("status") == "suppressed")
    exposed = exposed_cells(table, membership)
    # every primary cell is hidden in the table as blanked for publication
    must_hide = flags.filter(pl.col("primary")).select("metric", "period", "geo_level", "geo_code", "industry")
    missed = must_hide.join(hidden, on=must_hide.columns, how="anti").height
    outcomes = [suite.result(),
                predicate(NATIONAL_NEVER_SUPPRESSED, bool((national["status"] == "ok").all()),
                          suppressed_cells=suppressed),
                predicate(PRIMARY_SUPPRESSED, missed == 0, primary_cells=must_hide.height, not_suppressed=missed,
                          k_accounts=k, dominance_percent=settings.release.settings.privacy_dominance_percent),
                predicate(NO_VALUE, hidden.filter(pl.col("value").is_not_null() | pl.col("accounts").is_not_null())
                          .height == 0, suppressed_cells=suppressed),
                predicate(NOT_RECOVERABLE, exposed.height == 0, exposed_cells=exposed.height,
                          first=_describe(exposed))]
    yield from check_results(context, settings.state, "privacy", "disclosed_indices", {None: outcomes},
                             {None: table.height})


def _describe(exposed: pl.DataFrame) -> str:
    if not exposed.height:
        return "none"
    row = exposed.row(0, named=True)
    return f"{row['metric']} {row['period']} {row['geo_level']} {row['geo_code']} {row['industry']} ({row['kind']})"
