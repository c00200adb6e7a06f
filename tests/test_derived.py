"""Derived measures against an independent computation (plain Python loops) on small hand-made index tables."""
from __future__ import annotations

import itertools
import math
import random

import polars as pl
import pytest

from assets.transforms.derived import DERIVED_COLUMNS, derive_measures

QUARTERS = [f"{y}Q{q}" for y in (2019, 2020) for q in (1, 2, 3, 4)] + ["2021Q1"]
YEARS = ["2019", "2020"]
INDUSTRIES = ["x", "y", "z"]
PROVINCES = {"110000": "北京", "440000": "广东", "310000": "上海", "510000": "四川", "650000": "新疆"}
# city -> province; 440000U is Guangdong's unallocated usage
CITIES = {"110000": "110000", "310000": "310000", "440100": "440000", "440300": "440000", "440000U": "440000",
          "510100": "510000", "510000U": "510000", "650100": "650000"}
TIERS = {"110000": "tier1", "310000": "tier1", "440100": "tier1", "440300": "tier1", "510100": "tier2",
         "650100": "tier2", "440000U": "unallocated", "510000U": "unallocated"}
MEMBERS = pl.DataFrame({"cluster_code": ["prd", "prd", "cy", "big", "big", "big"],
                        "city_code": ["440100", "440300", "510100", "110000", "310000", "440100"]})


def make_table(seed: int = 7, zeros: float = 0.15, floats: bool = False) -> pl.DataFrame:
    """A consistent index table: cities x industries drawn at random (some zeros, some ties; or, with `floats`,
    values of any magnitude whose sums depend on their order), every level summed from them, years summed from
    quarters."""
    rng = random.Random(seed)
    city = {}
    for q, c, i in itertools.product(QUARTERS, CITIES, INDUSTRIES):
        if rng.random() < zeros:
            city[q, c, i] = 0.0
        elif floats:
            city[q, c, i] = rng.random() * 10.0 ** rng.randint(-3, 3)
        else:
            city[q, c, i] = float(rng.choice([1, 2, 2, 3, 5, 8, 13, 21]))
    rows = []

    def add(period, ptype, level, code, name, industry, value):
        rows.append({"metric": "ai", "period": period, "period_type": ptype, "geo_level": level, "geo_code": code,
                     "geo_name": name, "geo_name_en": name, "geo_name_short": name, "industry": industry,
                     "value": value, "accounts": 9,
                     "status": "ok", "base_period": "2019Q1"})

    groups = {"national": {"CN": list(CITIES)},
              "province": {p: [c for c in CITIES if CITIES[c] == p] for p in PROVINCES},
              "city": {c: [c] for c in CITIES},
              "tier": {t: [c for c in CITIES if TIERS[c] == t] for t in ("tier1", "tier2", "unallocated")},
              "cluster": {k: MEMBERS.filter(pl.col("cluster_code") == k)["city_code"].to_list()
                          for k in ("prd", "cy", "big")}}
    for q in QUARTERS:
        for level, entities in groups.items():
            for code, members in entities.items():
                for ind in INDUSTRIES:
                    add(q, "quarter", level, code, f"{level}-{code}", ind, sum(city[q, m, ind] for m in members))
                add(q, "quarter", level, code, f"{level}-{code}", "all",
                    sum(city[q, m, i] for m in members for i in INDUSTRIES))
    table = pl.DataFrame(rows)
    years = (table.with_columns(pl.col("period").str.slice(0, 4).alias("year"))
             .filter(pl.col("year").is_in(YEARS))
             .group_by("metric", "year", "geo_level", "geo_code", "geo_name", "geo_name_en", "geo_name_short",
                       "industry", "status",
                       "base_period", maintain_order=True)
             .agg(pl.col("value").sum(), pl.col("accounts").first())
             .with_columns(pl.col("year").alias("period"), pl.lit("year").alias("period_type")).drop("year"))
    return pl.concat([table, years.select(table.columns)])


def suppress(table: pl.DataFrame, cells: list[tuple]) -> pl.DataFrame:
    """Mark (period, geo_level, geo_code, industry) cells suppressed, value and accounts null."""
    hit = pl.lit(False)
    for period, level, code, industry in cells:
        hit = hit | ((pl.col("period") == period) & (pl.col("geo_level") == level) & (pl.col("geo_code") == code)
                     & (pl.col("industry") == industry))
    return table.with_columns(pl.when(hit).then(None).otherwise(pl.col("value")).alias("value"),
                              pl.when(hit).then(None).otherwise(pl.col("accounts")).alias("accounts"),
                              pl.when(hit).then(pl.lit("suppressed")).otherwise(pl.col("status")).alias("status"))


# ---- the independent computation ---------------------------------------------------------------------------------

def reference(table: pl.DataFrame) -> dict:
    """(metric, period, level, code, industry, measure, comparison) -> (value, status), by plain loops."""
    cell = {(r["period"], r["geo_level"], r["geo_code"], r["industry"]): r for r in table.iter_rows(named=True)}
    periods = {r["period"]: r["period_type"] for r in table.iter_rows(named=True)}
    out = {}

    def put(period, level, code, industry, measure, comparison, value, status):
        out["ai", period, level, code, industry, measure, comparison] = (value, status)

    def div(a, b, minus=0.0):
        if a["status"] != "ok" or b["status"] != "ok":
            return None, "suppressed"
        if b["value"] == 0:
            return None, "new"
        return a["value"] / b["value"] - minus, "ok"

    def prev_q(q):
        y, n = int(q[:4]), int(q[-1])
        return f"{y - 1}Q4" if n == 1 else f"{y}Q{n - 1}"

    def refs(p):
        if periods[p] == "year":
            return {"yoy": str(int(p) - 1)}
        r = {"qoq": prev_q(p), "yoy": f"{int(p[:4]) - 1}{p[4:]}"}
        if p != "2019Q1":
            r["since_base"] = "2019Q1"
        return r

    def rank_of(values: dict) -> dict:  # competition ranking, descending
        return {k: 1 + sum(1 for w in values.values() if w > v) for k, v in values.items()}

    allocated = lambda level, code: level != "national" and not code.endswith("U") and code != "unallocated"  # noqa
    for (p, level, code, ind), row in cell.items():
        for comp, rp in refs(p).items():
            if (rp, level, code, ind) in cell:
                put(p, level, code, ind, "growth", comp, *div(row, cell[rp, level, code, ind], 1.0))
        if level != "national":
            put(p, level, code, ind, "share_of_national", None, *div(row, cell[p, "national", "CN", ind]))
        if ind != "all":
            put(p, level, code, ind, "share_within_geo", None, *div(row, cell[p, level, code, "all"]))
            inds = [cell[p, level, code, i] for i in INDUSTRIES]
            if all(r["status"] == "ok" for r in inds):
                mean = {"value": sum(r["value"] for r in inds) / len(inds), "status": "ok"}
            else:
                total = cell[p, level, code, "all"]
                mean = {"value": total["value"] / len(INDUSTRIES) if total["status"] == "ok" else None,
                        "status": total["status"]}
            put(p, level, code, ind, "industry_multiple", None, *div(row, mean))
        if level == "cluster":
            members = MEMBERS.filter(pl.col("cluster_code") == code)["city_code"].to_list()
            mem = [cell[p, "city", m, ind] for m in members]
            if row["status"] != "ok":
                put(p, level, code, ind, "cluster_mean", None, None, "suppressed")
            elif all(r["status"] == "ok" for r in mem):
                put(p, level, code, ind, "cluster_mean", None, sum(r["value"] for r in mem) / len(mem), "ok")
            else:
                put(p, level, code, ind, "cluster_mean", None, row["value"] / len(members), "ok")
    # ranks first (every period), then rank changes, growth ranks and top-N
    ranks, groups = {}, list(itertools.product(periods, ["province", "city", "tier", "cluster"], INDUSTRIES + ["all"]))
    members = {}
    for p, level, ind in groups:
        entities = {c: r for (pp, lv, c, i), r in cell.items() if (pp, lv, i) == (p, level, ind) and allocated(lv, c)}
        members[p, level, ind] = entities
        ranked = rank_of({c: r["value"] for c, r in entities.items() if r["status"] == "ok"})
        for c in entities:
            ranks[p, level, c, ind] = ranked.get(c)
            put(p, level, c, ind, "rank", None, ranked.get(c), "ok" if c in ranked else "suppressed")
    for p, level, ind in groups:
        entities = members[p, level, ind]
        if periods[p] == "year":
            compare = [("yoy", str(int(p) - 1))]
        else:
            compare = [("qoq", prev_q(p)), ("vs_prev_year", str(int(p[:4]) - 1))]
        for c in entities:
            for cmp, rp in compare:
                if (rp, level, c, ind) in cell:
                    a, b = ranks[p, level, c, ind], ranks[rp, level, c, ind]
                    ok = a is not None and b is not None
                    put(p, level, c, ind, "rank_change", cmp, b - a if ok else None, "ok" if ok else "suppressed")
        for comparison in ("since_base", "yoy"):  # growth ranks: each comparison its own ranking
            grown = {c: out["ai", p, level, c, ind, "growth", comparison] for c in entities
                     if ("ai", p, level, c, ind, "growth", comparison) in out}
            granks = rank_of({c: v for c, (v, s) in grown.items() if s == "ok"})
            for c, (v, s) in grown.items():
                put(p, level, c, ind, "growth_rank", comparison, granks.get(c), s)
        national = cell[p, "national", "CN", ind]
        level_rows = [r for (pp, lv, c, i), r in cell.items() if (pp, lv, i) == (p, level, ind)]
        ok_values = sorted((r["value"] for r in entities.values() if r["status"] == "ok"), reverse=True)
        hidden = [r for r in entities.values() if r["status"] != "ok"]
        residual = (math.inf if level == "cluster" else
                    national["value"] - sum(r["value"] for r in level_rows if r["status"] == "ok"))
        for n in (3, 5, 10) if level != "tier" else ():  # no top N among a handful of tiers
            top = sum(ok_values[:n])
            unsafe = bool(hidden) and (len(ok_values) < n or residual > ok_values[n - 1] + 1e-9)
            value, status = div({"value": top, "status": "suppressed" if unsafe else "ok"}, national)
            put(p, level, "CN", ind, f"top{n}_share", None, value, status)
    return out


ANALYTICS = ("contribution_geo", "contribution_industry", "per_million_residents", "usage_ratio", "hhi", "gini",
             "theil", "theil_between", "theil_within")  # checked by test_analytics.py


def as_dict(derived: pl.DataFrame) -> dict:
    derived = derived.filter(~pl.col("measure").is_in(ANALYTICS))
    return {(r["metric"], r["period"], r["geo_level"], r["geo_code"], r["industry"], r["measure"], r["comparison"]):
            (r["value"], r["status"]) for r in derived.iter_rows(named=True)}


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want), (sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5])
    for key, (value, status) in want.items():
        g_value, g_status = got[key]
        assert g_status == status, (key, got[key], want[key])
        if value is None:
            assert g_value is None, (key, got[key], want[key])
        else:
            assert g_value == pytest.approx(value, rel=1e-12, abs=1e-12), (key, got[key], want[key])


# ---- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 7, 42])
def test_every_measure_equals_an_independent_computation(seed):
    table = make_table(seed)
    derived = derive_measures(table, MEMBERS)
    assert derived.columns == DERIVED_COLUMNS
    assert_same(as_dict(derived), reference(table))


@pytest.mark.parametrize("seed", [3, 11])
def test_suppressed_cells_and_references_are_respected(seed):
    table = make_table(seed)
    hidden = [("2020Q4", "city", "440300", "all"), ("2020Q4", "city", "440000U", "all"),
              ("2020Q3", "province", "650000", "x"), ("2020Q3", "province", "510000", "x"),
              ("2020", "city", "510100", "y"), ("2020", "city", "650100", "y"),
              ("2021Q1", "cluster", "prd", "z"), ("2020Q2", "tier", "tier2", "all"), ("2020Q2", "tier", "tier1", "all")]
    table = suppress(table, hidden)
    derived = derive_measures(table, MEMBERS)
    assert_same(as_dict(derived), reference(table))
    # nothing `ok` is derived from a suppressed cell itself
    keys = pl.DataFrame(hidden, schema=["period", "geo_level", "geo_code", "industry"], orient="row")
    assert derived.filter(pl.col("status") == "ok").join(keys, on=keys.columns, how="semi").height == 0


def test_ties_share_a_rank_and_unallocated_take_no_part():
    table = make_table(5)
    fixed = {"440100": 10.0, "440300": 10.0, "510100": 4.0, "110000": 10.0, "310000": 1.0, "650100": 0.0,
             "440000U": 99.0, "510000U": 50.0}
    table = table.with_columns(
        pl.when((pl.col("period") == "2020Q2") & (pl.col("geo_level") == "city") & (pl.col("industry") == "x"))
        .then(pl.col("geo_code").replace_strict(fixed, default=None)).otherwise(pl.col("value")).alias("value"))
    derived = derive_measures(table, MEMBERS)
    ranks = dict(derived.filter((pl.col("measure") == "rank") & (pl.col("period") == "2020Q2")
                                & (pl.col("geo_level") == "city") & (pl.col("industry") == "x"))
                 .select("geo_code", "value").iter_rows())
    assert ranks == {"110000": 1, "440100": 1, "440300": 1, "510100": 4, "310000": 5, "650100": 6}


def test_zero_reference_is_new_and_rank_change_is_reference_minus_current():
    table = make_table(9)
    q1 = (pl.col("period") == "2020Q1") & (pl.col("geo_level") == "province")
    table = table.with_columns(
        pl.when(q1 & (pl.col("geo_code") == "650000") & (pl.col("industry") == "y")).then(0.0)
        .otherwise(pl.col("value")).alias("value"))
    derived = derive_measures(table, MEMBERS)
    growth = derived.filter((pl.col("measure") == "growth") & (pl.col("period") == "2020Q2")
                            & (pl.col("geo_code") == "650000") & (pl.col("geo_level") == "province")
                            & (pl.col("industry") == "y") & (pl.col("comparison") == "qoq"))
    assert growth.select("value", "status", "reference_period").row(0) == (None, "new", "2020Q1")
    change = derived.filter((pl.col("measure") == "rank_change") & (pl.col("comparison") == "vs_prev_year")
                            & (pl.col("period") == "2021Q1") & (pl.col("geo_level") == "province")
                            & (pl.col("industry") == "all"))
    ranks = derived.filter((pl.col("measure") == "rank") & (pl.col("geo_level") == "province")
                           & (pl.col("industry") == "all"))
    now = dict(ranks.filter(pl.col("period") == "2021Q1").select("geo_code", "value").iter_rows())
    then = dict(ranks.filter(pl.col("period") == "2020").select("geo_code", "value").iter_rows())
    assert dict(change.select("geo_code", "value").iter_rows()) == {c: then[c] - now[c] for c in now}
    assert set(change["reference_period"]) == {"2020"}


def test_output_is_deterministic_and_sorted():
    table = make_table(13)
    a = derive_measures(table, MEMBERS)
    b = derive_measures(table.sample(fraction=1.0, shuffle=True, seed=1), MEMBERS)
    assert a.equals(b)
