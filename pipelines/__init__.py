"""yunzhi's Dagster code location: definitions, partitions, settings, IO and the command line."""
