"""The Great Expectations adapter: suites validated per partition, together, with failures on the right partition."""
from __future__ import annotations

import polars as pl

from expectations.adapter import run_suite, run_suite_by_partition
from expectations.suites import BASE_TOTALS, USAGE_CUBE


def _cube(amount: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"metric": ["cloud", "cloud"], "geo_level": ["national", "province"],
                         "geo_code": ["CN", "110000"], "industry": ["all", "all"], "amount": [amount, amount],
                         "accounts": [1, 1]})


def test_partitions_validated_together_pass_with_keys_unique_within_each():
    """The same cells in two quarters are not duplicates: uniqueness holds per partition."""
    outcomes = run_suite_by_partition("cube_test", USAGE_CUBE, {"2020Q1": _cube(), "2020Q2": _cube()})
    assert {q: o.passed for q, o in outcomes.items()} == {"2020Q1": True, "2020Q2": True}
    assert outcomes["2020Q2"].metadata["rows"] == 2


def test_a_failure_is_reported_on_its_partition_only():
    bad = _cube(-1.0)  # amount >= 0 fails
    outcomes = run_suite_by_partition("cube_test", USAGE_CUBE, {"2020Q1": _cube(), "2020Q2": bad,
                                                                 "2020Q3": pl.concat([_cube(), _cube()])})
    assert {q: o.passed for q, o in outcomes.items()} == {"2020Q1": True, "2020Q2": False, "2020Q3": False}
    assert "between" in outcomes["2020Q2"].metadata["failed"]
    assert "unique" in outcomes["2020Q3"].metadata["failed"].lower()
    assert outcomes["2020Q1"] == run_suite("cube_test", USAGE_CUBE, _cube())


def test_a_column_unique_in_one_partition_may_repeat_across_partitions():
    def base(*metrics):
        return pl.DataFrame({"metric": list(metrics), "base_period": "2020Q1", "base_amount": 1.0})
    outcomes = run_suite_by_partition("base_test", BASE_TOTALS, {"2020Q1": base("cloud", "ai"),
                                                                 "2020Q2": base("cloud", "ai")})
    assert all(o.passed for o in outcomes.values())
    outcomes = run_suite_by_partition("base_test", BASE_TOTALS, {"2020Q1": base("cloud", "ai"),
                                                                 "2020Q2": base("cloud", "cloud")})
    assert {q: o.passed for q, o in outcomes.items()} == {"2020Q1": True, "2020Q2": False}
