"""The Great Expectations adapter: suites validated per partition, together, with failures on the right partition;
the validator process that runs them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from expectations import validator
from expectations.adapter import run_suite, run_suite_by_partition, submit_suite, submit_suite_by_partition
from expectations.suites import BASE_TOTALS, USAGE_CUBE, expect

ROOT = Path(__file__).resolve().parents[1]


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


def test_suites_run_in_the_validator_process_and_the_caller_never_imports_gx_or_pandas(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text("import sys, polars as pl\n"
                      "from expectations.adapter import run_suite\n"
                      "from expectations.suites import USAGE_CUBE\n"
                      "cube = pl.DataFrame({'metric': ['cloud'], 'geo_level': ['national'], 'geo_code': ['CN'],\n"
                      "                     'industry': ['all'], 'amount': [-1.0], 'accounts': [1]})\n"
                      "outcome = run_suite('cube_test', USAGE_CUBE, cube)\n"
                      "print(outcome.passed, 'great_expectations' in sys.modules, 'pandas' in sys.modules)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, cwd=ROOT)
    assert run.stdout.split() == ["False", "False", "False"]
    assert run.stderr == ""


def test_results_may_be_collected_in_any_order():
    first = submit_suite("cube_test", USAGE_CUBE, _cube(-1.0))
    second = submit_suite_by_partition("cube_test", USAGE_CUBE, {"2020Q1": _cube(), "2020Q2": _cube()})
    assert all(o.passed for o in second.result().values())
    assert not first.result().passed
    assert first.result() is first.result()  # collected once


def test_a_suite_that_raises_names_itself_and_the_validator_goes_on():
    bad = (expect("ExpectColumnValuesToBeBetween", column="amount"),)  # GX: min and max cannot both be None
    with pytest.raises(validator.ValidatorError, match="'broken_suite': ValidationError: 1 validation error for ExpectColumnValuesToBeBetween\n"):
        run_suite("broken_suite", bad, _cube())
    assert run_suite("cube_test", USAGE_CUBE, _cube()).passed
    with pytest.raises(validator.ValidatorError) as raised:
        run_suite("broken_suite", bad, _cube())
    assert "min_value and max_value cannot both be None" in str(raised.value)  # the whole traceback follows


def test_a_validator_that_died_is_reported_and_replaced():
    dead = validator.start()
    dead.process.kill()
    dead.process.wait()
    with pytest.raises(validator.ValidatorError, match=f"pid {dead.process.pid}.*exited with code -9"):
        dead.result(dead.submit(("cube_test", USAGE_CUBE, _cube())))
    assert run_suite("cube_test", USAGE_CUBE, _cube()).passed  # the next caller gets a new validator
    assert validator.start() is not dead


def test_a_frame_larger_than_the_pipe_is_handed_over_while_the_validator_is_busy():
    import os
    import signal
    import threading

    busy = validator.start()
    run_suite("cube_test", USAGE_CUBE, _cube())  # GX loaded
    os.kill(busy.process.pid, signal.SIGSTOP)  # busy: it reads nothing
    try:
        big = pl.concat([_cube()] * 200_000)  # several MB pickled; a pipe holds 64 KB
        pending = []
        sender = threading.Thread(target=lambda: pending.append(submit_suite("cube_test", USAGE_CUBE, big)))
        sender.start()
        sender.join(timeout=30)
        assert not sender.is_alive(), "submit waited for the validator"
    finally:
        os.kill(busy.process.pid, signal.SIGCONT)
    outcome = pending[0].result()
    assert outcome.metadata["rows"] == 400_000 and not outcome.passed  # the same cells repeat: keys not unique


def test_the_shift_share_suite_passes_a_valid_table_and_fails_an_unknown_status():
    from assets.transforms.shift_share import SHIFT_SHARE_COLUMNS, SHIFT_SHARE_DTYPES
    from expectations.suites import SHIFT_SHARE

    row = {"metric": "ai", "period": "2021Q1", "period_type": "quarter", "reference_period": "2020Q1",
           "geo_level": "province", "geo_code": "110000", "geo_name": "北京市", "change": 1.5,
           "national_effect": 1.0, "industry_mix_effect": 0.25, "competitive_effect": 0.25, "status": "ok"}
    table = pl.DataFrame([row, {**row, "geo_code": "310000", "status": "suppressed"}],
                         schema=SHIFT_SHARE_DTYPES).select(SHIFT_SHARE_COLUMNS)
    assert run_suite("shift_share_test", SHIFT_SHARE, table).passed
    bad = run_suite("shift_share_test", SHIFT_SHARE, table.with_columns(pl.lit("hidden").alias("status")))
    assert not bad.passed
