"""Shift-share (CONTRACT.md "Published release", `shift_share.parquet`): each province's and city's change against a
year earlier split into national, industry-mix and competitive effects (Dunn's classic decomposition over the
industries). Pure polars and the standard library.

For entity r, industries i, reference period 0 and period 1 (index points x, national N):
    g = N1 / N0 - 1 (national growth, all industries); g_i = N1_i / N0_i - 1 (national growth of industry i)
    national_effect     = sum_i x0_i g
    industry_mix_effect = sum_i x0_i (g_i - g)
    competitive_effect  = sum_i x0_i (g_r,i - g_i) = sum_i (x1_i - x0_i) - x0_i g_i
    change              = sum_i (x1_i - x0_i)       = the three effects added up
The competitive term is written with x0_i g_r,i = x1_i - x0_i, so an entity that had none of an industry a year
earlier (x0_i = 0, growth undefined) still has a term: all its new usage is competitive.

An industry with no national usage in the reference period (N0_i = 0, g_i undefined) takes the national growth
(g_i = g): every entity's x0_i is 0 then (entities add up to national and are not negative), so its national and
mix terms are 0 and its whole change x1_i is competitive. With no national usage at all in the reference period
(N0 = 0) there is no growth to split: status `new`, effects null. Any suppressed input cell (the entity's or the
nation's, in either period, any industry) suppresses the row.

Every sum is exact (`math.fsum`), so the table does not depend on the order of the input rows.
"""
from __future__ import annotations

import math
from collections import defaultdict

import polars as pl

from assets.transforms.derived import year_earlier

SHIFT_SHARE_COLUMNS = ["metric", "period", "period_type", "reference_period", "geo_level", "geo_code", "geo_name",
                       "change", "national_effect", "industry_mix_effect", "competitive_effect", "status"]
SHIFT_SHARE_DTYPES = {c: pl.String for c in SHIFT_SHARE_COLUMNS} | {
    c: pl.Float64 for c in ("change", "national_effect", "industry_mix_effect", "competitive_effect")}
EFFECTS = ("change", "national_effect", "industry_mix_effect", "competitive_effect")
LEVELS = ("province", "city")  # cities with their `<province>U` rows, so each level's effects add up to national


def decompose(x0: list[float], x1: list[float], n0: list[float], n1: list[float], n0_all: float,
              n1_all: float) -> tuple[float, float, float, float]:
    """(change, national, industry mix, competitive) of one entity from its and the nation's industry values."""
    g = n1_all / n0_all - 1.0
    g_i = [b / a - 1.0 if a != 0 else g for a, b in zip(n0, n1)]
    return (math.fsum(b - a for a, b in zip(x0, x1)),
            math.fsum(a * g for a in x0),
            math.fsum(a * gi - a * g for a, gi in zip(x0, g_i)),
            math.fsum((b - a) - a * gi for a, b, gi in zip(x0, x1, g_i)))


def shift_share_table(disclosed: pl.DataFrame) -> pl.DataFrame:
    """One row per metric x period x province or city with a published period a year earlier, in SHIFT_SHARE_COLUMNS
    order, sorted by metric, period type, period, level and code."""
    cells = disclosed.filter(pl.col("geo_level").is_in(("national",) + LEVELS)).select(
        "metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "industry", "value", "status")
    value = {(m, p, lv, c, i): (v, s) for m, p, lv, c, i, v, s in
             cells.select("metric", "period", "geo_level", "geo_code", "industry", "value", "status").iter_rows()}
    industries = sorted(set(cells.filter(pl.col("industry") != "all")["industry"]))
    entities = (cells.filter((pl.col("geo_level") != "national") & (pl.col("industry") == "all"))
                .select("metric", "period", "period_type", "geo_level", "geo_code", "geo_name")
                .sort("metric", "period_type", "period", "geo_level", "geo_code"))
    rows = []
    for metric, period, ptype, level, code, name in entities.iter_rows():
        ref = year_earlier(period, ptype)
        if (metric, ref, "national", "CN", "all") not in value:
            continue
        inputs = defaultdict(list)
        for p, tag in ((ref, "0"), (period, "1")):
            for lv, c in ((level, code), ("national", "CN")):
                for ind in industries:
                    inputs[lv == "national", tag].append(value.get((metric, p, lv, c, ind), (0.0, "ok")))
            inputs["all", tag] = [value[metric, p, "national", "CN", "all"]]
        every = [cell for cells_ in inputs.values() for cell in cells_]
        key = (metric, period, ptype, ref, level, code, name)
        if any(s != "ok" for _, s in every):
            rows.append((*key, None, None, None, None, "suppressed"))
            continue
        n0_all, n1_all = inputs["all", "0"][0][0], inputs["all", "1"][0][0]
        if n0_all == 0:
            rows.append((*key, None, None, None, None, "new"))
            continue
        values = {k: [v for v, _ in cells_] for k, cells_ in inputs.items()}
        rows.append((*key, *decompose(values[False, "0"], values[False, "1"], values[True, "0"], values[True, "1"],
                                      n0_all, n1_all), "ok"))
    return pl.DataFrame(rows, schema=SHIFT_SHARE_DTYPES, orient="row")


def effects_off(table: pl.DataFrame, tolerance: float = 1e-9) -> pl.DataFrame:
    """Published rows whose three effects do not add up to the change."""
    total = pl.col("national_effect") + pl.col("industry_mix_effect") + pl.col("competitive_effect")
    return table.filter((pl.col("status") == "ok") & (
        (total - pl.col("change")).abs() > tolerance * pl.max_horizontal(pl.lit(1.0), pl.col("change").abs())))
