"""Validate: every raw row resolved or quarantined with one reason; good rows summed per account."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.io import INPUTS
from assets.support.partitions import quarterly_partitions
from assets.support.settings import Settings
from assets.transforms.ingest.read import undated_rows as read_undated
from assets.transforms.validate import Codebook, classify_rows, select_quarantine, validate_quarter
from expectations.adapter import submit_suite_by_partition
from expectations.outcomes import predicate
from expectations.suites import ACCOUNT_USAGE_SAMPLE, QUARANTINE

UNDATED_ARE_INVALID_DATE = "undated_rows_are_invalid_date"


@dg.asset(kinds={"polars", "parquet"}, code_version="2",
          check_specs=specs("undated_rows", {UNDATED_ARE_INVALID_DATE: (
              "The rows without a valid date are those the inventory counted, each quarantined invalid_date", False)}))
def undated_rows(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame):
    """Quarantined raw rows whose usage_date is not a valid date, so they belong to no quarter."""
    inventory = raw_inventory.collect()
    rows = select_quarantine(classify_rows(read_undated(inventory), settings.reference())).collect()
    expected = int(inventory.filter(pl.col("status") == "ingested")["undated_rows"].sum())
    yield dg.Output(rows, metadata={"rows": rows.height})
    outcome = predicate(UNDATED_ARE_INVALID_DATE, rows.height == expected and
                        set(rows["reason"].unique()) <= {"invalid_date"}, rows=rows.height, inventory_rows=expected)
    yield from check_results(context, settings.state, "validate", "undated_rows", {None: [outcome]}, {None: rows.height})


ROWS_RECONCILE = "rows_in_equal_rows_used_plus_quarantined"
ACCOUNT_USAGE_SUITE = "account_usage_sample_meets_expectations"
QUARANTINE_SUITE = "quarantine_meets_expectations"


@dg.multi_asset(
    partitions_def=quarterly_partitions, backfill_policy=dg.BackfillPolicy.single_run(),
    outs={"account_usage": dg.AssetOut(kinds={"polars", "parquet", "great_expectations"}, code_version="2",
                                       description="Good rows summed per quarter x metric x city x industry x "
                                                   "account: amount (yuan) and raw rows."),
          "quarantined_rows": dg.AssetOut(kinds={"polars", "parquet"}, code_version="2",
                                          description="Rejected raw rows of a quarter: values as read, source "
                                                      "file and row, one reason.")},
    check_specs=[*specs("account_usage", {
        ROWS_RECONCILE: ("The quarter's raw rows are its rows used plus its rows quarantined", True),
        ACCOUNT_USAGE_SUITE: ("Great Expectations on a bounded sample of the account-level rows: keys present, "
                              "metric cloud or ai, amount and rows not negative", True)}),
                 *specs("quarantined_rows", {QUARANTINE_SUITE: (
                     "Great Expectations on the quarantine: source and reason present, reason one of the nine",
                     False)})])
def validated_usage(context: dg.AssetExecutionContext, settings: Settings, raw_inventory: pl.LazyFrame,
                    raw_usage_profile: dict):
    """Resolve region, industry and metric for each raw row; quarantine the rest with their first reason."""
    inventory, ref = raw_inventory.collect(), settings.reference()
    inputs = settings.fingerprints(inventory, context.partition_keys)
    usage, quarantine, outcomes, rows = {}, {}, {}, {}
    if settings.release.settings.engine == "spark":  # the row-level work in Spark, one job for the run's quarters
        from assets.transforms import spark_cube

        scratch = settings.state / "spark"
        by_quarter = spark_cube.account_usage(spark_cube.session(), inventory, list(context.partition_keys), ref,
                                              scratch)
        for quarter, (usage_lf, quarantine_lf) in by_quarter.items():
            usage[quarter], quarantine[quarter] = usage_lf.collect(), quarantine_lf.collect()
        spark_cube.clear_scratch(scratch)
    book = Codebook(ref) if settings.release.settings.engine != "spark" else None
    for quarter in context.partition_keys:
        if book is not None:
            usage[quarter], quarantine[quarter] = validate_quarter(inventory, quarter, book)
        rows_in = int(raw_usage_profile[quarter].select(pl.col("rows").sum()).collect().item() or 0)
        used, bad = int(usage[quarter]["rows"].sum()), quarantine[quarter].height
        rows[quarter] = usage[quarter].height
        outcomes[quarter] = [
            predicate(ROWS_RECONCILE, rows_in == used + bad, rows_in=rows_in, rows_used=used, rows_quarantined=bad),
        ]
    samples = {quarter: frame.head(settings.release.settings.sample_rows) for quarter, frame in usage.items()}
    suites = [submit_suite_by_partition(name, suite, frames)  # GX works while Dagster stores the outputs
              for name, suite, frames in ((ACCOUNT_USAGE_SUITE, ACCOUNT_USAGE_SAMPLE, samples),
                                          (QUARANTINE_SUITE, QUARANTINE, quarantine))]
    quarantined = sum(q.height for q in quarantine.values())
    stamps = dg.MetadataValue.json(inputs)
    yield dg.Output(usage, output_name="account_usage", metadata={"account_rows": sum(rows.values()), INPUTS: stamps})
    yield dg.Output(quarantine, output_name="quarantined_rows", metadata={"quarantined_rows": quarantined,
                                                                          INPUTS: stamps})
    for suite in suites:
        for quarter, outcome in suite.result().items():
            outcomes[quarter].append(outcome)
    yield from check_results(context, settings.state, "validate", "account_usage", outcomes, rows)
