"""Each transformation on its own, on tiny frames (no Dagster)."""
import datetime as dt

import polars as pl
import pytest

from assets.transforms.annual import complete_years
from assets.transforms.base import compute_base_totals
from assets.transforms.cube import build_cube
from assets.transforms.indices import index_grid, normalise_to_base_period
from assets.transforms.errors import InputError
from assets.transforms.ingest.read import parse_usage_date
from assets.transforms.quarters import quarters_between
from assets.transforms.reference import load_reference
from assets.transforms.validate import aggregate_account_usage, classify_rows, usage_and_quarantine


@pytest.fixture(scope="module")
def ref():
    return load_reference()


def test_region_lookup_resolves_every_kind_of_code(ref):
    lookup = dict(ref.region_lookup().select("code", "geo_code").iter_rows())
    assert lookup["440300"] == "440300"  # a city
    assert lookup["440305"] == "440300"  # a county (南山区) -> its city
    assert lookup["371200"] == "370100"  # retired 莱芜 -> 济南
    assert lookup["110000"] == "110000" and lookup["110100"] == "110000"  # municipality and its placeholder
    assert lookup["440000"] == "440000U"  # a province code: unallocated
    assert lookup["429004"] == "429004"  # 仙桃, province-administered, a city of its own
    assert lookup["429000"] == "420000U"


def test_industry_lookup_takes_codes_names_and_aliases(ref):
    lookup = dict(ref.industry_lookup().iter_rows())
    assert lookup["finance"] == lookup["金融"] == "finance"
    assert lookup["智慧零售"] == "retail" and lookup["政府"] == "government"


def test_dates_are_china_standard_time():
    frame = pl.DataFrame({"usage_date": ["2020-03-31", "2020-03-31T20:00:00Z", "2020-03-31 10:00:00+08:00",
                                         "2020-02-30", "31/03/2020", None]})
    out = frame.select(parse_usage_date(pl.String))["usage_date"].to_list()
    assert out == [dt.date(2020, 3, 31), dt.date(2020, 4, 1), dt.date(2020, 3, 31), None, None, None]


def test_quarters_between_is_contiguous():
    assert quarters_between("2020Q3", "2021Q2") == ["2020Q3", "2020Q4", "2021Q1", "2021Q2"]
    assert complete_years(quarters_between("2020Q1", "2021Q1")) == ["2020"]


def _rows(**columns):
    n = len(next(iter(columns.values())))
    base = {"usage_date": [dt.date(2020, 1, 5)] * n, "usage_date_raw": ["2020-01-05"] * n,
            "account_id": ["a"] * n, "region_code": ["440300"] * n, "industry": [None] * n,
            "product": ["cvm"] * n, "metric": [None] * n, "amount": [1.0] * n, "amount_raw": [None] * n,
            "source_file": ["f.csv"] * n, "source_row": list(range(1, n + 1))}
    base.update(columns)
    return pl.DataFrame(base, schema_overrides={"usage_date": pl.Date, "amount": pl.Float64, "metric": pl.String,
                                                "industry": pl.String, "amount_raw": pl.String})


def test_first_reason_in_contract_order_wins(ref):
    rows = _rows(account_id=["", "a", "a", "a", "a", "a"], region_code=["999999", "999999", "440300", "440300",
                                                                         "440300", "440300"],
                 industry=[None, None, "nope", None, None, None], metric=[None, None, None, "bogus", "ai", None],
                 product=["cvm", "cvm", "cvm", "cvm", "cvm", "asr"], amount=[1.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    reasons = classify_rows(rows.lazy(), ref).collect()["reason"].to_list()
    assert reasons == ["missing_account", "unknown_region", "unknown_industry", "invalid_metric",
                       "metric_conflict", "invalid_amount"]


def test_cube_counts_distinct_accounts_at_each_level(ref):
    rows = _rows(account_id=["a", "a", "b"], region_code=["440300", "440100", "440300"],
                 industry=["finance", "gaming", "finance"], amount=[1.0, 2.0, 0.0])
    usage = aggregate_account_usage(classify_rows(rows.lazy(), ref))
    cube = build_cube(usage, ref).collect()
    cell = {(r["geo_level"], r["geo_code"], r["industry"]): r for r in cube.iter_rows(named=True)}
    assert cell[("province", "440000", "all")]["accounts"] == 1  # one account in two cities; b has amount 0
    assert cell[("province", "440000", "all")]["amount"] == 3.0
    assert cell[("city", "440300", "finance")]["accounts"] == 1
    assert cell[("national", "CN", "all")]["top_contributor_amount"] == 3.0
    assert cell[("national", "CN", "all")]["second_contributor_amount"] == 0.0  # b's 0.0
    assert cell[("national", "CN", "all")]["contributors"] == 1


def test_cube_contributors_are_customers(ref):
    """Accounts a and b are one customer; c is its own: 2 contributors, 3 accounts, the two largest customers."""
    rows = _rows(account_id=["a", "b", "c", "b"], customer_id=["cust", " cust ", "", "cust"],
                 region_code=["440300", "440100", "440300", "440300"], amount=[1.0, 2.0, 4.0, 0.5])
    usage = aggregate_account_usage(classify_rows(rows.lazy(), ref))
    cube = build_cube(usage, ref).collect()
    cell = {(r["geo_level"], r["geo_code"], r["industry"]): r for r in cube.iter_rows(named=True)}
    province = cell[("province", "440000", "all")]
    assert (province["accounts"], province["contributors"]) == (3, 2)
    assert (province["top_contributor_amount"], province["second_contributor_amount"]) == (4.0, 3.5)
    city = cell[("city", "440300", "other")]
    assert (city["accounts"], city["contributors"], city["top_contributor_amount"],
            city["second_contributor_amount"]) == (3, 2, 4.0, 1.5)
    fast, _ = usage_and_quarantine(rows.lazy(), ref)
    assert build_cube(fast.lazy(), ref).collect().sort("geo_level", "geo_code", "industry").equals(
        cube.sort("geo_level", "geo_code", "industry"))


def test_indices_are_relative_to_the_base_national_total(ref):
    rows = _rows(region_code=["440300", "110000"], amount=[1.0, 3.0])
    cube = build_cube(aggregate_account_usage(classify_rows(rows.lazy(), ref)), ref).collect()
    base = compute_base_totals(cube, "2020Q1", ["cloud"])
    table = normalise_to_base_period(cube, base, index_grid(ref, ["cloud"]), "2020Q1")
    value = {(r["geo_level"], r["geo_code"], r["industry"]): r["value"] for r in table.iter_rows(named=True)}
    assert value[("national", "CN", "all")] == 100.0
    assert value[("city", "440300", "all")] == 25.0 and value[("city", "110000", "all")] == 75.0
    assert value[("city", "440100", "all")] == 0.0  # zero cells are published
    assert table.height == index_grid(ref, ["cloud"]).height


def test_base_total_of_zero_is_a_whole_input_error(ref):
    rows = _rows(amount=[0.0])
    cube = build_cube(aggregate_account_usage(classify_rows(rows.lazy(), ref)), ref).collect()
    with pytest.raises(InputError, match="base total of 0"):
        compute_base_totals(cube, "2020Q1", ["cloud"])
    with pytest.raises(InputError, match="no rows in the base quarter"):
        compute_base_totals(cube.clear(), "2020Q1", ["cloud"])


def test_inventory_reuses_unchanged_files_and_rereads_changed_ones(tmp_path):
    import os

    from assets.transforms.ingest.inventory import inventory_files

    raw = tmp_path / "raw"
    raw.mkdir()
    rows = _rows(amount=[1.0, 2.0]).select("usage_date", "account_id", "region_code", "product", "amount")
    rows.write_parquet(raw / "a.parquet")
    known = inventory_files(raw)
    stat = (raw / "a.parquet").stat()
    (raw / "a.parquet").write_bytes(b"x" * stat.st_size)  # same size, same time: a known file is not read again
    os.utime(raw / "a.parquet", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert inventory_files(raw, known).equals(known)
    with pytest.raises(InputError, match="unreadable"):
        inventory_files(raw)
    os.utime(raw / "a.parquet", ns=(0, 0))  # touched: read again, and found unreadable
    with pytest.raises(InputError, match="unreadable"):
        inventory_files(raw, known)


def test_a_sample_is_the_quarters_first_rows_however_far_its_undated_rows_push_them(tmp_path):
    from assets.transforms.ingest.inventory import inventory_files
    from assets.transforms.ingest.read import read_raw

    raw = tmp_path / "raw"
    raw.mkdir()
    dates = ["2021-02-29", "2020-13-01", "2020-02-01", "2020-05-01", "2020-02-02", "2020-02-03"]
    rows = _rows(amount=[float(i) for i in range(len(dates))]).with_columns(pl.Series("usage_date", dates))
    columns = ["usage_date", "account_id", "region_code", "product", "amount"]
    rows.filter(pl.col("amount") != 3.0).select(columns).write_csv(raw / "a_2020Q1.csv")  # read first
    rows.select(columns).write_csv(raw / "b_2020Q1_Q2.csv")
    inventory = inventory_files(raw)
    assert inventory["undated_rows"].to_list() == [2, 2]
    for quarters in (["2020Q1"], ["2020Q2"], ["2020Q1", "2020Q2"]):
        whole = read_raw(inventory, quarters).collect()
        for first in (1, 2, 3, 5, 20):
            assert read_raw(inventory, quarters, first=first).collect().equals(whole.head(first)), (quarters, first)
