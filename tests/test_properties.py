"""Index invariants on random raw inputs (hypothesis), through the pure transform chain of the assets
(tests/fault_fixtures.run_transforms); one pair of real CLI runs for byte-identical reruns.

Every example also checks that rows reconcile (rows in = used + quarantined) and, independently of the
pipeline, that the national amount of each quarter is the plain sum of the good raw rows.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # helpers beside this file, package or not
import fault_fixtures as ff  # noqa: E402
from assets.transforms.quarters import quarters_between

KEYS = ["metric", "period", "geo_level", "geo_code", "industry"]
REL = 1e-9
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True, print_blob=True)


def _quarters(start: str, n: int) -> list[str]:
    y, q = int(start[:4]), int(start[5])
    last_index = (y * 4 + q - 1) + n - 1
    return quarters_between(start, f"{last_index // 4}Q{last_index % 4 + 1}")


raw_cases = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "start": st.sampled_from(["2019Q3", "2020Q1", "2021Q4"]),
    "quarters": st.integers(1, 6),
    "rows": st.integers(2, 40).map(lambda n: 2 * n),  # even, so each quarter has both metrics
    "accounts": st.integers(2, 40),
    "industries": st.booleans(),
    "bad": st.integers(0, 12),
})


def _frame(case: dict) -> tuple[pl.DataFrame, int]:
    good = ff.make_raw(_quarters(case["start"], case["quarters"]), case["rows"], seed=case["seed"],
                       accounts=case["accounts"], industries=case["industries"])
    return ff.add_bad_rows(good, case["bad"], seed=case["seed"]), good.height


def _run(frame: pl.DataFrame, directory: Path, **kw) -> dict:
    ff.write_parquet(frame, directory / "raw" / "usage.parquet")
    return ff.run_transforms(directory / "raw", **kw)


def _all_tables(result: dict) -> pl.DataFrame:
    return pl.concat([*result["quarterly"].values(), *result["annual"].values()])


def _close(a: pl.Series, b: pl.Series, rel: float = REL) -> bool:
    a, b = a.to_numpy(), b.to_numpy()
    return bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(a), np.abs(b)) + 1e-12))


def _assert_same_indices(left: dict, right: dict, rel: float = REL) -> None:
    a, b = _all_tables(left), _all_tables(right)
    assert a.height == b.height
    joined = a.select(*KEYS, "value", "accounts").join(b.select(*KEYS, "value", "accounts"), on=KEYS, how="full",
                                                         coalesce=True)
    assert joined["value"].null_count() == 0 and joined["value_right"].null_count() == 0, "cells differ"
    assert _close(joined["value"], joined["value_right"], rel)
    assert (joined["accounts"] == joined["accounts_right"]).all()


def _assert_sum(children: pl.DataFrame, parents: pl.DataFrame, by: list[str], what: str) -> None:
    summed = children.group_by(by).agg(pl.col("value").sum().alias("children"))
    joined = parents.select(*by, "value").join(summed, on=by, how="left").with_columns(pl.col("children").fill_null(0.0))
    assert joined.height == parents.height
    bad = joined.filter((pl.col("value") - pl.col("children")).abs() > REL * pl.col("value").abs().clip(1e-9) + 1e-9)
    assert bad.height == 0, f"{what} does not add up:\n{bad.head()}"


def _check_hierarchies(table: pl.DataFrame) -> None:
    by = ["metric", "period", "industry"]
    national = table.filter(pl.col("geo_level") == "national")
    for level in ("province", "city", "tier"):
        _assert_sum(table.filter(pl.col("geo_level") == level), national, by, f"{level} -> national")
    geo = ["metric", "period", "geo_level", "geo_code"]
    _assert_sum(table.filter(pl.col("industry") != "all"), table.filter(pl.col("industry") == "all"), geo,
                "industries -> all")
    members = ff.reference().clusters.select(pl.col("cluster_code"), pl.col("city_code").alias("geo_code"))
    cities = table.filter(pl.col("geo_level") == "city").join(members, on="geo_code")
    clusters = table.filter(pl.col("geo_level") == "cluster").rename({"geo_code": "cluster_code"})
    _assert_sum(cities, clusters, ["metric", "period", "industry", "cluster_code"], "cluster = sum of members")


@FAST
@given(case=raw_cases)
def test_invariants_hold_on_random_input(case):
    frame, good_rows = _frame(case)
    with tempfile.TemporaryDirectory() as tmp:
        result = _run(frame, Path(tmp))
    # every row is accounted for, and the spoiled rows are exactly the quarantined ones
    assert result["rows_in"] == frame.height == result["rows_used"] + result["rows_quarantined"]
    assert result["rows_quarantined"] == frame.height - good_rows
    assert result["quarters"] == _quarters(case["start"], case["quarters"])
    # the national amount is the plain sum of the good raw rows (an oracle independent of the pipeline)
    good = frame.head(good_rows).with_columns(
        pl.col("product").replace_strict({p: m for m, ps in ff.PRODUCTS.items() for p in ps}).alias("metric"),
        pl.concat_str(pl.col("usage_date").dt.year(), pl.lit("Q"), pl.col("usage_date").dt.quarter()).alias("period"))
    expected = good.group_by("metric", "period").agg(pl.col("amount").sum().alias("expected"))
    national = pl.concat(result["quarterly"].values()).filter(
        (pl.col("geo_level") == "national") & (pl.col("industry") == "all")).select("metric", "period", "amount")
    joined = expected.join(national, on=["metric", "period"], how="full", coalesce=True)
    assert _close(joined["expected"], joined["amount"])
    # the base quarter's national index is 100 for each metric
    base = result["quarters"][0]
    nat_base = result["quarterly"][base].filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    assert sorted(nat_base["metric"]) == ["ai", "cloud"]
    assert ((nat_base["value"] - 100.0).abs() < 1e-9).all()
    # levels, industries and clusters add up, in every quarter and complete year
    for table in [*result["quarterly"].values(), *result["annual"].values()]:
        assert table["value"].null_count() == 0 and table["value"].is_finite().all()
        _check_hierarchies(table)
    # quarters add up to their (complete) year, and only complete years are published
    complete = [y for y in sorted({q[:4] for q in result["quarters"]})
                if all(f"{y}Q{i}" in result["quarters"] for i in (1, 2, 3, 4))]
    assert sorted(result["annual"]) == complete
    for year, table in result["annual"].items():
        quarters = pl.concat([result["quarterly"][f"{year}Q{i}"] for i in (1, 2, 3, 4)])
        _assert_sum(quarters.drop("period"), table, ["metric", "geo_level", "geo_code", "industry"], "quarters -> year")


@FAST
@given(case=raw_cases, factor=st.sampled_from([1e-3, 0.37, 3.0, 1e3]) | st.floats(1e-3, 1e3))
def test_scaling_every_amount_changes_no_index(case, factor):
    frame, _ = _frame(case)
    scaled = frame.with_columns(pl.col("amount") * factor)
    with tempfile.TemporaryDirectory() as tmp:
        plain = _run(frame, Path(tmp) / "a")
        times = _run(scaled, Path(tmp) / "b")
    _assert_same_indices(plain, times)
    assert plain["rows_quarantined"] == times["rows_quarantined"]


@FAST
@given(case=raw_cases, shuffle=st.integers(0, 2**31 - 1), cuts=st.lists(st.integers(1, 500), max_size=4),
       formats=st.lists(st.sampled_from(["parquet", "csv"]), min_size=5, max_size=5))
def test_row_order_and_file_split_change_nothing(case, shuffle, cuts, formats):
    frame, _ = _frame(case)
    order = np.random.default_rng(shuffle).permutation(frame.height)
    shuffled = frame[order.tolist()]
    bounds = [0, *sorted({c for c in cuts if c < frame.height}), frame.height]
    with tempfile.TemporaryDirectory() as tmp:
        whole = _run(frame, Path(tmp) / "a")
        parts = Path(tmp) / "b" / "raw"
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            fmt = formats[i % len(formats)]
            writer = ff.write_parquet if fmt == "parquet" else ff.write_csv
            writer(shuffled.slice(lo, hi - lo), parts / f"part={i}" / f"rows.{fmt}")
        split = ff.run_transforms(parts)
    _assert_same_indices(whole, split)
    assert (whole["rows_in"], whole["rows_used"], whole["rows_quarantined"]) == \
           (split["rows_in"], split["rows_used"], split["rows_quarantined"])
    reasons = [r["quarantine"].group_by("reason").len().sort("reason") for r in (whole, split)]
    assert reasons[0].equals(reasons[1])


@FAST
@given(case=raw_cases, extra_rows=st.integers(2, 30), same_file=st.booleans())
def test_a_later_quarter_never_changes_an_earlier_one(case, extra_rows, same_file):
    frame, _ = _frame(case)
    quarters = _quarters(case["start"], case["quarters"])
    later = ff.make_raw(_quarters(case["start"], case["quarters"] + 1)[-1:], 2 * extra_rows, seed=case["seed"] + 1,
                        accounts=case["accounts"], industries=case["industries"])
    with tempfile.TemporaryDirectory() as tmp:
        before = _run(frame, Path(tmp) / "a")
        raw = Path(tmp) / "b" / "raw"
        if same_file:
            ff.write_parquet(pl.concat([frame, later]), raw / "usage.parquet")
        else:
            ff.write_parquet(frame, raw / "usage.parquet")
            ff.write_parquet(later, raw / "zz-late.parquet")
        after = ff.run_transforms(raw)
    assert after["quarters"] == before["quarters"] + [after["quarters"][-1]]
    assert before["base"].equals(after["base"])
    for quarter in quarters:
        assert before["quarterly"][quarter].equals(after["quarterly"][quarter]), quarter
    for year, table in before["annual"].items():
        assert table.equals(after["annual"][year]), year


MESSY = [  # spellings the resolution tables do not hold, and account ids that need cleaning
    ("account_id", lambda v: f"  {v}\u200b"), ("account_id", lambda v: " \t "), ("region_code", lambda v: f"{v}.0"),
    ("region_code", lambda v: v.translate(str.maketrans("0123456789", "０１２３４５６７８９"))),
    ("product", str.upper), ("industry", lambda v: f" {v.upper()} " if v else v), ("metric", lambda v: "Cloud "),
    ("metric", lambda v: "bogus"), ("region_code", lambda v: "12345x"),
]


@settings(FAST, max_examples=20)
@given(raw_cases, st.lists(st.integers(0, len(MESSY) - 1), max_size=12))
def test_the_one_pass_usage_and_quarantine_equal_the_row_by_row_rules(case, messes):
    """`usage_and_quarantine` (joins on distinct spellings, accounts cleaned after summing, bad rows read again)
    gives exactly what `classify_rows` row by row gives, in the same order, whatever the spellings."""
    from polars.testing import assert_frame_equal

    from assets.transforms import validate
    from assets.transforms.ingest.inventory import data_quarters, inventory_files
    from assets.transforms.ingest.read import read_raw

    frame, _ = _frame(case)
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in ("industry", "metric")
                               if c not in frame.columns)
    rng = np.random.default_rng(case["seed"])
    rows = frame.rows(named=True)
    for mess in messes:
        row = rows[int(rng.integers(0, len(rows)))]
        column, spoil = MESSY[mess]
        row[column] = spoil(row[column] or "")
    frame = pl.DataFrame(rows, schema=frame.schema)
    ref = ff.reference()
    keys = ["metric", "geo_code", "industry", "account_id"]
    with tempfile.TemporaryDirectory() as d:
        ff.split_into_files(frame, Path(d) / "raw", [frame.height // 2])
        inventory = inventory_files(Path(d) / "raw")
        for quarter in data_quarters(inventory):
            raw = read_raw(inventory, [quarter])
            for first in (1, 7, 50):  # a sample reads files only so far, and is the quarter's first rows
                assert_frame_equal(read_raw(inventory, [quarter], first=first).collect(),
                                   raw.head(first).collect())
            usage, quarantine = validate.usage_and_quarantine(raw, ref)
            classified = validate.classify_rows(raw, ref)
            expected = validate.aggregate_account_usage(classified).collect()
            assert_frame_equal(usage.sort(keys), expected.select(usage.columns).sort(keys))
            assert_frame_equal(quarantine, validate.select_quarantine(classified).collect())
