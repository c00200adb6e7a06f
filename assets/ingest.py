"""Ingest: the raw files delivered to this release, and a lazily computed profile of each quarter's rows."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.io import INPUTS, stored_path
from assets.support.partitions import PARTITIONED_ASSETS, quarterly_partitions
from assets.support.settings import Settings
from assets.transforms.ingest.inventory import take_inventory
from assets.transforms.ingest.profile import quarter_profile
from assets.transforms.ingest.read import list_raw_files, read_raw, unreadable_named
from assets.transforms.quarters import quarter_bounds
from assets.transforms.release import check_delivery, new_quarters, quarter_fingerprints, stale_quarters
from expectations.adapter import submit_suite_by_partition
from expectations.outcomes import predicate
from expectations.suites import RAW_SAMPLE

LISTED_ONCE = "every_file_is_listed_once"
ROWS_ADD_UP = "each_files_rows_add_up_over_its_quarters"
INVENTORY_CHECKS = {
    LISTED_ONCE: ("Each path is listed once among the files in use, and each content hash is ingested once", True),
    ROWS_ADD_UP: ("Each ingested file's rows are its undated rows plus its rows in each quarter", True),
}


@dg.asset(kinds={"polars", "parquet"}, code_version="2", metadata={"preview": True},
          check_specs=specs("raw_inventory", INVENTORY_CHECKS))
def raw_inventory(context: dg.AssetExecutionContext, settings: Settings):
    """One row per raw file: content hash, format, rows, and rows per quarter (byte-identical copies skipped)."""
    release, stored = settings.release, stored_path(settings.directory, "raw_inventory")
    previous = pl.read_parquet(stored) if stored.exists() else None  # a continued release keeps what it held
    inventory = take_inventory(release.delivery, previous)  # InputError names file and column; known files unread
    delivered = len(list_raw_files(release.delivery))
    quarters = check_delivery(release, previous, inventory)  # the release's rules: range, base, frozen base
    missing = [q for q in quarters if not context.instance.has_dynamic_partition(quarterly_partitions.name, q)]
    if missing:  # every launch path finds the data's quarters as partitions
        context.instance.add_dynamic_partitions(quarterly_partitions.name, missing)
    expected = quarter_fingerprints(inventory, release.settings, release.base(inventory))
    ingested = inventory.filter(pl.col("status") == "ingested")
    added = inventory.height - (previous.height if previous is not None else 0)
    new = added - inventory.tail(added).filter(pl.col("status") == "duplicate").height
    replaced = inventory.filter(pl.col("status") == "replaced").height - (
        previous.filter(pl.col("status") == "replaced").height if previous is not None else 0)
    yield dg.Output(inventory, metadata={
        "files": inventory.height, "duplicates": inventory.filter(pl.col("status") == "duplicate").height,
        "files_delivered": delivered, "files_new": new, "files_already_held": delivered - added,
        "duplicates_delivered": added - new,
        "files_replaced": replaced,
        "rows": int(ingested["rows"].sum()), "quarters": ", ".join(quarters),
        "quarters_with_new_data": ", ".join(new_quarters(previous, inventory)) or "none",
        "quarters_to_compute": ", ".join(stale_quarters(settings.state, PARTITIONED_ASSETS, expected)) or "none"})
    in_use = inventory.filter(pl.col("status") != "replaced")
    counted = ingested.select(pl.col("rows") - pl.col("undated_rows") - pl.col("quarter_rows").list.sum())
    outcomes = [predicate(LISTED_ONCE, in_use["path"].is_unique().all() and ingested["sha256"].is_unique().all(),
                          files=inventory.height, in_use=in_use.height),
                predicate(ROWS_ADD_UP, bool((counted.to_series() == 0).all()), files=ingested.height,
                          files_off=int((counted.to_series() != 0).sum()))]
    yield from check_results(context, settings.state, "ingest", "raw_inventory", {None: outcomes},
                             {None: int(ingested["rows"].sum())})


QUARTER_HAS_ROWS = "quarter_has_rows"
DATES_WITHIN_QUARTER = "profiled_dates_are_within_the_quarter"
RAW_SAMPLE_SUITE = "raw_sample_meets_expectations"
PROFILE_CHECKS = {
    QUARTER_HAS_ROWS: ("The quarter has raw rows, unless empty quarters are allowed", True),
    DATES_WITHIN_QUARTER: ("Every profiled usage_date lies inside the quarter", True),
    RAW_SAMPLE_SUITE: ("Great Expectations on a bounded sample of the quarter's raw rows: required columns, "
                       "dates and sources present, (source_file, source_row) unique", False),
}


@dg.asset(partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"polars", "parquet", "great_expectations"}, code_version="2", metadata={"preview": True},
          check_specs=specs("raw_usage_profile", PROFILE_CHECKS))
def raw_usage_profile(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame):
    """Per quarter and source file: raw rows, nulls per column, date and amount ranges (the rows stay on disk)."""
    inventory = raw_inventory.collect()
    inputs = settings.fingerprints(inventory, context.partition_keys)
    profiles, outcomes, rows, samples = {}, {}, {}, {}
    for quarter in context.partition_keys:
        profile = quarter_profile(inventory, quarter)  # taken by the inventory's single pass over each file
        rows[quarter] = int(profile["rows"].sum())
        start, end = quarter_bounds(quarter)
        with unreadable_named(inventory, [quarter]):
            samples[quarter] = read_raw(inventory, [quarter], first=settings.release.settings.sample_rows).collect()
        outcomes[quarter] = [
            predicate(QUARTER_HAS_ROWS, rows[quarter] > 0 or settings.release.settings.allow_empty_quarters,
                      rows=rows[quarter]),
            predicate(DATES_WITHIN_QUARTER, profile.height == 0 or (profile["min_date"].min() >= start
                                                                    and profile["max_date"].max() < end),
                      rows=rows[quarter], files=profile.height),
        ]
        profiles[quarter] = profile
    raw_sample = submit_suite_by_partition(RAW_SAMPLE_SUITE, RAW_SAMPLE, samples)  # GX works while Dagster stores
    yield dg.Output(profiles, metadata={"rows": sum(rows.values()), INPUTS: dg.MetadataValue.json(inputs)})
    for quarter, outcome in raw_sample.result().items():
        outcomes[quarter].append(outcome)
    yield from check_results(context, settings.state, "ingest", "raw_usage_profile", outcomes, rows)
