"""Integrity of the reference data in seeds/."""

from pathlib import Path

import polars as pl
import pytest

SEEDS = Path(__file__).parents[1] / "seeds"
CSVS = sorted(p.name for p in SEEDS.glob("*.csv"))
INDUSTRY_CODES = [
    "finance", "industry_saas", "cultural_creative", "real_estate", "lifestyle_internet", "retail", "education",
    "healthcare", "tourism", "broadcasting", "manufacturing", "ecommerce", "gaming", "government", "energy",
    "mobile", "transport", "other",
]
TIER_COUNTS_2020 = {"tier1": 4, "new_tier1": 15, "tier2": 30, "tier3": 70, "tier4": 90, "tier5": 128}


def read(name: str) -> pl.DataFrame:
    return pl.read_csv(SEEDS / name, infer_schema=False)


@pytest.fixture(scope="module")
def regions() -> pl.DataFrame:
    return read("regions.csv")


@pytest.fixture(scope="module")
def cities(regions) -> set[str]:
    return set(regions.filter(pl.col("level") == "city")["code"])


@pytest.fixture(scope="module")
def counties() -> pl.DataFrame:
    return read("counties.csv")


@pytest.mark.parametrize("name", CSVS)
def test_every_csv_has_a_complete_source_column(name):
    frame = read(name)
    assert "source" in frame.columns
    assert frame.filter(pl.col("source").is_null() | (pl.col("source").str.strip_chars() == "")).is_empty()


def test_regions_keys_levels_and_provinces(regions):
    assert regions.columns[:6] == ["level", "code", "name_zh", "name_en", "province_code", "source"]
    assert not regions.select("level", "code").is_duplicated().any()
    assert set(regions["level"]) == {"province", "city"}
    provinces = set(regions.filter(pl.col("level") == "province")["code"])
    assert len(provinces) == 31
    assert set(regions["province_code"]) <= provinces
    assert regions["code"].str.contains(r"^\d{6}$").all()


def test_regions_cities_include_municipalities_and_exclude_placeholders(cities):
    assert {"110000", "120000", "310000", "500000", "419001", "429004", "469001", "659001"} <= cities
    assert not {"110100", "120100", "310100", "500100", "500200", "419000", "429000", "469000", "659000"} & cities
    assert not {c for c in cities if c[:2] in {"71", "81", "82"}}


def test_counties_roll_up_to_cities(counties, cities):
    assert not counties["code"].is_duplicated().any()
    assert set(counties["city_code"]) <= cities
    assert counties.filter(pl.col("code") == "110105")["city_code"].item() == "110000"
    assert counties.filter(pl.col("code") == "429004")["city_code"].item() == "429004"


def test_crosswalk_resolves_to_current_units(regions, counties, cities):
    crosswalk = read("region_crosswalk.csv")
    current = set(regions["code"]) | set(counties["code"])
    assert not crosswalk["old_code"].is_duplicated().any()
    assert set(crosswalk["new_code"]) <= cities | set(counties["code"])
    assert not set(crosswalk["old_code"]) & current
    laiwu = crosswalk.filter(pl.col("old_code") == "371200")
    assert laiwu.select("new_code", "year").rows() == [("370100", "2019")]


def test_tiers_counts_and_cities(cities):
    tiers = read("city_tiers.csv")
    assert not tiers.select("vintage", "city_code").is_duplicated().any()
    assert set(tiers["city_code"]) <= cities
    counts = dict(tiers.filter(pl.col("vintage") == "2020").group_by("tier").len().rows())
    assert counts == TIER_COUNTS_2020
    for _, group in tiers.group_by("vintage"):
        assert dict(group.group_by("tier").len().rows()) == TIER_COUNTS_2020


def test_clusters_members_exist(cities):
    clusters = read("city_clusters.csv")
    assert clusters["cluster_code"].n_unique() == 19
    assert set(clusters["city_code"]) <= cities
    assert not clusters.select("cluster_code", "city_code").is_duplicated().any()
    assert clusters.group_by("cluster_code").agg(pl.col("cluster_name_zh").n_unique())["cluster_name_zh"].max() == 1
    assert clusters.filter(pl.col("cluster_code") == "pearl_delta").height == 9


def test_industries_codes_and_unambiguous_names():
    industries = read("industries.csv")
    assert industries["code"].to_list() == INDUSTRY_CODES
    assert set(industries["group"]) == {"digital_native", "finance", "other", "traditional"}
    labels = industries["code"].to_list() + industries["name_zh"].to_list()
    labels += [a for aliases in industries["aliases"].drop_nulls() for a in aliases.split("|") if a]
    assert len(labels) == len(set(labels))


def test_products_each_in_one_metric():
    products = read("products.csv")
    assert not products["product"].is_duplicated().any()
    assert set(products["metric"]) == {"cloud", "ai"}
    assert products["product"].str.contains(r"^[a-z][a-z0-9_]*$").all()
