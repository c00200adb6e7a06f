"""The Spark engine (PySpark, local mode) gives the polars engine's account usage, quarantine and indices."""
from __future__ import annotations

import shutil
import warnings

import polars as pl
import pytest

if shutil.which("java") is None:
    pytest.skip("the Spark engine needs Java (17+) on PATH; none found", allow_module_level=True)
pytest.importorskip("pyspark", reason="the Spark engine needs PySpark: pip install -e '.[spark]'")

from pipelines.bench.engines import project_indices  # noqa: E402

KEYS = ["metric", "period", "geo_level", "geo_code", "industry"]
MESSY_CSV = """usage_date,account_id,region_code,industry,product,metric,amount
2020-05-02,csv-a,110101,金融,cvm,,12.5
2020-05-03T23:30:00+00:00,csv-a,110000.0,finance,,cloud,7.25
2020-06-30 22:00:00,csv-b,４４０３００,GAMING,cos,,3
2020-04-01T00:30:00+08:00,csv-c,440300,gaming,,ai,1.5
2020-04-02, csv-d ,440300,,,cloud, 8
2020-04-03,csv-e,440300,nonsense,,cloud,1
2020-04-04,,440300,gaming,,cloud,1
2020-04-05,csv-f,999999,gaming,,cloud,1
2020-04-06,csv-g,440300,gaming,,power,1
2020-04-07,csv-h,440300,gaming,,cloud,-1
2020-04-08,csv-i,440300,gaming,,cloud,abc
not a date,csv-j,440300,gaming,,cloud,1
"""

# accounts grouped into customers (privacy's contributors), with spaces and an empty id (the account alone)
CUSTOMERS_CSV = """usage_date,account_id,region_code,industry,product,metric,amount,customer_id
2020-08-02,cu-a,440300,finance,,cloud,10,cust-1
2020-08-03,cu-b,440300,finance,,cloud,20, cust-1
2020-08-04,cu-c,440300,finance,,cloud,30,cust-1
2020-08-05,cu-c,110000,finance,,cloud,5,cust-1
2020-08-06,cu-d,440300,finance,,cloud,7,
2020-08-07,cu-e,440300,finance,,cloud,9,cust-2
"""


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    from assets.transforms import spark_cube
    from pipelines.demo.data import write_demo_raw

    root = tmp_path_factory.mktemp("spark")
    raw = root / "raw"
    write_demo_raw(raw, rows=40_000, seed=11)
    (raw / "extra").mkdir()
    (raw / "extra" / "late.csv").write_text(MESSY_CSV, encoding="utf-8")
    (raw / "extra" / "customers.csv").write_text(CUSTOMERS_CSV, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spark = spark_cube.session("local[2]")
        polars_run = project_indices(raw, root / "polars")
        spark_run = project_indices(raw, root / "spark", engine="spark", spark=spark)
    return root, polars_run, spark_run


def test_indices_equal_to_1e9(engines):
    root, polars_run, spark_run = engines
    assert polars_run["quarters"] == spark_run["quarters"]
    a = pl.read_parquet(root / "polars" / "indices.parquet")
    b = pl.read_parquet(root / "spark" / "indices.parquet")
    assert a.height == b.height > 0
    both = a.join(b, on=KEYS, suffix="_s", how="full", coalesce=True)
    assert both.height == a.height
    for col in ("value", "amount", "top_contributor_amount", "second_contributor_amount"):
        a_, b_ = pl.col(col), pl.col(f"{col}_s")
        worst = both.select(((a_ - b_).abs() / pl.max_horizontal(a_.abs(), b_.abs(), pl.lit(1e-300))).max()).item()
        assert worst <= 1e-9, (col, worst)
    assert (both["accounts"] == both["accounts_s"]).all()
    assert (both["contributors"] == both["contributors_s"]).all()
    # the customers' file: cust-1 holds three accounts in 440300 x finance, one of them also in 110000
    cell = a.filter((pl.col("period") == "2020Q3") & (pl.col("geo_code") == "440300")
                    & (pl.col("industry") == "finance") & (pl.col("metric") == "cloud"))
    assert cell["accounts"].item() - cell["contributors"].item() >= 2
    assert a.filter(pl.col("period") == "2020Q2")["accounts"].sum() > 0


def test_account_usage_and_quarantine_equal(engines):
    root, polars_run, _ = engines
    keys = ["metric", "geo_code", "province_code", "industry", "account_id"]
    for quarter in polars_run["quarters"]:
        a = pl.read_parquet(root / "polars" / "account_usage" / f"{quarter}.parquet").sort(keys)
        b = pl.read_parquet(root / "spark" / "account_usage" / f"{quarter}.parquet").sort(keys)
        assert a.schema == b.schema
        assert a.select(keys, "rows").equals(b.select(keys, "rows"))
        diff = (a["amount"].cast(pl.Float64) - b["amount"].cast(pl.Float64)).abs()
        assert float(diff.max() or 0) <= 1e-8
        qa = pl.read_parquet(root / "polars" / "quarantine" / f"{quarter}.parquet")
        qb = pl.read_parquet(root / "spark" / "quarantine" / f"{quarter}.parquet")
        cols = ["source_file", "source_row", "reason"]
        assert qa.select(cols).sort(cols).equals(qb.select(cols).sort(cols)), quarter
    late = pl.read_parquet(root / "spark" / "quarantine" / "2020Q2.parquet").filter(
        pl.col("source_file").str.contains("late"))
    assert set(late["reason"]) == {"unknown_industry", "missing_account", "unknown_region", "invalid_metric",
                                   "invalid_amount"}
