"""The asset graph materialised in-process on a small fixture: release structure, checks, reruns, errors."""
import datetime as dt
import json
import random
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from release_contract import check_release

ROOT = Path(__file__).resolve().parents[1]


def write_fixture(path: Path, seed: int = 7, quarters: int = 5, rows_per_quarter: int = 300) -> Path:
    rng = random.Random(seed)
    codes = ["110000", "110105", "310000", "440300", "440305", "440100", "510100", "370100", "371200", "440000",
             "650000", "429004", "500200"]
    industries = ["finance", "金融", "智慧零售", None, "gaming", "政府", "", "manufacturing"]
    products = [("cvm", None), ("asr", None), ("cos", "cloud"), ("anything", "ai"), ("ocr", "ai")]
    rows = []
    for q in range(quarters):
        year, month = 2020 + q // 4, 3 * (q % 4) + 1
        for _ in range(rows_per_quarter):
            product, metric = rng.choice(products)
            rows.append({"usage_date": (dt.date(year, month, 1) + dt.timedelta(days=rng.randint(0, 85))).isoformat(),
                         "account_id": f"acct-{rng.randint(1, 80)}", "region_code": rng.choice(codes),
                         "industry": rng.choice(industries), "product": product, "metric": metric,
                         "amount": round(rng.lognormvariate(2, 1.5), 4)})
    rows.append({"usage_date": "not a date", "account_id": "acct-1", "region_code": "110000", "industry": None,
                 "product": "cvm", "metric": None, "amount": 1.0})
    rows.append({"usage_date": "2020-02-01", "account_id": "acct-1", "region_code": "999999", "industry": None,
                 "product": "cvm", "metric": None, "amount": 1.0})
    pl.DataFrame(rows).write_csv(path)
    return path


@pytest.fixture(scope="module")
def fixture_raw(tmp_path_factory) -> Path:
    return write_fixture(tmp_path_factory.mktemp("raw") / "usage.csv")


@pytest.fixture(scope="module")
def release(fixture_raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel") / "release"
    assert main(["run", "--raw", str(fixture_raw), "--out", str(out)]) == 0
    return out


def test_release_meets_the_contract(release):
    assert check_release(release, ROOT / "seeds") == []


def test_every_stage_ran_its_checks_and_passed(release):
    quality = json.loads((release / "quality.json").read_text())
    assert set(quality) >= {"ingest", "validate", "cube", "base", "indices", "annual", "privacy", "publish"}
    assert all(stage["checks_run"] > 0 and stage["failed"] == 0 for stage in quality.values())


def test_rows_reconcile(release):
    counts = json.loads((release / "manifest.json").read_text())["row_counts"]
    assert counts["rows_in"] == counts["rows_used"] + counts["rows_quarantined"] == 1502
    reasons = pl.read_parquet(release / "quarantine.parquet")["reason"].to_list()
    assert sorted(reasons) == ["invalid_date", "unknown_region"]


def test_cli_runs_are_runs_of_the_named_job_over_the_quarters(release):
    """The CLI launches the job the UI runs (so the run-failure alert sees its runs): the inventory, then one run over
    the whole quarter range."""
    from pipelines.release import open_instance

    instance = open_instance(release)
    assert instance.get_dynamic_partitions("quarter") == ["2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"]
    runs = list(reversed(instance.get_runs()))
    assert [run.job_name for run in runs] == ["quarterly_release", "quarterly_release"]
    assert runs[1].tags["dagster/asset_partition_range_start"] == "2020Q1"
    assert runs[1].tags["dagster/asset_partition_range_end"] == "2021Q1"
    instance.dispose()


def test_the_release_instance_is_one_a_stock_dagster_opens(release, tmp_path):
    """Its dagster.yaml names no class of the project's; a copy moved elsewhere opens with its history."""
    import shutil

    import dagster as dg
    import yaml

    config = yaml.safe_load((release / ".dagster" / "dagster.yaml").read_text())
    assert "storage" not in config and "yunzhi" not in json.dumps(config) and "pipelines" not in json.dumps(config)
    moved = tmp_path / "moved"
    shutil.copytree(release / ".dagster", moved)
    instance = dg.DagsterInstance.from_config(str(moved))
    assert len(instance.get_runs()) == 2
    instance.dispose()


def test_rerun_is_byte_identical(fixture_raw, release, tmp_path):
    again = tmp_path / "again"
    assert main(["run", "--raw", str(fixture_raw), "--out", str(again), "--no-report"]) == 0
    published = sorted(p.name for p in release.glob("*.parquet"))
    assert {"indices.parquet", "derived.parquet", "shift_share.parquet", "quarantine.parquet"} <= set(published)
    for name in published:
        assert (again / name).read_bytes() == (release / name).read_bytes(), name
    assert (release / "report" / "index.html").exists() and not (again / "report").exists()


def test_whole_input_errors_name_file_and_column(tmp_path, capsys):
    raw = tmp_path / "bad.csv"
    pl.DataFrame({"usage_date": ["2020-01-01"], "region_code": ["110000"], "product": ["cvm"],
                  "amount": [1.0]}).write_csv(raw)
    assert main(["run", "--raw", str(raw), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.csv" in err[0] and "account_id" in err[0]


def test_every_column_of_every_asset_is_described(release):
    """Each materialised asset's column schema in Dagster carries the data dictionary's description of every column."""
    import dagster as dg

    from pipelines.definitions import ALL_ASSETS
    from pipelines.release import open_instance

    instance = open_instance(release)
    undescribed, seen = [], 0
    for key in (k for a in ALL_ASSETS for k in a.keys):
        event = instance.get_latest_materialization_event(key)
        schema = event.asset_materialization.metadata.get("dagster/column_schema") if event else None
        if schema is None:
            continue
        seen += 1
        undescribed += [f"{key.to_user_string()}.{c.name}" for c in schema.value.columns if not c.description]
    instance.dispose()
    assert seen >= 11 and not undescribed


def test_the_release_documents_itself(release):
    """A data dictionary in the release (datapackage.json, README.md) covers every published table and column, and
    each Parquet file carries the same description for every column."""
    import pyarrow.parquet as pq

    package = json.loads((release / "datapackage.json").read_text())
    resources = {r["name"]: r for r in package["resources"]}
    assert set(resources) == {"indices", "derived", "shift_share", "quarantine", "revisions"}
    readme = (release / "README.md").read_text()
    for name, resource in resources.items():
        schema = pq.read_schema(release / resource["path"])
        fields = {f["name"]: f["description"] for f in resource["schema"]["fields"]}
        assert list(fields) == schema.names
        for field in schema:
            assert field.metadata and field.metadata[b"description"].decode() in fields[field.name], (name, field.name)
            assert f"`{field.name}`" in readme
    status = next(f for f in resources["derived"]["schema"]["fields"] if f["name"] == "status")
    assert status["constraints"]["enum"] == ["ok", "suppressed", "new"] and "zero reference" in status["description"]
    measure = next(f for f in resources["derived"]["schema"]["fields"] if f["name"] == "measure")
    for name in ("contribution_geo", "contribution_industry", "per_million_residents", "usage_ratio", "hhi", "gini",
                 "theil", "theil_between", "theil_within"):
        assert name in measure["constraints"]["enum"] and f"{name}:" in measure["description"]
    effects = {f["name"] for f in resources["shift_share"]["schema"]["fields"]}
    assert {"national_effect", "industry_mix_effect", "competitive_effect", "change"} <= effects
    assert "both province and city level" in package["description"]


def test_the_base_quarters_national_value_is_exactly_100(release):
    indices = pl.read_parquet(release / "indices.parquet")
    base = indices.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                          & (pl.col("period") == pl.col("base_period")))
    assert base.height == 2 and base["value"].to_list() == [100.0, 100.0]
