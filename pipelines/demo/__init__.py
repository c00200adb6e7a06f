"""The default (demo) dataset: calibration targets (`calibration`) and the raw rows that meet them (`data`)."""
