"""Great Expectations suites as Dagster checks: a stage submits a frame with a suite (data, `expectations.suites`)
to the validator process (`expectations.validator`, which runs `expectations.gx`) and reads the Outcome later.
"""
from __future__ import annotations

import polars as pl

from expectations import validator
from expectations.outcomes import Outcome
from expectations.suites import Expect, expect


def submit_suite(name: str, expectations: tuple[Expect, ...], frame: pl.DataFrame) -> validator.Pending:
    """Start validating `frame` with the suite `name` (a tuple of `Expect`) in the validator process; `.result()`
    is the Outcome. `name` is the check's name, so one suite is one check.

    Text columns travel as categoricals: the few distinct labels of an aggregated table (metric, level, code,
    measure) are then pickled once and checked per category (GX on the 700k rows of derived measures: 0.9 ->
    0.5 s); nulls, sets, uniqueness and patterns mean the same on them."""
    return validator.submit(name, expectations, frame.with_columns(pl.col(pl.String).cast(pl.Categorical)))


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
