"""What economists ask next (METHOD.md "Derived measures"; CONTRACT.md "Published release"): contributions to
growth, per-capita measures and concentration, from the disclosed index table. Pure polars and the standard library.

Every sum that makes a published float is taken in a fixed order or exactly (`math.fsum`), so the measures do not
depend on the order of the input rows. A measure with a suppressed input is `suppressed` (value null); a zero
denominator gives `new` (value null), as in `assets.transforms.derived`.
"""
from __future__ import annotations

import math
from collections import defaultdict

import polars as pl

CONTRIBUTION_COMPARISONS = ("qoq", "yoy")
CONTRIBUTION_LEVELS = ("province", "city", "tier")  # each adds up to national; clusters overlap, so they do not
CONCENTRATION_LEVELS = ("province", "city")
CONCENTRATION_MEASURES = ("hhi", "gini", "theil", "theil_between", "theil_within")
GROUPINGS = ("by_province", "by_tier")  # how cities are grouped for theil_between / theil_within
PER_MILLION = 1_000_000


def _status(suppressed: pl.Expr, new: pl.Expr) -> pl.Expr:
    return (pl.when(suppressed).then(pl.lit("suppressed")).when(new).then(pl.lit("new")).otherwise(pl.lit("ok"))
            .alias("status"))


def with_references(cells: pl.DataFrame, refs: pl.DataFrame) -> pl.DataFrame:
    """Each cell with its reference cell (`ref_value`, `ref_status`) for every comparison of `refs` (period,
    period_type -> comparison, reference_period, reference_type) whose reference period is published. Growth and
    both contributions read this one join."""
    ref_cells = cells.select(pl.col("period").alias("reference_period"), pl.col("period_type").alias("reference_type"),
                             "metric", "geo_level", "geo_code", "industry", pl.col("value").alias("ref_value"),
                             pl.col("status").alias("ref_status"))
    return (cells.join(refs, on=["period", "period_type"])
            .join(ref_cells, on=["reference_period", "reference_type", "metric", "geo_level", "geo_code", "industry"]))


def _points(change: pl.Expr, den: str, statuses: list[str]) -> list[pl.Expr]:
    """value = change / den x 100 (percentage points); suppressed if any input is, new where den is 0."""
    suppressed = pl.any_horizontal([pl.col(s) == "suppressed" for s in statuses])
    new = ~suppressed & (pl.col(den) == 0)
    return [pl.when(suppressed | new).then(None).otherwise(change / pl.col(den) * 100.0).alias("value"),
            _status(suppressed, new)]


def contributions_geo(referenced: pl.DataFrame) -> pl.DataFrame:
    """Each province's, city's and tier's change as percentage points of the national cell of the same industry's
    reference value: (x[t] - x[ref]) / national[ref] x 100, qoq and yoy. Each level (with its unallocated entities)
    adds up to the national growth x 100. `referenced`: `with_references` of the cells."""
    joined = referenced.filter(pl.col("comparison").is_in(CONTRIBUTION_COMPARISONS)
                               & pl.col("geo_level").is_in(CONTRIBUTION_LEVELS + ("national",)))
    national = joined.filter(pl.col("geo_level") == "national").select(
        "metric", "period", "period_type", "industry", "comparison", pl.col("ref_value").alias("national_ref"),
        pl.col("ref_status").alias("national_ref_status"))
    out = (joined.filter(pl.col("geo_level") != "national")
           .join(national, on=["metric", "period", "period_type", "industry", "comparison"])
           .with_columns(*_points(pl.col("value") - pl.col("ref_value"), "national_ref",
                                  ["status", "ref_status", "national_ref_status"])))
    return out.with_columns(pl.lit("contribution_geo").alias("measure"))


def contributions_industry(referenced: pl.DataFrame) -> pl.DataFrame:
    """Each industry's change within its entity as percentage points of that entity's all-industry reference value,
    qoq and yoy, at every level: the industries add up to the entity's growth x 100. `referenced`: `with_references`
    of the cells."""
    joined = referenced.filter(pl.col("comparison").is_in(CONTRIBUTION_COMPARISONS))
    keys = ["metric", "period", "period_type", "geo_level", "geo_code", "comparison"]
    totals = joined.filter(pl.col("industry") == "all").select(*keys, pl.col("ref_value").alias("all_ref"),
                                                               pl.col("ref_status").alias("all_ref_status"))
    out = (joined.filter(pl.col("industry") != "all").join(totals, on=keys)
           .with_columns(*_points(pl.col("value") - pl.col("ref_value"), "all_ref",
                                  ["status", "ref_status", "all_ref_status"])))
    return out.with_columns(pl.lit("contribution_industry").alias("measure"))


# ---- per capita -----------------------------------------------------------------------------------------------------

def entity_population(population: pl.DataFrame, city_tiers: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """geo_level, geo_code, year, population (persons) of every entity that has one: provinces and cities as given,
    national = the sum of the provinces, tiers and clusters = the sum of their member cities when every member has a
    figure (a tier or cluster with a gap has none; tier `unallocated` holds the `<province>U` rows, so it never has
    one). `city_tiers`: geo_code, tier of every city-level entity; `members`: cluster_code, city_code."""
    pop = population.select("geo_level", "geo_code", pl.col("year").cast(pl.Int64),
                            pl.col("population").cast(pl.Float64))
    provinces = pop.filter(pl.col("geo_level") == "province")
    cities = pop.filter(pl.col("geo_level") == "city")
    national = (provinces.sort("geo_code").group_by("year", maintain_order=True)
                .agg(pl.col("population").sum())
                .select(pl.lit("national").alias("geo_level"), pl.lit("CN").alias("geo_code"), "year", "population"))
    groups = pl.concat([city_tiers.select(pl.lit("tier").alias("geo_level"), pl.col("tier").alias("geo_code"),
                                          pl.col("geo_code").alias("city_code")),
                        members.select(pl.lit("cluster").alias("geo_level"), pl.col("cluster_code").alias("geo_code"),
                                       "city_code").unique()])
    sizes = groups.group_by("geo_level", "geo_code").agg(pl.len().alias("n_members"))
    summed = (groups.join(cities.select(pl.col("geo_code").alias("city_code"), "year", "population"), on="city_code")
              .sort("geo_level", "geo_code", "year", "city_code")
              .group_by("geo_level", "geo_code", "year", maintain_order=True)
              .agg(pl.col("population").sum(), pl.len().alias("n_known"))
              .join(sizes, on=["geo_level", "geo_code"])
              .filter(pl.col("n_known") == pl.col("n_members")).select("geo_level", "geo_code", "year", "population"))
    return pl.concat([national, provinces, cities, summed]).sort("geo_level", "geo_code", "year")


def population_for_periods(cells: pl.DataFrame, population: pl.DataFrame) -> pl.DataFrame:
    """period, geo_level, geo_code, population: each period takes the latest population year not after the period's
    year, else the earliest year there is (a census is every ten years; before the first one, the first one)."""
    periods = cells.select("period", pl.col("period").str.slice(0, 4).cast(pl.Int64).alias("period_year")).unique()
    chosen = (periods.join(population.select("geo_level", "geo_code", "year"), how="cross")
              .group_by("period", "geo_level", "geo_code")
              .agg(pl.col("year").filter(pl.col("year") <= pl.col("period_year")).max().alias("before"),
                   pl.col("year").min().alias("first"))
              .select("period", "geo_level", "geo_code", pl.coalesce("before", "first").alias("year")))
    return chosen.join(population, on=["geo_level", "geo_code", "year"]).drop("year")


def per_capita(cells: pl.DataFrame, population: pl.DataFrame) -> pl.DataFrame:
    """per_million_residents (index points per million residents) for every entity with a population, and
    usage_ratio = (value / national value) / (population / national population) for every one below national
    (the Anthropic Economic Index's usage-per-capita index: 1 = usage in proportion to residents)."""
    pops = population_for_periods(cells, population)
    joined = cells.join(pops, on=["period", "geo_level", "geo_code"])
    national = joined.filter(pl.col("geo_level") == "national").select(
        "metric", "period", "period_type", "industry", pl.col("value").alias("national_value"),
        pl.col("status").alias("national_status"), pl.col("population").alias("national_population"))
    hidden = pl.col("status") == "suppressed"
    per_million = joined.with_columns(
        pl.when(hidden).then(None).otherwise(pl.col("value") / pl.col("population") * PER_MILLION).alias("value"),
        _status(hidden, pl.lit(False)), pl.lit("per_million_residents").alias("measure"))
    below = joined.filter(pl.col("geo_level") != "national").join(
        national, on=["metric", "period", "period_type", "industry"])
    suppressed = hidden | (pl.col("national_status") == "suppressed")
    new = ~suppressed & (pl.col("national_value") == 0)
    ratio = below.with_columns(
        pl.when(suppressed | new).then(None)
        .otherwise((pl.col("value") / pl.col("national_value"))
                   / (pl.col("population") / pl.col("national_population"))).alias("value"),
        _status(suppressed, new), pl.lit("usage_ratio").alias("measure"))
    return pl.concat([per_million, ratio], how="diagonal_relaxed")


# ---- concentration --------------------------------------------------------------------------------------------------

def hhi(values: list[float]) -> float:
    """Herfindahl-Hirschman index of the shares, a fraction (1/n for equal shares, 1 for one entity holding all)."""
    total = math.fsum(values)
    return math.fsum((v / total) ** 2 for v in values)


def gini(values: list[float]) -> float:
    """Gini coefficient: 2 x sum(i x[i]) / (n x total) - (n + 1) / n over the values in ascending order."""
    ordered, n = sorted(values), len(values)
    return 2.0 * math.fsum(i * v for i, v in enumerate(ordered, start=1)) / (n * math.fsum(ordered)) - (n + 1) / n


def theil(values: list[float]) -> float:
    """Theil T index: sum of s ln(n s) over the shares s (0 ln 0 = 0); 0 for equal values, ln n for one holding all."""
    total, n = math.fsum(values), len(values)
    return math.fsum(v / total * math.log(n * v / total) for v in values if v > 0)


def theil_decomposition(values: list[float], groups: list[str]) -> tuple[float, float]:
    """Theil T split into between groups, sum S_g ln(S_g / (n_g / n)), and within them, sum S_g T_g (S_g: a group's
    share, n_g its size, T_g the Theil index inside it); between + within = theil."""
    total, n = math.fsum(values), len(values)
    members: dict[str, list[float]] = defaultdict(list)
    for v, g in zip(values, groups):
        members[g].append(v / total)
    between, within = [], []
    for shares in members.values():
        share = math.fsum(shares)
        if share > 0:
            between.append(share * math.log(n * share / len(shares)))
            within += [s * math.log(len(shares) * s / share) for s in shares if s > 0]
    return math.fsum(between), math.fsum(within)


def concentration(cells: pl.DataFrame, city_tiers: pl.DataFrame) -> pl.DataFrame:
    """hhi, gini, theil across the allocated provinces and across the allocated cities, per metric, period and
    industry, on geo_code CN with geo_level the level they run across; for cities also theil_between and
    theil_within with the cities grouped by province and by tier (`comparison` names the grouping).

    Unallocated usage (`<province>U`) is not an entity whose size means anything (it is usage no city holds), so it
    takes no part, as in ranks and top-N shares: the shares are of the allocated entities' total. Suppressed if any
    entity taking part is suppressed; `new` (no value) where they are all 0.
    """
    tier_of = dict(city_tiers.select("geo_code", "tier").iter_rows())
    names = {(m, p, i): n for m, p, i, n in cells.filter(pl.col("geo_level") == "national")
             .select("metric", "period", "industry", "geo_name").iter_rows()}
    eligible = (cells.filter(pl.col("geo_level").is_in(CONCENTRATION_LEVELS)
                             & ~pl.col("geo_code").str.ends_with("U"))
                .sort("metric", "period_type", "period", "geo_level", "industry", "geo_code"))
    rows = []
    for (metric, ptype, period, level, industry), group in eligible.group_by(
            "metric", "period_type", "period", "geo_level", "industry", maintain_order=True):
        codes, values, statuses = group["geo_code"].to_list(), group["value"].to_list(), group["status"].to_list()
        key = (metric, period, ptype, level, "CN", names.get((metric, period, industry)), industry)
        wanted = [(m, None) for m in ("hhi", "gini", "theil")]
        if level == "city":
            wanted += [(m, g) for g in GROUPINGS for m in ("theil_between", "theil_within")]
        if any(s == "suppressed" for s in statuses):
            rows += [(*key, m, g, None, "suppressed") for m, g in wanted]
            continue
        if math.fsum(values) == 0:
            rows += [(*key, m, g, None, "new") for m, g in wanted]
            continue
        found = {("hhi", None): hhi(values), ("gini", None): gini(values), ("theil", None): theil(values)}
        if level == "city":
            for grouping in GROUPINGS:
                labels = [c[:2] + "0000" if grouping == "by_province" else tier_of.get(c, "unallocated")
                          for c in codes]
                found[("theil_between", grouping)], found[("theil_within", grouping)] = theil_decomposition(
                    values, labels)
        rows += [(*key, m, g, found[m, g], "ok") for m, g in wanted]
    schema = {"metric": pl.String, "period": pl.String, "period_type": pl.String, "geo_level": pl.String,
              "geo_code": pl.String, "geo_name": pl.String, "industry": pl.String, "measure": pl.String,
              "comparison": pl.String, "value": pl.Float64, "status": pl.String}
    return pl.DataFrame(rows, schema=schema, orient="row")


# ---- identities the checks and tests hold the tables to -------------------------------------------------------------

def _off(got: str, want: str, tolerance: float) -> pl.Expr:
    return (pl.col(got) - pl.col(want)).abs() > tolerance * pl.max_horizontal(pl.lit(1.0), pl.col(want).abs())


def contributions_off(derived: pl.DataFrame, tolerance: float = 1e-9) -> pl.DataFrame:
    """Groups of published contributions that do not add up to the growth x 100 they split: a level's
    contribution_geo to the national growth of the industry, an entity's contribution_industry to its `all` growth
    (groups with any row not `ok` are left out: their sum is not published)."""
    growth = derived.filter(pl.col("measure") == "growth").select(
        "metric", "period", "period_type", "geo_level", "geo_code", "industry", "comparison",
        (pl.col("value") * 100.0).alias("want"), pl.col("status").alias("want_status"))
    frames = []
    for measure, by, target, on in (
            ("contribution_geo", ["geo_level", "industry"], pl.col("geo_level") == "national", ["industry"]),
            ("contribution_industry", ["geo_level", "geo_code"], pl.col("industry") == "all",
             ["geo_level", "geo_code"])):
        keys = ["metric", "period", "period_type", "comparison", *by]
        on = ["metric", "period", "period_type", "comparison", *on]
        rows = derived.filter(pl.col("measure") == measure)
        sums = (rows.sort(*keys, "geo_code", "industry").group_by(keys, maintain_order=True)
                .agg(pl.col("value").sum().alias("got"), (pl.col("status") != "ok").any().alias("partial"))
                .filter(~pl.col("partial")))
        wanted = growth.filter(target).select(*on, "want", "want_status")
        joined = sums.join(wanted, on=on).filter((pl.col("want_status") == "ok") & _off("got", "want", tolerance))
        frames.append(joined.select(pl.lit(measure).alias("measure"), *keys, "got", "want"))
    return pl.concat(frames, how="diagonal_relaxed")


def theil_off(derived: pl.DataFrame, tolerance: float = 1e-9) -> pl.DataFrame:
    """Published theil_between + theil_within that differ from theil of the same metric, period, level, industry."""
    keys = ["metric", "period", "period_type", "geo_level", "industry"]
    theil_rows = derived.filter((pl.col("measure") == "theil") & (pl.col("status") == "ok")).select(
        *keys, pl.col("value").alias("want"))
    parts = (derived.filter(pl.col("measure").is_in(["theil_between", "theil_within"]) & (pl.col("status") == "ok"))
             .sort(*keys, "comparison", "measure").group_by([*keys, "comparison"], maintain_order=True)
             .agg(pl.col("value").sum().alias("got"), pl.len().alias("n")).filter(pl.col("n") == 2))
    return parts.join(theil_rows, on=keys).filter(_off("got", "want", tolerance))
