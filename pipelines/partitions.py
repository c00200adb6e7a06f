"""The one partitions definition: quarters keyed `2020Q1`, added from the data by the CLI or the sensor."""
import dagster as dg

quarterly_partitions = dg.DynamicPartitionsDefinition(name="quarter")
