"""What every stage needs from Dagster: settings read from the release, partitions, the IO manager, check
results and metadata helpers."""
