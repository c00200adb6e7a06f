"""Derived measures (METHOD.md "Derived measures"; CONTRACT.md "Published release" and "Privacy") from the disclosed
index table: growth, ranks and their changes, shares, industry multiples, cluster means. Pure polars.

Privacy: a measure of a suppressed cell, or with a suppressed reference, is `suppressed` (value null); ranks skip
suppressed cells; a top-N share is suppressed unless no suppressed cell can be among its N (see `top_n_shares`).
A zero reference (denominator) gives status `new` and a null value, never a division by zero.
"""
from __future__ import annotations

import polars as pl

from assets.transforms import analytics

DERIVED_COLUMNS = ["metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "industry", "measure",
                   "comparison", "reference_period", "value", "status"]
DERIVED_DTYPES = {c: pl.String for c in DERIVED_COLUMNS} | {"value": pl.Float64}
MEASURES = ["growth", "rank", "rank_change", "growth_rank", "share_of_national", "top3_share", "top5_share",
            "top10_share", "industry_multiple", "share_within_geo", "cluster_mean", "contribution_geo",
            "contribution_industry", "per_million_residents", "usage_ratio", "hhi", "gini", "theil", "theil_between",
            "theil_within"]
COMPARISONS = ["qoq", "yoy", "since_base", "vs_prev_year", "by_province", "by_tier"]
GROWTH_RANK_COMPARISONS = ("since_base", "yoy")
TOP_N = (3, 5, 10)
LEVEL_ORDER = {"national": 0, "province": 1, "city": 2, "tier": 3, "cluster": 4}
CELL = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
GROUP = ["metric", "period", "period_type", "geo_level", "industry"]  # a ranking: entities of one level
UNALLOCATED = "unallocated"


def previous_quarter(q: str) -> str:
    year, n = int(q[:4]), int(q[-1])
    return f"{year - 1}Q4" if n == 1 else f"{year}Q{n - 1}"


def year_earlier(period: str, period_type: str) -> str:
    """The same quarter a year earlier, or the previous year: the reference of `yoy` (and of shift-share)."""
    return f"{int(period[:4]) - 1}{period[4:]}" if period_type == "quarter" else str(int(period) - 1)


def comparisons(periods: pl.DataFrame, base_period: str | None) -> pl.DataFrame:
    """period, period_type -> comparison, reference_period, reference_type (every growth/rank comparison asked)."""
    rows = []
    for period, ptype in periods.select("period", "period_type").unique().iter_rows():
        if ptype == "quarter":
            year = int(period[:4])
            rows += [(period, ptype, "qoq", previous_quarter(period), "quarter"),
                     (period, ptype, "yoy", year_earlier(period, ptype), "quarter"),
                     (period, ptype, "vs_prev_year", str(year - 1), "year")]
            if base_period and period != base_period:
                rows.append((period, ptype, "since_base", base_period, "quarter"))
        else:
            rows.append((period, ptype, "yoy", year_earlier(period, ptype), "year"))
    return pl.DataFrame(rows, schema=["period", "period_type", "comparison", "reference_period", "reference_type"],
                        orient="row")


def is_unallocated() -> pl.Expr:
    """Unallocated entities (`<province>U` cities, tier `unallocated`) take no part in ranks or top-N shares."""
    return pl.col("geo_code").str.ends_with("U") | (pl.col("geo_code") == UNALLOCATED)


def ratio(num: str, den: str, num_status: str, den_status: str, minus: float = 0.0) -> list[pl.Expr]:
    """value = num / den - minus, status ok | new (zero denominator) | suppressed (either side suppressed)."""
    suppressed = (pl.col(num_status) == "suppressed") | (pl.col(den_status) == "suppressed")
    new = ~suppressed & (pl.col(den) == 0)
    return [pl.when(suppressed | new).then(None).otherwise(pl.col(num) / pl.col(den) - minus).alias("value"),
            pl.when(suppressed).then(pl.lit("suppressed")).when(new).then(pl.lit("new")).otherwise(pl.lit("ok"))
            .alias("status")]


def _finish(frame: pl.DataFrame, measure: str) -> pl.DataFrame:
    """The published columns; `comparison` and `reference_period` are null unless the frame carries them."""
    missing = [pl.lit(None, pl.String).alias(c) for c in ("comparison", "reference_period") if c not in frame.columns]
    return (frame.with_columns(pl.lit(measure).alias("measure"), *missing)
            .select(DERIVED_COLUMNS).cast(DERIVED_DTYPES))


def growth(referenced: pl.DataFrame) -> pl.DataFrame:
    """index[t] / index[reference] - 1 for every cell and comparison whose reference period is published
    (`referenced`: `analytics.with_references` of the cells, vs_prev_year left out: it compares ranks)."""
    return _finish(referenced.with_columns(*ratio("value", "ref_value", "status", "ref_status", 1.0)), "growth")


def rank_within(frame: pl.DataFrame, group: list[str]) -> pl.DataFrame:
    """Descending rank of `value` among the `ok` rows of each group (ties share: 1, 2, 2, 4); others keep their
    status and a null rank."""
    ok = frame.filter(pl.col("status") == "ok").with_columns(
        pl.col("value").rank("min", descending=True).over(group).cast(pl.Float64).alias("rank"))
    return frame.join(ok.select(*group, "geo_code", "rank"), on=[*group, "geo_code"], how="left", nulls_equal=True)


def ranks(cells: pl.DataFrame) -> pl.DataFrame:
    """Rank of each allocated entity below national within metric x period x level x industry."""
    eligible = cells.filter((pl.col("geo_level") != "national") & ~is_unallocated())
    return rank_within(eligible, GROUP)


def rank_changes(ranked: pl.DataFrame, refs: pl.DataFrame) -> pl.DataFrame:
    """Reference rank - current rank: quarter vs previous quarter (qoq) and vs the previous year's annual ranking
    (vs_prev_year); year vs previous year (yoy)."""
    wanted = refs.filter(((pl.col("period_type") == "quarter") & pl.col("comparison").is_in(["qoq", "vs_prev_year"]))
                         | ((pl.col("period_type") == "year") & (pl.col("comparison") == "yoy")))
    ref_ranks = ranked.select(pl.col("period").alias("reference_period"), pl.col("period_type").alias("reference_type"),
                              "metric", "geo_level", "geo_code", "industry", pl.col("rank").alias("ref_rank"),
                              pl.col("status").alias("ref_status"))
    joined = (ranked.join(wanted, on=["period", "period_type"])
              .join(ref_ranks, on=["reference_period", "reference_type", "metric", "geo_level", "geo_code",
                                   "industry"]))
    suppressed = (pl.col("status") != "ok") | (pl.col("ref_status") != "ok")
    out = joined.with_columns(pl.when(suppressed).then(None).otherwise(pl.col("ref_rank") - pl.col("rank"))
                              .alias("value"),
                              pl.when(suppressed).then(pl.lit("suppressed")).otherwise(pl.lit("ok")).alias("status"))
    return _finish(out, "rank_change")


def growth_ranks(growth_rows: pl.DataFrame, cells: pl.DataFrame, min_reference: float = 0.0) -> pl.DataFrame:
    """Rank of since_base and of yoy growth among allocated entities below national with an `ok` growth (`new` and
    `suppressed` ones keep their status, unranked). An entity whose published reference value is below
    `min_reference` index points takes no part (no row): a tiny base would otherwise top the list."""
    refs = cells.select(pl.col("period").alias("reference_period"), *[c for c in CELL if c != "period"],
                        pl.col("value").alias("ref_value"))
    rows = (growth_rows.filter(pl.col("comparison").is_in(GROWTH_RANK_COMPARISONS)
                               & (pl.col("geo_level") != "national") & ~is_unallocated())
            .join(refs, on=["reference_period", *[c for c in CELL if c != "period"]], how="left")
            .filter(pl.col("ref_value").is_null() | (pl.col("ref_value") >= min_reference))
            .drop("ref_value"))
    ranked = rank_within(rows, [*GROUP, "comparison"]).with_columns(pl.col("rank").alias("value"))
    return _finish(ranked, "growth_rank")


def _national(cells: pl.DataFrame) -> pl.DataFrame:
    return cells.filter(pl.col("geo_level") == "national").select(
        "metric", "period", "period_type", "industry", pl.col("value").alias("national_value"),
        pl.col("status").alias("national_status"), pl.col("geo_name").alias("national_name"))


def at_most_one(frame: pl.DataFrame) -> pl.DataFrame:
    """A share of a whole it is part of is at most 1: rounding in the sums must not make it 1.0000000000000002."""
    return frame.with_columns(pl.col("value").clip(upper_bound=1.0))


def shares_of_national(cells: pl.DataFrame) -> pl.DataFrame:
    """Entity / national of the same metric, period and industry, for every entity below national."""
    joined = cells.filter(pl.col("geo_level") != "national").join(
        _national(cells), on=["metric", "period", "period_type", "industry"])
    return _finish(at_most_one(joined.with_columns(*ratio("value", "national_value", "status", "national_status"))),
                   "share_of_national")


def top_n_shares(cells: pl.DataFrame, sizes: tuple[int, ...] = TOP_N) -> pl.DataFrame:
    """Sum of the N largest allocated entities of a level / national, on geo_code CN of that level: provinces,
    cities and clusters (tiers are too few for a top N to mean anything). Clusters overlap (a city may be in two),
    so theirs counts such a city twice and may exceed 1; at the other levels it is at most 1.

    Suppressed when a suppressed entity could be among the N: at additive levels (province, city with its
    unallocated rows) the suppressed cells together hold national - the published ones, so none of them can
    exceed that residual; the share is published only if the residual is not above the N-th largest published
    value (a tie changes no sum). Clusters overlap (no such total): any suppressed cluster suppresses the share.
    """
    level = cells.filter(~pl.col("geo_level").is_in(["national", "tier"]))
    published = (level.sort(*GROUP, "geo_code").group_by(GROUP, maintain_order=True)
                 .agg(pl.col("value").filter(pl.col("status") == "ok").sum().alias("ok_sum"))
                 .join(_national(cells), on=["metric", "period", "period_type", "industry"]))
    eligible = level.filter(~is_unallocated())
    ok = eligible.filter(pl.col("status") == "ok").with_columns(
        pl.col("value").rank("ordinal", descending=True).over(GROUP).alias("pos"))
    hidden = eligible.group_by(GROUP).agg((pl.col("status") == "suppressed").sum().alias("n_hidden"),
                                          (pl.col("status") == "ok").sum().alias("n_ok"))
    frames = []
    for n in sizes:
        top = ok.filter(pl.col("pos") <= n).sort(*GROUP, "pos").group_by(GROUP, maintain_order=True).agg(pl.col("value").sum().alias("top_sum"),
                                                                 pl.col("value").min().alias("nth"))
        joined = hidden.join(top, on=GROUP, how="left").join(published, on=GROUP)
        residual = pl.when(pl.col("geo_level") == "cluster").then(float("inf")).otherwise(
            pl.col("national_value") - pl.col("ok_sum"))
        unsafe = (pl.col("n_hidden") > 0) & ((pl.col("n_ok") < n) | (residual > pl.col("nth") * (1 + 1e-9) + 1e-12))
        out = joined.with_columns(pl.when(unsafe).then(pl.lit("suppressed")).otherwise(pl.lit("ok")).alias("top_status"),
                                  pl.col("top_sum").fill_null(0.0))
        out = out.with_columns(*ratio("top_sum", "national_value", "top_status", "national_status"),
                               pl.lit("CN").alias("geo_code"), pl.col("national_name").alias("geo_name"))
        out = out.with_columns(pl.when(pl.col("geo_level") == "cluster").then(pl.col("value"))
                               .otherwise(pl.col("value").clip(upper_bound=1.0)))
        frames.append(_finish(out, f"top{n}_share"))
    return pl.concat(frames)


def industry_multiples(cells: pl.DataFrame) -> pl.DataFrame:
    """Industry value / unweighted mean over all industries of the same entity, metric and period.

    The mean is taken over the industry cells; if one is suppressed it is still known from the entity's `all`
    cell (industries add up to it) divided by the number of industries, so it is published while `all` is.
    """
    n_industries = cells.filter(pl.col("industry") != "all")["industry"].n_unique()
    keys = ["metric", "period", "period_type", "geo_level", "geo_code"]
    inds = cells.filter(pl.col("industry") != "all")
    means = (inds.sort(*keys, "industry").group_by(keys, maintain_order=True)
             .agg(pl.col("value").mean().alias("ind_mean"),
                                     (pl.col("status") == "suppressed").any().alias("any_hidden"))
             .join(cells.filter(pl.col("industry") == "all").select(*keys, pl.col("value").alias("all_value"),
                                                                    pl.col("status").alias("all_status")),
                   on=keys, how="left")
             .with_columns(pl.when(~pl.col("any_hidden")).then(pl.col("ind_mean"))
                           .when(pl.col("all_status") == "ok").then(pl.col("all_value") / n_industries)
                           .alias("mean"))
             .with_columns(pl.when(pl.col("mean").is_null()).then(pl.lit("suppressed")).otherwise(pl.lit("ok"))
                           .alias("mean_status")))
    joined = inds.join(means.select(*keys, "mean", "mean_status"), on=keys)
    return _finish(joined.with_columns(*ratio("value", "mean", "status", "mean_status")), "industry_multiple")


def shares_within_geo(cells: pl.DataFrame) -> pl.DataFrame:
    """Each industry's share of its entity's total (`all`), for every entity (tier and cluster structure)."""
    keys = ["metric", "period", "period_type", "geo_level", "geo_code"]
    totals = cells.filter(pl.col("industry") == "all").select(*keys, pl.col("value").alias("all_value"),
                                                              pl.col("status").alias("all_status"))
    joined = cells.filter(pl.col("industry") != "all").join(totals, on=keys)
    return _finish(at_most_one(joined.with_columns(*ratio("value", "all_value", "status", "all_status"))),
                   "share_within_geo")


def cluster_means(cells: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Mean over a cluster's member cities (seeds/city_clusters.csv), per metric, period and industry.

    Suppressed with the cluster's own cell. Taken over the member cities' cells; if one of them is suppressed, it is
    still known as the cluster's cell (a sum of its members) / the number of members.
    """
    members = members.select(pl.col("cluster_code").alias("geo_code"), "city_code").unique()
    n_members = members.group_by("geo_code").agg(pl.len().alias("n_members"))
    cities = cells.filter(pl.col("geo_level") == "city").select(
        "metric", "period", "period_type", "industry", pl.col("geo_code").alias("city_code"),
        pl.col("value").alias("city_value"), pl.col("status").alias("city_status"))
    keys = ["metric", "period", "period_type", "geo_code", "industry"]
    over_cities = (members.join(cities, on="city_code").sort(*keys, "city_code").group_by(keys, maintain_order=True)
                   .agg(pl.col("city_value").mean().alias("city_mean"),
                        (pl.col("city_status") == "suppressed").any().alias("any_hidden")))
    clusters = (cells.filter(pl.col("geo_level") == "cluster").join(n_members, on="geo_code", how="left")
                .join(over_cities, on=keys, how="left"))
    value = (pl.when(pl.col("status") != "ok").then(None)
             .when((pl.col("any_hidden") == False) & pl.col("city_mean").is_not_null())  # noqa: E712
             .then(pl.col("city_mean"))
             .when(pl.col("n_members") > 0).then(pl.col("value") / pl.col("n_members")))
    out = clusters.with_columns(value.alias("value")).with_columns(
        pl.when(pl.col("value").is_null()).then(pl.lit("suppressed")).otherwise(pl.lit("ok")).alias("status"))
    return _finish(out, "cluster_mean")


def derive_measures(disclosed: pl.DataFrame, members: pl.DataFrame, city_tiers: pl.DataFrame | None = None,
                    population: pl.DataFrame | None = None, growth_rank_min_reference: float = 0.0) -> pl.DataFrame:
    """Every derived measure of the disclosed index table, in the published order and schema.

    `city_tiers` (geo_code, tier of every city-level entity) groups cities for theil_between / theil_within by tier
    and sums tiers' populations; `population` (geo_level, geo_code, year, population: `entity_population`) gives the
    per-capita measures; without them those measures are left out.
    """
    # one order whatever the input's: every sum and mean below follows it (floating-point sums depend on order)
    cells = disclosed.select(*CELL, "geo_name", "value", "status").sort(CELL).rechunk()
    base = disclosed["base_period"].drop_nulls()
    refs = comparisons(cells, base[0] if base.len() else None)
    referenced = analytics.with_references(cells, refs.filter(pl.col("comparison") != "vs_prev_year"))
    grown = growth(referenced)
    ranked = ranks(cells)
    tiers = city_tiers if city_tiers is not None else pl.DataFrame(schema={"geo_code": pl.String, "tier": pl.String})
    frames = [grown, _finish(ranked.with_columns(pl.col("rank").alias("value")), "rank"), rank_changes(ranked, refs),
              growth_ranks(grown, cells, growth_rank_min_reference), shares_of_national(cells), top_n_shares(cells),
              industry_multiples(cells), shares_within_geo(cells), cluster_means(cells, members),
              _finish(analytics.contributions_geo(referenced), "contribution_geo"),
              _finish(analytics.contributions_industry(referenced), "contribution_industry"),
              _finish_each(analytics.concentration(cells, tiers))]
    if population is not None:
        frames.append(_finish_each(analytics.per_capita(cells, population)))
    return sort_derived_rows(pl.concat(frames))


def _finish_each(frame: pl.DataFrame) -> pl.DataFrame:
    """The published columns of a frame that carries its own `measure` column."""
    missing = [pl.lit(None, pl.String).alias(c) for c in ("comparison", "reference_period") if c not in frame.columns]
    return frame.with_columns(*missing).select(DERIVED_COLUMNS).cast(DERIVED_DTYPES)


def sort_derived_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The published order: metric, period type, period, level, code, industry (`all` first), measure, comparison."""
    ranked = frame.with_columns(pl.col("geo_level").replace_strict(LEVEL_ORDER, return_dtype=pl.Int8).alias("_l"),
                                (pl.col("industry") != "all").alias("_i"),
                                pl.col("measure").replace_strict({m: i for i, m in enumerate(MEASURES)},
                                                                 return_dtype=pl.Int8).alias("_m"))
    keys = ["metric", "period_type", "period", "_l", "geo_code", "_i", "industry", "_m", "comparison"]
    # One integer key (each column's rank among its few distinct values, nulls first) sorts a million rows several
    # times faster than polars' sort on nine columns of text; the order is the same.
    key, span = pl.lit(0, pl.UInt64), 1
    for column in keys:
        values = sorted(ranked[column].drop_nulls().unique().to_list())
        span *= len(values) + 1
        code = pl.col(column).replace_strict({v: i + 1 for i, v in enumerate(values)}, default=0,
                                             return_dtype=pl.UInt64)
        key = key * (len(values) + 1) + code
    if span >= 2 ** 63:  # too many distinct values for one key: sort on the columns
        return ranked.sort(keys, nulls_last=False).drop("_l", "_i", "_m")
    return ranked.with_columns(key.alias("_key")).sort("_key").drop("_key", "_l", "_i", "_m")


def sudden_national_moves(disclosed: pl.DataFrame, factor: float) -> pl.DataFrame:
    """National, all-industry quarters whose value is more than `factor` times the previous quarter's, or less than
    its 1/`factor` (a feed missing or doubled, more likely than the economy): metric, period, previous, value."""
    national = (disclosed.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                                 & (pl.col("period_type") == "quarter"))
                .select("metric", "period", "value").sort("metric", "period")
                .with_columns(pl.col("value").shift(1).over("metric").alias("previous")))
    return national.filter(pl.col("previous").is_not_null() & (
        (pl.col("value") > pl.col("previous") * factor) | (pl.col("value") * factor < pl.col("previous"))))
