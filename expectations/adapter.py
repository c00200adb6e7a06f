"""The one place that calls Great Expectations: run a suite on a frame, turn results into check outcomes.

GX 1.x has no polars engine, so frames go in as pandas; the ephemeral context is created once per process,
before any suite, with analytics off.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl


@dataclass(frozen=True)
class Outcome:
    """One check's result, independent of Dagster: name (a predicate), passed, and what it measured."""

    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


def predicate(name: str, passed: bool, **metadata) -> Outcome:
    return Outcome(name, bool(passed), metadata)


@lru_cache(maxsize=1)
def _context():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context, context.data_sources.add_pandas("yunzhi")


@lru_cache(maxsize=None)
def _batch_and_suite(name: str, expectations: tuple):
    import great_expectations as gx

    context, source = _context()
    batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for make in expectations:
        suite.add_expectation(make())
    return batch_definition, suite


def run_suite(name: str, expectations: tuple, frame: pl.DataFrame) -> Outcome:
    """Validate `frame` with the suite `name` (a tuple of zero-argument expectation factories); `name` is the
    check's name, so one suite is one check."""
    batch_definition, suite = _batch_and_suite(name, expectations)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    result = batch.validate(suite)
    failed = [r.expectation_config.type + (f"({r.expectation_config.kwargs.get('column')})"
                                           if r.expectation_config.kwargs.get("column") else "")
              for r in result.results if not r.success]
    return Outcome(name, bool(result.success),
                   {"expectations": len(result.results), "failed": ", ".join(failed) or "none", "rows": frame.height})


PARTITION = "_partition"


@lru_cache(maxsize=None)
def _within_partition(expectations: tuple) -> tuple:
    """The suite for partitions validated together: what must be unique is unique within a partition."""
    import great_expectations.expectations as gxe

    def scoped(make):
        def build():
            expectation = make()
            if isinstance(expectation, gxe.ExpectCompoundColumnsToBeUnique):
                return gxe.ExpectCompoundColumnsToBeUnique(column_list=[*expectation.column_list, PARTITION])
            if isinstance(expectation, gxe.ExpectColumnValuesToBeUnique):
                return gxe.ExpectCompoundColumnsToBeUnique(column_list=[expectation.column, PARTITION])
            return expectation
        return build
    return tuple(scoped(make) for make in expectations)


def run_suite_by_partition(name: str, expectations: tuple, frames: dict[str, pl.DataFrame]) -> dict[str, Outcome]:
    """`run_suite` on each partition's frame, in one validation of them all: GX's fixed cost (tens of ms a run)
    is paid once per asset, not once per quarter. If that fails, each partition is validated alone, so the
    failure is reported on the partitions it belongs to."""
    if len(frames) > 1:
        try:
            together = pl.concat([frame.with_columns(pl.lit(key).alias(PARTITION)) for key, frame in frames.items()],
                                 how="vertical_relaxed")
        except pl.exceptions.PolarsError:  # schemas that do not stack: one validation per partition
            together = None
        if together is not None:
            outcome = run_suite(f"{name} (by partition)", _within_partition(expectations), together)
            if outcome.passed:
                return {key: Outcome(name, True, {**outcome.metadata, "rows": frame.height})
                        for key, frame in frames.items()}
    return {key: run_suite(name, expectations, frame) for key, frame in frames.items()}
