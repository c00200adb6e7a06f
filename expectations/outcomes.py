"""A check's outcome, independent of Dagster and of Great Expectations: a predicate's name, whether it held, and
what it measured."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    """One check's result, independent of Dagster: name (a predicate), passed, and what it measured."""

    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


def predicate(name: str, passed: bool, **metadata) -> Outcome:
    return Outcome(name, bool(passed), metadata)
