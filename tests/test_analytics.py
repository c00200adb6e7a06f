"""Contributions, per-capita measures, concentration and shift-share on random index tables, against identities and
an independent computation (numpy and plain loops, written apart from assets/transforms/analytics.py)."""
from __future__ import annotations

import io
import itertools
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from assets.transforms.analytics import entity_population
from assets.transforms.derived import derive_measures
from assets.transforms.files import write_parquet_atomic
from assets.transforms.shift_share import SHIFT_SHARE_COLUMNS, shift_share_table
from test_derived import CITIES, INDUSTRIES, MEMBERS, PROVINCES, TIERS, make_table, suppress

TIER_FRAME = pl.DataFrame({"geo_code": list(TIERS), "tier": list(TIERS.values())})
# residents: every province; every city but 650100 (so tier2, which holds it, has no figure)
POPULATION = pl.DataFrame(
    [("province", code, 2020, 1_000_000 * (i + 3)) for i, code in enumerate(PROVINCES)]
    + [("city", code, 2020, 300_000 * (i + 1)) for i, code in enumerate(c for c in CITIES if not c.endswith("U")
                                                                          and c != "650100")],
    schema=["geo_level", "geo_code", "year", "population"], orient="row")
TOL = 1e-9
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


def derive(table: pl.DataFrame, min_reference: float = 0.0) -> pl.DataFrame:
    return derive_measures(table, MEMBERS, TIER_FRAME, entity_population(POPULATION, TIER_FRAME, MEMBERS),
                           min_reference)


def rows(derived: pl.DataFrame, measure: str, **where) -> pl.DataFrame:
    out = derived.filter(pl.col("measure") == measure)
    for column, value in where.items():
        out = out.filter(pl.col(column) == value)
    return out


def cells(table: pl.DataFrame) -> dict:
    return {(r["period"], r["geo_level"], r["geo_code"], r["industry"]): (r["value"], r["status"])
            for r in table.iter_rows(named=True)}


# ---- identities on tables the project never saw --------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, zeros=st.sampled_from([0.0, 0.3, 0.7]))
def test_contributions_add_up_to_growth(seed, zeros):
    derived = derive(make_table(seed, zeros=zeros, floats=True))
    growth = {(r["period"], r["geo_level"], r["geo_code"], r["industry"], r["comparison"]): r
              for r in rows(derived, "growth").iter_rows(named=True)}
    checked = 0
    geo = rows(derived, "contribution_geo")
    assert set(geo["geo_level"]) == {"province", "city", "tier"} and set(geo["comparison"]) == {"qoq", "yoy"}
    for (p, level, ind, comp), group in geo.group_by("period", "geo_level", "industry", "comparison"):
        national = growth[p, "national", "CN", ind, comp]
        if national["status"] == "ok":
            assert (group["status"] == "ok").all()
            assert close(math.fsum(group["value"]), national["value"] * 100), (p, level, ind, comp)
            checked += 1
    for (p, level, code, comp), group in rows(derived, "contribution_industry").group_by(
            "period", "geo_level", "geo_code", "comparison"):
        total = growth[p, level, code, "all", comp]
        assert group.height == len(INDUSTRIES)
        if total["status"] == "ok":
            assert close(math.fsum(group["value"]), total["value"] * 100), (p, level, code, comp)
            checked += 1
    assert checked


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, zeros=st.sampled_from([0.0, 0.4, 0.8]))
def test_shift_share_effects_add_up_and_cancel_across_entities(seed, zeros):
    table = make_table(seed, zeros=zeros, floats=True)
    shares = shift_share_table(table)
    assert shares.columns == SHIFT_SHARE_COLUMNS and shares.height
    ok = shares.filter(pl.col("status") == "ok")
    for r in ok.iter_rows(named=True):
        total = math.fsum([r["national_effect"], r["industry_mix_effect"], r["competitive_effect"]])
        assert close(total, r["change"]), r
    # each level (cities with <province>U) adds up to national: its mix and competitive effects cancel out, but for
    # the usage A of industries with no national usage a year earlier (all competitive: mix -A, competitive +A)
    value = cells(table)
    for (metric, p, level), group in ok.group_by("metric", "period", "geo_level"):
        ref = group["reference_period"][0]
        assert close(math.fsum(group["change"]), value[p, "national", "CN", "all"][0]
                     - value[ref, "national", "CN", "all"][0])
        new = math.fsum(value[p, "national", "CN", i][0] for i in INDUSTRIES if value[ref, "national", "CN", i][0] == 0)
        scale = TOL * max(1.0, sum(map(abs, group["change"])))
        assert abs(math.fsum(group["industry_mix_effect"]) + new) <= scale
        assert abs(math.fsum(group["competitive_effect"]) - new) <= scale


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS)
def test_theil_between_plus_within_is_theil(seed):
    derived = derive(make_table(seed, zeros=0.3, floats=True))
    theil = {(r["period"], r["industry"]): r["value"]
             for r in rows(derived, "theil", geo_level="city", status="ok").iter_rows(named=True)}
    assert theil
    for grouping in ("by_province", "by_tier"):
        between = {(r["period"], r["industry"]): r["value"]
                   for r in rows(derived, "theil_between", comparison=grouping).iter_rows(named=True)}
        within = {(r["period"], r["industry"]): r["value"]
                  for r in rows(derived, "theil_within", comparison=grouping).iter_rows(named=True)}
        for key, total in theil.items():
            assert close(between[key] + within[key], total), (grouping, key)


# ---- an independent computation ------------------------------------------------------------------------------------

def numpy_concentration(values: np.ndarray, groups: list[str]) -> dict:
    shares = values / values.sum()
    n = len(values)
    gini = np.abs(values[:, None] - values[None, :]).sum() / (2 * n * n * values.mean())
    positive = shares > 0
    theil = float(np.sum(shares[positive] * np.log(n * shares[positive])))
    labels = np.array(groups)
    between = within = 0.0
    for g in sorted(set(groups)):
        inside = shares[labels == g]
        size, total = len(inside), inside.sum()
        if total > 0:
            between += total * np.log(total * n / size)
            nz = inside[inside > 0] / total
            within += total * float(np.sum(nz * np.log(size * nz)))
    return {"hhi": float(np.sum(shares ** 2)), "gini": float(gini), "theil": theil, "between": between,
            "within": within}


@pytest.mark.parametrize("seed", [2, 17])
def test_concentration_equals_numpy(seed):
    table = make_table(seed, zeros=0.25, floats=True)
    derived = derive(table)
    value = cells(table)
    periods = sorted(set(table["period"]))
    province_of = {**CITIES, **{p: p for p in PROVINCES}}  # a province is its own group (between = 0)
    for p, ind in itertools.product(periods, INDUSTRIES + ["all"]):
        for level, codes in (("province", sorted(PROVINCES)), ("city", sorted(c for c in CITIES
                                                                             if not c.endswith("U")))):
            x = np.array([value[p, level, c, ind][0] for c in codes])
            got = {r["measure"] + (f":{r['comparison']}" if r["comparison"] else ""): r
                   for r in derived.filter((pl.col("period") == p) & (pl.col("geo_level") == level)
                                           & (pl.col("geo_code") == "CN") & (pl.col("industry") == ind)
                                           & pl.col("measure").is_in(["hhi", "gini", "theil", "theil_between",
                                                                      "theil_within"])).iter_rows(named=True)}
            if x.sum() == 0:
                assert all(r["status"] == "new" and r["value"] is None for r in got.values())
                continue
            want = {"hhi": None, "gini": None, "theil": None}
            by_province = numpy_concentration(x, [province_of[c] for c in codes])
            want.update(hhi=by_province["hhi"], gini=by_province["gini"], theil=by_province["theil"])
            if level == "city":
                by_tier = numpy_concentration(x, [TIERS[c] for c in codes])
                want.update({"theil_between:by_province": by_province["between"],
                             "theil_within:by_province": by_province["within"],
                             "theil_between:by_tier": by_tier["between"], "theil_within:by_tier": by_tier["within"]})
            assert set(got) == set(want)
            for name, expected in want.items():
                assert got[name]["status"] == "ok" and close(got[name]["value"], expected), (p, level, ind, name)


@pytest.mark.parametrize("seed", [4, 23])
def test_shift_share_equals_an_independent_computation(seed):
    table = make_table(seed, zeros=0.4, floats=True)
    value = {k: v for k, (v, _) in cells(table).items()}
    got = {(r["period"], r["geo_level"], r["geo_code"]): r for r in shift_share_table(table).iter_rows(named=True)}
    expected = 0
    for p in sorted(set(table["period"])):
        ref = str(int(p) - 1) if len(p) == 4 else f"{int(p[:4]) - 1}{p[4:]}"
        if (ref, "national", "CN", "all") not in value:
            assert not any(k[0] == p for k in got)
            continue
        nat0 = np.array([value[ref, "national", "CN", i] for i in INDUSTRIES])
        nat1 = np.array([value[p, "national", "CN", i] for i in INDUSTRIES])
        g = value[p, "national", "CN", "all"] / value[ref, "national", "CN", "all"] - 1
        g_i = np.where(nat0 > 0, nat1 / np.where(nat0 > 0, nat0, 1) - 1, g)  # an absent industry grows at g
        for level, codes in (("province", PROVINCES), ("city", CITIES)):
            for code in codes:
                x0 = np.array([value[ref, level, code, i] for i in INDUSTRIES])
                x1 = np.array([value[p, level, code, i] for i in INDUSTRIES])
                g_r = np.where(x0 > 0, x1 / np.where(x0 > 0, x0, 1) - 1, 0.0)
                competitive = np.where(x0 > 0, x0 * (g_r - g_i), x1)  # new usage is all competitive
                row = got[p, level, code]
                assert row["status"] == "ok" and row["reference_period"] == ref
                for name, want in (("change", (x1 - x0).sum()), ("national_effect", x0.sum() * g),
                                   ("industry_mix_effect", (x0 * (g_i - g)).sum()),
                                   ("competitive_effect", competitive.sum())):
                    assert close(row[name], want), (p, level, code, name, row[name], want)
                expected += 1
    assert expected == len(got)


def test_per_capita_equals_an_independent_computation():
    table = make_table(8, floats=True)
    derived = derive(table)
    value = cells(table)
    people = {("province", c): float(v) for _, c, _, v in POPULATION.filter(pl.col("geo_level") == "province").rows()}
    people |= {("city", c): float(v) for _, c, _, v in POPULATION.filter(pl.col("geo_level") == "city").rows()}
    people["national", "CN"] = sum(v for (lv, _), v in people.items() if lv == "province")
    for tier in ("tier1", "tier2", "unallocated"):
        members = [c for c, t in TIERS.items() if t == tier]
        if all(("city", m) in people for m in members):
            people["tier", tier] = sum(people["city", m] for m in members)
    for cluster in ("prd", "cy", "big"):
        members = MEMBERS.filter(pl.col("cluster_code") == cluster)["city_code"].to_list()
        if all(("city", m) in people for m in members):
            people["cluster", cluster] = sum(people["city", m] for m in members)
    assert ("tier", "tier1") in people and ("tier", "tier2") not in people and ("tier", "unallocated") not in people
    per_million = {(r["period"], r["geo_level"], r["geo_code"], r["industry"]): r["value"]
                   for r in rows(derived, "per_million_residents").iter_rows(named=True)}
    ratio = {(r["period"], r["geo_level"], r["geo_code"], r["industry"]): (r["value"], r["status"])
             for r in rows(derived, "usage_ratio").iter_rows(named=True)}
    want_pm, want_ratio = {}, {}
    for (p, level, code, ind), (v, _) in value.items():
        if (level, code) not in people:
            continue
        want_pm[p, level, code, ind] = v / (people[level, code] / 1e6)
        if level != "national":
            national = value[p, "national", "CN", ind][0]
            want_ratio[p, level, code, ind] = ((v / national) / (people[level, code] / people["national", "CN"]), "ok") \
                if national else (None, "new")
    assert set(per_million) == set(want_pm) and set(ratio) == set(want_ratio)
    assert all(close(per_million[k], w) for k, w in want_pm.items())
    for key, (want, status) in want_ratio.items():
        assert ratio[key][1] == status and (want is None or close(ratio[key][0], want)), key


# ---- only from the disclosed table; determinism; growth ranks --------------------------------------------------------

def test_a_suppressed_input_suppresses_every_measure_built_on_it():
    table = suppress(make_table(6, floats=True), [("2020Q3", "city", "440300", "x"), ("2020Q3", "province", "440000", "x")])
    derived = derive(table)
    at = (pl.col("period") == "2020Q3") & (pl.col("industry") == "x") & (pl.col("geo_code") == "CN")
    across_cities = derived.filter(at & (pl.col("geo_level") == "city")
                                   & pl.col("measure").is_in(["hhi", "gini", "theil", "theil_between",
                                                              "theil_within"]))
    assert across_cities.height == 7 and (across_cities["status"] == "suppressed").all()
    assert across_cities["value"].is_null().all()
    own = derived.filter((pl.col("geo_code") == "440300") & (pl.col("industry") == "x")
                         & (pl.col("period") == "2020Q3") & pl.col("measure").is_in(
        ["contribution_geo", "contribution_industry", "per_million_residents", "usage_ratio"]))
    assert own.height and (own["status"] == "suppressed").all()
    # the quarter that takes 2020Q3 as its reference, too
    later = derived.filter((pl.col("geo_code") == "440300") & (pl.col("industry") == "x")
                           & (pl.col("reference_period") == "2020Q3") & pl.col("measure").str.starts_with("contrib"))
    assert later.height and (later["status"] == "suppressed").all()
    shares = shift_share_table(table)
    hit = shares.filter(pl.col("geo_code").is_in(["440300", "440000"])
                        & ((pl.col("period") == "2020Q3") | (pl.col("reference_period") == "2020Q3")))
    assert hit.height == 2 and (hit["status"] == "suppressed").all() and hit["change"].is_null().all()
    assert (shares.filter(pl.col("geo_code") == "110000")["status"] == "ok").all()


def _bytes(frame: pl.DataFrame, tmp_path, name: str) -> bytes:
    path = write_parquet_atomic(frame, tmp_path / name)
    return path.read_bytes()


@pytest.mark.parametrize("seed", [1, 99])
def test_shuffled_input_rows_give_byte_identical_files(tmp_path, seed):
    table = make_table(seed, zeros=0.2, floats=True)
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=seed)
    reversed_ = pl.concat([table[i::3] for i in range(3)]).reverse()  # several chunks, another order
    derived = [_bytes(derive(t), tmp_path, f"d{i}.parquet") for i, t in enumerate((table, shuffled, reversed_))]
    shares = [_bytes(shift_share_table(t), tmp_path, f"s{i}.parquet") for i, t in enumerate((table, shuffled,
                                                                                             reversed_))]
    assert derived[0] == derived[1] == derived[2]
    assert shares[0] == shares[1] == shares[2]


def test_growth_ranks_on_yoy_leave_out_tiny_references():
    table = make_table(12, zeros=0.0)
    tiny = (pl.col("period") == "2020Q1") & (pl.col("geo_level") == "city") & (pl.col("geo_code") == "650100") \
        & (pl.col("industry") == "all")
    table = table.with_columns(pl.when(tiny).then(0.5).otherwise(pl.col("value")).alias("value"))
    ranked = rows(derive(table, min_reference=1.0), "growth_rank", period="2021Q1", geo_level="city", industry="all")
    assert set(ranked["comparison"]) == {"since_base", "yoy"}
    yoy = dict(ranked.filter(pl.col("comparison") == "yoy").select("geo_code", "value").iter_rows())
    assert "650100" not in yoy and sorted(yoy.values())[0] == 1.0
    everyone = rows(derive(table), "growth_rank", period="2021Q1", geo_level="city", industry="all",
                    comparison="yoy")
    assert dict(everyone.select("geo_code", "value").iter_rows())["650100"] == 1.0  # 0.5 -> x: the tiny base tops
    assert len(yoy) == everyone.height - 1
