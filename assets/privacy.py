"""Privacy: the index table as it may be published, with small or dominated cells suppressed."""
import dagster as dg
import polars as pl

from assets.transforms.privacy import combine_periods, disclose
from expectations.adapter import predicate, run_suite
from expectations.suites import PUBLISHED_INDICES
from pipelines.quality import check_results
from pipelines.resources import Settings

DISCLOSED_SUITE = "disclosed_indices_meet_expectations"
NATIONAL_NEVER_SUPPRESSED = "national_cells_are_never_suppressed"


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(DISCLOSED_SUITE, asset="disclosed_indices", blocking=True),
                       dg.AssetCheckSpec(NATIONAL_NEVER_SUPPRESSED, asset="disclosed_indices", blocking=True)])
def disclosed_indices(context: dg.AssetExecutionContext, settings: Settings, quarterly_indices: dict,
                      annual_indices: pl.LazyFrame):
    """Every published index cell (quarters and complete years), status `ok` or `suppressed` (value null)."""
    quarters = sorted(quarterly_indices)
    table = disclose(combine_periods([quarterly_indices[q].collect() for q in quarters], annual_indices.collect()))
    suppressed = table.filter(pl.col("status") == "suppressed").height
    yield dg.Output(table, metadata={"suppressed_cells": suppressed})
    national = table.filter(pl.col("geo_level") == "national")
    outcomes = [run_suite(DISCLOSED_SUITE, PUBLISHED_INDICES, table.filter(pl.col("status") == "ok")),
                predicate(NATIONAL_NEVER_SUPPRESSED, bool((national["status"] == "ok").all()),
                          suppressed_cells=suppressed)]
    yield from check_results(context, settings.state, "privacy", "disclosed_indices", {None: outcomes},
                             {None: table.height})
