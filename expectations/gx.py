"""The one module that imports Great Expectations: build a suite (data, `expectations.suites`) into GX objects and
validate a frame with it. It runs in the validator process (`expectations.validator`), never in a run's own.

GX 1.x has no polars engine, so frames go in as pandas; the ephemeral context is created once per process, before
any suite, with analytics off.
"""
from __future__ import annotations

import os
import warnings
from functools import lru_cache

import polars as pl

from expectations.outcomes import Outcome
from expectations.suites import Expect


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
