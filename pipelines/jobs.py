"""The jobs: a release's quarters (what the CLI, the sensor, the schedule and a backfill all run) and its rebase."""
import dagster as dg

# One run for a quarter or a range of quarters (partitioned stages are single-run backfills): raw_inventory first, so
# the partitioned stages see new files, then every stage down to the published release.
quarterly_release = dg.define_asset_job(
    "quarterly_release", selection=dg.AssetSelection.all(),  # partitioned by quarter (inferred)
    description="Materialise the release for the selected quarters: inventory the raw files, then every stage; the "
                "release's settings apply (DIR/state/settings.json), and nothing is published unless every "
                "blocking check passes.",
    executor_def=dg.in_process_executor)

# The same stages against a new base quarter: launched over all partitions with `rebase_to` in the settings' config.
rebase_release = dg.define_asset_job(
    "rebase_release", selection=dg.AssetSelection.all(),
    description="Recompute every quarter against a new base quarter (config: resources.settings.config.rebase_to) "
                "and log every changed value with reason 'rebase'. Launch it over all partitions.",
    config={"resources": {"settings": {"config": {"rebase_to": ""}}}},
    executor_def=dg.in_process_executor)

JOBS = [quarterly_release, rebase_release]
