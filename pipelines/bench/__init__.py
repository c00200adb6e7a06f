"""Benchmark: the project's computation against DuckDB on the same raw files, and what Dagster adds.

    python -m pipelines bench --rows 20_000_000            (or `make bench ROWS=...`)

1. Generates (or reuses) N raw rows with `pipelines.demo.data.write_demo_raw`, hive-partitioned by quarter, under
   `bench/data/raw-N-seedS/`.
2. In one run, each engine in its own subprocess (so each has its own peak RSS, read with `os.wait4`):
   * `project`: raw files -> `indices.parquet` through the transform functions the Dagster assets call
     (inventory -> classify -> account_usage -> cube -> base -> indices -> annual), quarter by quarter, with the
     intermediate outputs written to Parquet as the IO manager does;
   * `duckdb`: the same indices in SQL from the same files (classification, sums and exact distinct accounts per
     cell at every level, quarters and complete years);
   * `dagster`: the same work materialised by Dagster, every partition in one run (the stages from the raw files
     to the quarterly and annual indices, with their checks and Great Expectations suites): what orchestration
     adds to the computation;
   * `release`: the whole `python -m pipelines run` a user runs (also privacy, derived measures, publishing and
     the report), with each stage's seconds from the release's Dagster instance;
   * optionally `spark` (`--engines ...,spark`): the project with the Spark engine.
   The engines run in turn, in `--repeat` rounds (default 3): this VM's speed drifts by 10-20 % between minutes
   (a plain Python loop included), so one run of each would compare the drift as much as the engines. Each
   engine's figures are its median run; every run's are kept, and each ratio is also given round by round.
3. Asserts the indices agree (amount and value to 1e-9 relative, accounts exactly), prints wall time and peak RSS
   of each and their ratios, and writes `bench/results.json`.

`--history` adds the incremental experiment: the cost of materialising one quarter, given 1..K quarters of history.
No dagster import at module level (the workers must not pay for it).
"""
