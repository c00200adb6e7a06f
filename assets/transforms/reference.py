"""Reference data from `seeds/`: regions, counties, crosswalk, tiers, clusters, industries, products, population.

Pure polars; every table is small, so these are eager DataFrames built once per run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"
MUNICIPALITIES = ("110000", "120000", "310000", "500000")
UNALLOCATED = "unallocated"
POPULATION_SCHEMA = {"geo_level": pl.String, "geo_code": pl.String, "name_zh": pl.String, "year": pl.Int64,
                     "population": pl.Int64, "source": pl.String}
# CBN's six tiers; the source whitepaper publishes five, with 新一线 folded into 二线.
TIERS_SIX = [("tier1", "一线", "Tier 1"), ("new_tier1", "新一线", "New tier 1"), ("tier2", "二线", "Tier 2"),
             ("tier3", "三线", "Tier 3"), ("tier4", "四线", "Tier 4"), ("tier5", "五线", "Tier 5")]


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _short(regions: pl.DataFrame) -> pl.Expr:
    """A region's short Chinese name (上海, 宁夏: `short_zh` of seeds/regions.csv), else its full name."""
    return (pl.col("short_zh") if "short_zh" in regions.columns else pl.col("name_zh")).alias("name_short")



@dataclass(frozen=True)
class Reference:
    """The seeds as tables the transforms join against."""

    regions: pl.DataFrame  # level, code, name_zh, name_en, province_code
    counties: pl.DataFrame  # code, name_zh, city_code
    crosswalk: pl.DataFrame  # old_code, new_code, year
    tiers: pl.DataFrame  # city_code, tier, tier_name_zh, vintage
    clusters: pl.DataFrame  # cluster_code, cluster_name_zh, city_code
    industries: pl.DataFrame  # code, name_zh, name_en, aliases, group
    products: pl.DataFrame  # product, metric, name
    tier_scheme: str = "five"
    vintages: dict = field(default_factory=dict)
    # geo_level (province|city), geo_code, name_zh, year, population (resident persons), source
    population: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=POPULATION_SCHEMA))

    @property
    def provinces(self) -> pl.DataFrame:
        return self.regions.filter(pl.col("level") == "province")

    @property
    def cities(self) -> pl.DataFrame:
        return self.regions.filter(pl.col("level") == "city")

    def city_geo(self) -> pl.DataFrame:
        """Every city-level entity, the `<province>U` unallocated ones included: geo_code, province_code, names
        (name_zh, name_en, and name_short: 上海 for 上海市)."""
        cities = self.cities.select(pl.col("code").alias("geo_code"), "province_code", "name_zh", "name_en",
                                    _short(self.cities))
        unalloc = (self.provinces.filter(~pl.col("code").is_in(MUNICIPALITIES))
                   .select(pl.concat_str(pl.col("code"), pl.lit("U")).alias("geo_code"),
                           pl.col("code").alias("province_code"),
                           (pl.col("name_zh") + "（未分配到城市）").alias("name_zh"),
                           (pl.col("name_en") + " (unallocated)").alias("name_en"),
                           (_short(self.provinces) + "（未分配）").alias("name_short")))
        return pl.concat([cities, unalloc]).sort("geo_code")

    def city_tier(self) -> pl.DataFrame:
        """geo_code -> tier for every city-level entity; cities off the list and unallocated rows -> `unallocated`."""
        tiers = self.tiers.select(pl.col("city_code").alias("geo_code"), "tier")
        if self.tier_scheme == "five":
            tiers = tiers.with_columns(pl.col("tier").replace("new_tier1", "tier2"))
        return (self.city_geo().select("geo_code").join(tiers, on="geo_code", how="left")
                .with_columns(pl.col("tier").fill_null(UNALLOCATED)))

    def tier_names(self) -> pl.DataFrame:
        rows = [t for t in TIERS_SIX if self.tier_scheme == "six" or t[0] != "new_tier1"]
        rows.append((UNALLOCATED, "未分级", "Unallocated"))
        return (pl.DataFrame(rows, schema=["geo_code", "name_zh", "name_en"], orient="row")
                .with_columns(pl.col("name_zh").alias("name_short")))

    def cluster_names(self) -> pl.DataFrame:
        """geo_code, name_zh, name_en (and name_short, the Chinese name) of each cluster."""
        return (self.clusters.group_by("cluster_code", maintain_order=True)
                .agg(pl.col("cluster_name_zh").first().alias("name_zh"),
                     pl.col("cluster_name_en").first().alias("name_en"))
                .rename({"cluster_code": "geo_code"}).sort("geo_code")
                .with_columns(pl.col("name_zh").alias("name_short")))

    def region_lookup(self) -> pl.DataFrame:
        """Every code a raw row may carry -> (geo_code, province_code) of the city-level entity it lands in.

        A municipality's own code and its 市辖区/县 placeholders mean the municipality; any other province code,
        or a province's 省直辖 placeholder, means "somewhere in that province" (`<province>U`); retired codes go
        through the crosswalk to today's unit.
        """
        cities = self.cities.select("code", pl.col("code").alias("geo_code"), "province_code")
        county = (self.counties.join(self.cities.select(pl.col("code").alias("city_code"), "province_code"),
                                     on="city_code").select("code", pl.col("city_code").alias("geo_code"),
                                                            "province_code"))
        provinces = self.provinces.select(
            "code",
            pl.when(pl.col("code").is_in(MUNICIPALITIES)).then(pl.col("code"))
            .otherwise(pl.concat_str(pl.col("code"), pl.lit("U"))).alias("geo_code"),
            pl.col("code").alias("province_code"))
        current = pl.concat([cities, county, provinces]).unique("code", keep="first")
        retired = (self.crosswalk.join(current.rename({"code": "new_code"}), on="new_code")
                   .select(pl.col("old_code").alias("code"), "geo_code", "province_code")
                   .join(current, on="code", how="anti"))
        # Placeholders, where no real or retired unit holds the code: a municipality's 市辖区 / 县 (110100, 500200)
        # mean the municipality; a province's 省直辖县级行政区划 (429000) means somewhere in the province.
        # (Other provinces' xx0200-style codes are retired cities, e.g. 510200, 重庆 before 1997.)
        placeholders = pl.concat([
            pl.DataFrame({"province_code": list(MUNICIPALITIES)}).join(
                pl.DataFrame({"suffix": ["0100", "0200", "0300"]}), how="cross")
            .with_columns(pl.col("province_code").alias("geo_code")),
            self.provinces.filter(~pl.col("code").is_in(MUNICIPALITIES)).select(pl.col("code").alias("province_code"))
            .with_columns(pl.lit("9000").alias("suffix"), (pl.col("province_code") + "U").alias("geo_code")),
        ]).select((pl.col("province_code").str.slice(0, 2) + pl.col("suffix")).alias("code"), "geo_code",
                  "province_code")
        known = pl.concat([current, retired])
        placeholders = placeholders.join(known, on="code", how="anti")
        return pl.concat([known, placeholders]).unique("code", keep="first").sort("code")

    def entity_population(self) -> pl.DataFrame:
        """geo_level, geo_code, year, population of every entity with one: provinces and cities from
        seeds/population.csv, national = sum of the provinces, tiers and clusters = sum of their members when every
        member has a figure (`assets.transforms.analytics.entity_population`)."""
        from assets.transforms.analytics import entity_population

        return entity_population(self.population, self.city_tier(), self.clusters)

    def industry_lookup(self) -> pl.DataFrame:
        """Every spelling of an industry (code, Chinese name, alias; trimmed, lower-cased) -> its code."""
        ind = self.industries
        names = pl.concat([
            ind.select(pl.col("code").alias("spelling"), "code"),
            ind.select(pl.col("name_zh").alias("spelling"), "code"),
            ind.select(pl.col("name_en").alias("spelling"), "code"),
            ind.select(pl.col("aliases").str.split("|").alias("spelling"), "code").explode("spelling"),
        ])
        return (names.filter(pl.col("spelling").is_not_null() & (pl.col("spelling").str.strip_chars() != ""))
                .with_columns(pl.col("spelling").str.strip_chars().str.to_lowercase())
                .unique("spelling", keep="first").sort("spelling"))

    def product_lookup(self) -> pl.DataFrame:
        return self.products.select(pl.col("product").str.strip_chars().str.to_lowercase(),
                                    pl.col("metric").alias("product_metric")).unique("product", keep="first")


def load_reference(seeds_dir: str | Path | None = None, products_path: str | Path | None = None,
                   tier_scheme: str = "five", tier_vintage: str | None = None) -> Reference:
    seeds = Path(seeds_dir) if seeds_dir else SEEDS_DIR
    if tier_scheme not in ("five", "six"):
        raise ValueError(f"tier_scheme must be 'five' or 'six', not {tier_scheme!r}")
    products = Path(products_path) if products_path else seeds / "products.csv"
    prods = _read(products)
    missing = {"product", "metric"} - set(prods.columns)
    if missing:
        raise ValueError(f"{products}: missing column {sorted(missing)[0]}")
    bad = prods.filter(~pl.col("metric").is_in(["cloud", "ai"]))
    if bad.height:
        raise ValueError(f"{products}: row {bad.row(0, named=True)['product']!r}: metric must be cloud or ai")
    tiers = _read(seeds / "city_tiers.csv")
    population = read_population(seeds / "population.csv")
    vintages = {"regions": "GB/T 2260 (see seeds/README.md)",
                "city_tiers": sorted(set(tiers["vintage"])) if "vintage" in tiers.columns else [],
                "population": sorted(set(population["year"].cast(pl.String)))}
    return Reference(
        regions=_read(seeds / "regions.csv"),
        counties=_read(seeds / "counties.csv"),
        crosswalk=_read(seeds / "region_crosswalk.csv"),
        tiers=_one_vintage(tiers, tier_vintage),
        clusters=_read(seeds / "city_clusters.csv"),
        industries=_read(seeds / "industries.csv"),
        products=prods.with_columns(pl.col("name") if "name" in prods.columns else pl.col("product").alias("name")),
        tier_scheme=tier_scheme,
        vintages=vintages,
        population=population,
    )


def read_population(path: Path) -> pl.DataFrame:
    """seeds/population.csv with typed year and population; a seeds folder without one has no per-capita measures."""
    if not path.exists():
        return pl.DataFrame(schema=POPULATION_SCHEMA)
    return _read(path).select(list(POPULATION_SCHEMA)).cast(POPULATION_SCHEMA)


def _one_vintage(tiers: pl.DataFrame, vintage: str | None = None) -> pl.DataFrame:
    """One tier list: the default vintage (the earliest, closest to the source's period) unless one is named."""
    if "vintage" not in tiers.columns:
        return tiers
    chosen = vintage or min(tiers["vintage"].unique().to_list())
    if chosen not in set(tiers["vintage"]):
        raise ValueError(f"city_tiers.csv: no vintage {chosen!r}")
    return tiers.filter(pl.col("vintage") == chosen)
