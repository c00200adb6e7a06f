"""Ingest: the raw files delivered to a release (`inventory`), read as uniform lazy frames (`read`), and
profiled per quarter in the same pass (`profile`)."""
