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


# 第七次全国人口普查公报（第三号）, 国家统计局, 2021-05-11: resident population of each province (persons). The
# national figure, 1,411,778,724, also counts 2,000,000 active-duty military that belong to no province.
CENSUS_2020 = {
    "北京市": 21893095, "天津市": 13866009, "河北省": 74610235, "山西省": 34915616, "内蒙古自治区": 24049155,
    "辽宁省": 42591407, "吉林省": 24073453, "黑龙江省": 31850088, "上海市": 24870895, "江苏省": 84748016,
    "浙江省": 64567588, "安徽省": 61027171, "福建省": 41540086, "江西省": 45188635, "山东省": 101527453,
    "河南省": 99365519, "湖北省": 57752557, "湖南省": 66444864, "广东省": 126012510, "广西壮族自治区": 50126804,
    "海南省": 10081232, "重庆市": 32054159, "四川省": 83674866, "贵州省": 38562148, "云南省": 47209277,
    "西藏自治区": 3648100, "陕西省": 39528999, "甘肃省": 25019831, "青海省": 5923957, "宁夏回族自治区": 7202654,
    "新疆维吾尔自治区": 25852345,
}


def test_population_provinces_match_the_census_bulletin(regions):
    population = read("population.csv")
    assert population.columns[:6] == ["geo_level", "geo_code", "name_zh", "year", "population", "source"]
    provinces = population.filter(pl.col("geo_level") == "province")
    by_name = dict(provinces.select("name_zh", pl.col("population").cast(pl.Int64)).iter_rows())
    assert by_name == CENSUS_2020
    assert sum(by_name.values()) == 1_409_778_724 == 1_411_778_724 - 2_000_000
    names = dict(regions.filter(pl.col("level") == "province").select("code", "name_zh").iter_rows())
    assert dict(provinces.select("geo_code", "name_zh").iter_rows()) == names  # every province, by its code


def test_population_cities_are_cities_and_the_gaps_are_listed(regions, cities):
    population = read("population.csv")
    assert not population.select("geo_level", "geo_code", "year").is_duplicated().any()
    listed = population.filter(pl.col("geo_level") == "city")
    assert set(listed["geo_code"]) <= cities and listed.height == 293
    assert (listed["population"].cast(pl.Int64) > 0).all()
    gaps = cities - set(listed["geo_code"])
    readme = (SEEDS / "README.md").read_text(encoding="utf-8")
    section = readme.split("without a figure", 1)[1]
    assert len(gaps) == 76 and all(code in section for code in gaps)
    # a province's cities never hold more residents than the province
    province = dict(population.filter(pl.col("geo_level") == "province")
                    .select("geo_code", pl.col("population").cast(pl.Int64)).iter_rows())
    of = dict(regions.filter(pl.col("level") == "city").select("code", "province_code").iter_rows())
    summed = listed.group_by(pl.col("geo_code").replace_strict(of).alias("p")).agg(pl.col("population").cast(pl.Int64)
                                                                                    .sum())
    assert all(total <= province[p] for p, total in summed.iter_rows())


def test_population_loads_through_the_reference():
    from assets.transforms.reference import load_reference

    reference = load_reference()
    entities = reference.entity_population()
    national = entities.filter(pl.col("geo_level") == "national")
    assert national.select("geo_code", "year", "population").rows() == [("CN", 2020, 1_409_778_724.0)]
    tiers = set(entities.filter(pl.col("geo_level") == "tier")["geo_code"])
    assert "unallocated" not in tiers  # it holds the <province>U rows, which have no residents of their own
    assert reference.vintages["population"] == ["2020"]
