"""The one partitions definition: quarters keyed `2020Q1`, added from the data (by the raw inventory, the CLI or the
sensor), never at import time."""
import dagster as dg

quarterly_partitions = dg.DynamicPartitionsDefinition(name="quarter")

# The partitioned assets, each stored per quarter and stamped with what the quarter was computed from; a quarter is
# current when all of them are (tests/test_definitions.py checks this list against the graph).
PARTITIONED_ASSETS = ("raw_usage_profile", "account_usage", "quarantined_rows", "usage_cube", "quarterly_indices")
