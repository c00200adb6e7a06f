"""Quarterly indices: 100 x consumption / base national total, for every entity, level and industry."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.io import INPUTS, stored_stamps
from assets.support.partitions import quarterly_partitions
from assets.support.settings import Settings
from assets.transforms.cube import PRIVACY_COLUMNS
from assets.transforms.indices import index_grid, normalise_to_base_period
from expectations.adapter import submit_suite_by_partition
from expectations.invariants import levels_add_up
from expectations.outcomes import predicate
from expectations.suites import INDICES

INDICES_SUITE = "quarterly_indices_meet_expectations"
ADDS_UP = "index_levels_add_up_to_national"
BASE_IS_100 = "base_quarter_national_index_is_100"
GRID_COMPLETE = "every_entity_industry_and_metric_is_present"
CHECKS = {
    INDICES_SUITE: ("Great Expectations on every quarter's table: keys present and unique, labels known, values "
                    "and accounts not negative", True),
    ADDS_UP: ("Province, city (with unallocated) and tier indices each add up to national; industries to all", True),
    BASE_IS_100: ("In the base quarter the national index of each metric is 100", True),
    GRID_COMPLETE: ("Every metric x entity x industry cell is present, zeros included", True),
}


@dg.asset(partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"polars", "parquet", "great_expectations"}, code_version="3",
          check_specs=specs("quarterly_indices", CHECKS))
def quarterly_indices(context: dg.AssetExecutionContext, settings: Settings, usage_cube: dict,
                      base_totals: pl.LazyFrame):
    """Per quarter, metric, entity and industry: the index (base national = 100) and exact active accounts."""
    ref, base, quarters = settings.reference(), base_totals.collect(), list(context.partition_keys)
    grid = index_grid(ref, base["metric"].to_list())
    tables, outcomes, rows = {}, {}, {}
    for quarter in quarters:
        table = normalise_to_base_period(usage_cube[quarter].collect(), base, grid, quarter)
        national = table.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
        is_base = quarter == base["base_period"][0]
        tables[quarter], rows[quarter] = table, table.height
        outcomes[quarter] = [
            levels_add_up(ADDS_UP, table, "value"),
            predicate(BASE_IS_100, not is_base or bool(((national["value"] - 100).abs() < 1e-9).all()),
                      base_quarter=is_base, **dict(zip(national["metric"], national["value"]))),
            predicate(GRID_COMPLETE, table.height == grid.height, rows=table.height, expected=grid.height),
        ]
    published = {quarter: table.drop("amount", *PRIVACY_COLUMNS) for quarter, table in tables.items()}
    suite = submit_suite_by_partition(INDICES_SUITE, INDICES, published)  # GX works while Dagster stores the tables
    yield dg.Output(tables, metadata={"rows": sum(rows.values()), INPUTS: dg.MetadataValue.json(
        stored_stamps(settings.directory, "usage_cube", quarters))})  # computed from what the cube was
    for quarter, outcome in suite.result().items():
        outcomes[quarter].insert(0, outcome)
    yield from check_results(context, settings.state, "indices", "quarterly_indices", outcomes, rows)
