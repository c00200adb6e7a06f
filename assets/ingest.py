"""Ingest: the raw files delivered to this release, and a lazily computed profile of each quarter's rows."""
import dagster as dg
import polars as pl

from assets.transforms.ingest import (data_quarters, inventory_files, merge_inventory, quarter_bounds,
                                      quarter_profile, read_raw, unreadable_named)
from expectations.adapter import predicate, submit_suite_by_partition
from expectations.suites import RAW_SAMPLE
from pipelines.partitions import quarterly_partitions
from pipelines.quality import check_results
from pipelines.resources import Settings

FILES_READABLE = "files_are_readable_with_required_columns"
QUARTERS_CONTIGUOUS = "quarters_are_contiguous"


@dg.asset(kinds={"polars", "parquet"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(FILES_READABLE, asset="raw_inventory", blocking=True),
                       dg.AssetCheckSpec(QUARTERS_CONTIGUOUS, asset="raw_inventory")])
def raw_inventory(context: dg.AssetExecutionContext, settings: Settings):
    """One row per raw file: content hash, format, rows, and rows per quarter (byte-identical copies skipped)."""
    stored = settings.state / "assets" / "raw_inventory.parquet"  # a continued release keeps what it held
    previous = pl.read_parquet(stored) if stored.exists() else None
    found = inventory_files(settings.raw_path, previous)  # InputError names file and column; known files unread
    inventory = merge_inventory(previous, found)
    quarters = data_quarters(inventory)
    ingested = inventory.filter(pl.col("status") == "ingested")
    yield dg.Output(inventory, metadata={"files": inventory.height, "duplicates": inventory.height - ingested.height,
                                         "rows": int(ingested["rows"].sum()), "quarters": ", ".join(quarters)})
    outcomes = [predicate(FILES_READABLE, True, files=inventory.height),
                predicate(QUARTERS_CONTIGUOUS, True, first=quarters[0], last=quarters[-1], count=len(quarters))]
    yield from check_results(context, settings.state, "ingest", "raw_inventory", {None: outcomes},
                             {None: int(ingested["rows"].sum())})


QUARTER_HAS_ROWS = "quarter_has_rows"
DATES_WITHIN_QUARTER = "profiled_dates_are_within_the_quarter"
RAW_SAMPLE_SUITE = "raw_sample_meets_expectations"


@dg.asset(partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"polars", "parquet", "great_expectations"}, metadata={"preview": True},
          check_specs=[dg.AssetCheckSpec(QUARTER_HAS_ROWS, asset="raw_usage_profile", blocking=True),
                       dg.AssetCheckSpec(DATES_WITHIN_QUARTER, asset="raw_usage_profile", blocking=True),
                       dg.AssetCheckSpec(RAW_SAMPLE_SUITE, asset="raw_usage_profile")])
def raw_usage_profile(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame):
    """Per quarter and source file: raw rows, nulls per column, date and amount ranges (the rows stay on disk)."""
    inventory = raw_inventory.collect()
    profiles, outcomes, rows, samples = {}, {}, {}, {}
    for quarter in context.partition_keys:
        profile = quarter_profile(inventory, quarter)  # taken by the inventory's single pass over each file
        rows[quarter] = int(profile["rows"].sum())
        start, end = quarter_bounds(quarter)
        with unreadable_named(inventory, [quarter]):
            samples[quarter] = read_raw(inventory, [quarter], first=settings.sample_rows).collect()
        outcomes[quarter] = [
            predicate(QUARTER_HAS_ROWS, rows[quarter] > 0 or settings.allow_empty_quarters, rows=rows[quarter]),
            predicate(DATES_WITHIN_QUARTER, profile.height == 0 or (profile["min_date"].min() >= start
                                                                    and profile["max_date"].max() < end),
                      rows=rows[quarter], files=profile.height),
        ]
        profiles[quarter] = profile
    raw_sample = submit_suite_by_partition(RAW_SAMPLE_SUITE, RAW_SAMPLE, samples)  # GX works while Dagster stores
    yield dg.Output(profiles, metadata={"rows": sum(rows.values())})
    for quarter, outcome in raw_sample.result().items():
        outcomes[quarter].append(outcome)
    yield from check_results(context, settings.state, "ingest", "raw_usage_profile", outcomes, rows)
