"""The one place that calls Great Expectations: run a suite on a frame, turn results into check outcomes.

Stages call `run_suite`, which hands the frame to the validator process (`expectations.validator`); there
`validate_here` runs GX. GX 1.x has no polars engine, so frames go in as pandas; the ephemeral context is created
once per process, before any suite, with analytics off. Suites are data (`expectations.suites.Expect`) built into
GX objects here.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import polars as pl

from expectations import validator
from expectations.suites import Expect, expect


@dataclass(frozen=True)
class Outcome:
    """One check's result, independent of Dagster: name (a predicate), passed, and what it measured."""

    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


def predicate(name: str, passed: bool, **metadata) -> Outcome:
    return Outcome(name, bool(passed), metadata)


def import_gx():
    """Great Expectations, imported with analytics off (about 2 s the first time in a process)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # pyspark (imported by GX when installed) warns about pandas 3 on every start; the CLI's errors are one line
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark(\.|$)")
    import great_expectations as gx
    import great_expectations.expectations  # noqa: F401  (the classes the suites name)

    return gx


@lru_cache(maxsize=1)
def _context():
    gx = import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context, context.data_sources.add_pandas("yunzhi")


@lru_cache(maxsize=None)
def _batch_and_suite(name: str, expectations: tuple[Expect, ...]):
    context, source = _context()
    gx = import_gx()
    # the expectations first: one GX rejects leaves nothing half-registered under this name
    built = [getattr(gx.expectations, expectation.kind)(**expectation.kwargs()) for expectation in expectations]
    batch_definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
    # built whole: adding expectations one by one to a stored suite re-saves it each time (~20 ms each)
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=built))
    return batch_definition, suite


def prepare_gx() -> None:
    """Import GX and create this process's context (the validator does it once, before its first request)."""
    _context()


def validate_here(name: str, expectations: tuple[Expect, ...], frame: pl.DataFrame) -> Outcome:
    """`run_suite`, in this process (the validator's side of it)."""
    batch_definition, suite = _batch_and_suite(name, expectations)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    # pass or fail per expectation is all a check reports; GX's default also gathers samples of the unexpected
    # values, which took about half the time of a suite on a table that passed
    result = batch.validate(suite, result_format="BOOLEAN_ONLY")
    failed = [r.expectation_config.type + (f"({r.expectation_config.kwargs.get('column')})"
                                           if r.expectation_config.kwargs.get("column") else "")
              for r in result.results if not r.success]
    return Outcome(name, bool(result.success),
                   {"expectations": len(result.results), "failed": ", ".join(failed) or "none", "rows": frame.height})


def submit_suite(name: str, expectations: tuple[Expect, ...], frame: pl.DataFrame) -> validator.Pending:
    """Start validating `frame` with the suite `name` (a tuple of `Expect`) in the validator process; `.result()`
    is the Outcome. `name` is the check's name, so one suite is one check."""
    return validator.submit(name, expectations, frame)


def run_suite(name: str, expectations: tuple[Expect, ...], frame: pl.DataFrame) -> Outcome:
    """`submit_suite`, waiting for the Outcome."""
    return submit_suite(name, expectations, frame).result()


PARTITION = "_partition"


def _within_partition(expectations: tuple[Expect, ...]) -> tuple[Expect, ...]:
    """The suite for partitions validated together: what must be unique is unique within a partition."""
    def scoped(expectation: Expect) -> Expect:
        args = expectation.kwargs()
        if expectation.kind == "ExpectCompoundColumnsToBeUnique":
            return expect(expectation.kind, column_list=[*args["column_list"], PARTITION])
        if expectation.kind == "ExpectColumnValuesToBeUnique":
            return expect("ExpectCompoundColumnsToBeUnique", column_list=[args["column"], PARTITION])
        return expectation
    return tuple(scoped(e) for e in expectations)


def submit_suite_by_partition(name: str, expectations: tuple[Expect, ...],
                              frames: dict[str, pl.DataFrame]) -> validator.Pending:
    """`submit_suite` for each partition's frame, in one validation of them all: GX's fixed cost (tens of ms a
    run) is paid once per asset, not once per quarter. `.result()` is the Outcome by partition; if the validation
    of them all failed, each partition is then validated alone, so the failure is reported on the partitions it
    belongs to."""
    together = None
    if len(frames) > 1:
        try:
            together = pl.concat([frame.with_columns(pl.lit(key).alias(PARTITION)) for key, frame in frames.items()],
                                 how="vertical_relaxed")
        except pl.exceptions.PolarsError:  # schemas that do not stack: one validation per partition
            pass
    if together is None:
        alone = {key: submit_suite(name, expectations, frame) for key, frame in frames.items()}
        return validator.Pending(lambda: {key: pending.result() for key, pending in alone.items()})
    combined = submit_suite(f"{name} (by partition)", _within_partition(expectations), together)

    def outcomes() -> dict[str, Outcome]:
        outcome = combined.result()
        if outcome.passed:
            return {key: Outcome(name, True, {**outcome.metadata, "rows": frame.height}) for key, frame in frames.items()}
        return {key: run_suite(name, expectations, frame) for key, frame in frames.items()}
    return validator.Pending(outcomes)


def run_suite_by_partition(name: str, expectations: tuple[Expect, ...],
                           frames: dict[str, pl.DataFrame]) -> dict[str, Outcome]:
    """`submit_suite_by_partition`, waiting for the outcomes."""
    return submit_suite_by_partition(name, expectations, frames).result()
