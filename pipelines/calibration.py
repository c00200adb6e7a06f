"""Calibration targets for the default (demo) dataset.

Builds the target table ``value[metric, quarter, cell, industry]`` in index points (1 point = 1 % of the national
total of that metric in the base quarter 2020Q1).  A *cell* is a city code of ``seeds/regions.csv`` or
``<province code>U`` (usage a province's data could not place in a city).  ``pipelines.demo_data`` then writes raw
billing rows whose amounts add up, cell by cell, to ``value * POINT_YUAN[metric]``, so that the standard index
computation (index = 100 * raw / raw(2020Q1, national)) reproduces the figures published by the source.

Every published figure the targets are built to reproduce is a named constant below with a pointer to
``/work/shared/METHOD.md`` ("the figures it must reproduce").  Everything the source does not say is filled
generically (deterministic pseudo-random sizes and growth), and the published constraints are enforced last
(exact values / sums, orderings), with assertions in ``check_targets``.

Build order (each stage only splits the totals fixed by the previous one, so published totals stay exact):
  1. national series per metric                      (NATIONAL_SERIES)
  2. province x quarter                               (PROVINCE_AI / PROVINCE_CLOUD tables)
  3. city (and province-unallocated) x quarter       (generic shares + CITY_* anchors)
  4. industry split of each cell x quarter            (generic mix + national industry targets, IPF)

No dagster import here (plain numpy/polars).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"

QUARTERS = ("2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1")
BASE_QUARTER = "2020Q1"
YEAR_2020 = QUARTERS[:4]
METRICS = ("cloud", "ai")

# Yuan of raw consumption per index point (the base quarter national total is 100 points).
POINT_YUAN = {"cloud": 1.0e6, "ai": 1.0e5}

# ---------------------------------------------------------------------------------------------------------------
# 1. National series.  METHOD.md "National".
# ---------------------------------------------------------------------------------------------------------------
# AI: the series that meets +93 %, mean QoQ 22.2 %, 2020Q3 QoQ +79.6 % and Q3+Q4 = 65 % of 2020 (METHOD.md).
NATIONAL_AI = (100.0, 118.56, 212.93, 192.96, 193.00)
# Cloud: only 2021Q1 / 2020Q1 = 1.57 (+57 %) is published; the path in between is a smooth choice.
NATIONAL_CLOUD = (100.0, 112.0, 126.0, 141.0, 157.0)
NATIONAL_SERIES = {"ai": NATIONAL_AI, "cloud": NATIONAL_CLOUD}

# ---------------------------------------------------------------------------------------------------------------
# 2. Provinces.  Keyed by short_zh of seeds/regions.csv.
# ---------------------------------------------------------------------------------------------------------------
# METHOD.md "Provinces, AI, 2021Q1": published 2021Q1 values (exact, 2 decimals).
PROVINCE_AI_2021Q1 = {
    "北京": 57.23, "广东": 51.74, "上海": 26.76, "四川": 10.38, "江苏": 8.21,
    "浙江": 6.55, "山东": 4.93, "重庆": 3.52, "湖北": 3.39, "陕西": 2.86,
}
# ... and "the other 21 provinces share 17.43, each below 2.86".
PROVINCE_AI_2021Q1_OTHERS_TOTAL = 17.43
# Rank change vs the 2020 annual ranking (positive = moved up).  METHOD.md.
PROVINCE_AI_RANK_CHANGE = {
    "北京": 0, "广东": 0, "上海": 0, "四川": +1, "江苏": -1, "浙江": 0, "山东": +8, "重庆": +3, "湖北": +9, "陕西": -3,
}
# Province AI size top 10 (2020 annual) and cloud size / growth top 10s.  METHOD.md "Top-10 rankings".
PROVINCE_AI_SIZE_TOP10 = ("北京", "广东", "上海", "江苏", "四川", "浙江", "陕西", "西藏", "福建", "贵州")
PROVINCE_AI_GROWTH_TOP10 = ("宁夏", "新疆", "云南", "辽宁", "吉林", "天津", "湖北", "山西", "青海", "山东")
PROVINCE_CLOUD_SIZE_TOP10 = ("上海", "北京", "广东", "浙江", "湖北", "江苏", "四川", "福建", "天津", "山西")
PROVINCE_CLOUD_GROWTH_TOP10 = ("新疆", "山西", "辽宁", "宁夏", "内蒙古", "西藏", "安徽", "湖南", "青海", "甘肃")
TOP3_SHARE_2021Q1 = 0.703   # 135.73 / 193
TOP3_SHARE_2020 = 0.70      # "about 70 %" (+-0.5 points)

# AI province table: 2020 annual value (chosen so that the 2020 ranking is the published one: top 10 as
# PROVINCE_AI_SIZE_TOP10, 重庆 11th, 山东 15th, 湖北 18th, and top 3 = 70.0 % of 624.45), 2021Q1 value for the
# 21 unpublished provinces (scaled so they add up to 17.43), and growth 2021Q1/2020Q1 for the published growth
# top 10 (None = follows from the 2020Q1 level, which is annual / common ratio).
#            annual   2021Q1   growth
PROVINCE_AI = {
    "北京":   (186.0,   None,    None),
    "广东":   (163.0,   None,    None),
    "上海":   (100.0,   None,    None),
    "江苏":   (30.0,    None,    None),
    "四川":   (26.0,    None,    None),
    "浙江":   (22.0,    None,    None),
    "陕西":   (16.0,    None,    None),
    "西藏":   (13.0,    2.20,    None),
    "福建":   (11.0,    2.05,    None),
    "贵州":   (10.0,    1.90,    None),
    "重庆":   (8.0,     None,    None),
    "河南":   (6.6,     1.25,    None),
    "湖南":   (6.2,     1.15,    None),
    "河北":   (5.7,     1.00,    None),
    "山东":   (5.2,     None,    5.0),
    "安徽":   (4.6,     0.85,    None),
    "广西":   (4.0,     0.72,    None),
    "湖北":   (3.6,     None,    6.5),
    "江西":   (3.0,     0.55,    None),
    "黑龙江": (2.4,     0.42,    None),
    "天津":   (2.2,     1.30,    7.0),
    "辽宁":   (2.0,     1.15,    9.0),
    "内蒙古": (1.8,     0.32,    None),
    "山西":   (1.75,    0.95,    6.0),
    "云南":   (1.6,     1.00,    10.0),
    "甘肃":   (1.4,     0.26,    None),
    "吉林":   (1.2,     0.70,    8.0),
    "海南":   (1.1,     0.22,    None),
    "新疆":   (1.0,     0.65,    11.0),
    "青海":   (0.6,     0.30,    5.5),
    "宁夏":   (0.55,    0.36,    12.0),
}

# Cloud province table: 2020 annual value (relative; scaled to the national annual total) and growth
# 2021Q1/2020Q1 for the published growth top 10 (others: a common base growth solved for the national +57 %,
# with a deterministic spread that stays below the 10th).
#            annual   growth
PROVINCE_CLOUD = {
    "上海":   (90.0,    None),
    "北京":   (80.0,    None),
    "广东":   (70.0,    None),
    "浙江":   (40.0,    None),
    "湖北":   (25.0,    None),
    "江苏":   (22.0,    None),
    "四川":   (18.0,    None),
    "福建":   (14.0,    None),
    "天津":   (12.0,    None),
    "山西":   (11.0,    3.6),
    "山东":   (9.0,     None),
    "河南":   (8.5,     None),
    "重庆":   (8.0,     None),
    "陕西":   (7.5,     None),
    "湖南":   (7.0,     2.45),
    "安徽":   (6.5,     2.6),
    "贵州":   (6.0,     None),
    "河北":   (5.5,     None),
    "辽宁":   (5.0,     3.3),
    "江西":   (4.5,     None),
    "云南":   (4.0,     None),
    "广西":   (4.0,     None),
    "黑龙江": (3.5,     None),
    "吉林":   (3.0,     None),
    "新疆":   (3.0,     4.0),
    "内蒙古": (2.5,     2.9),
    "甘肃":   (2.0,     2.2),
    "海南":   (2.0,     None),
    "宁夏":   (1.5,     3.1),
    "青海":   (1.0,     2.3),
    "西藏":   (0.8,     2.75),
}
# Largest growth an unpublished province may get (must stay below the 10th of the published list).
CLOUD_OTHER_GROWTH_MAX = 2.0


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _unit(key: str) -> float:
    """Deterministic uniform(0, 1) from a string key (stable across runs and platforms)."""
    h = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return (int.from_bytes(h, "little") + 0.5) / 2.0**64


def _normal(key: str) -> float:
    u1, u2 = _unit(key + "#1"), _unit(key + "#2")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def ipf(seed: np.ndarray, row_sums: np.ndarray, col_sums: np.ndarray, iters: int = 2000, tol: float = 1e-13):
    """Iterative proportional fitting of a non-negative matrix to row and column sums (consistent totals)."""
    x = np.array(seed, dtype=np.float64)
    for _ in range(iters):
        rs = x.sum(axis=1)
        x *= np.divide(row_sums, rs, out=np.zeros_like(rs), where=rs > 0)[:, None]
        cs = x.sum(axis=0)
        x *= np.divide(col_sums, cs, out=np.zeros_like(cs), where=cs > 0)[None, :]
        err = np.abs(x.sum(axis=1) - row_sums).max()
        if err < tol * max(1.0, float(np.abs(row_sums).max())):
            break
    return x


@dataclass(frozen=True)
class Seeds:
    regions: pl.DataFrame
    provinces: pl.DataFrame      # code, short_zh, name_zh, municipality
    cities: pl.DataFrame         # code, short_zh, name_zh, province_code
    industries: pl.DataFrame     # code, name_zh, aliases, group
    tiers: pl.DataFrame | None
    clusters: pl.DataFrame | None


def load_seeds(seeds_dir: str | Path = SEEDS_DIR) -> Seeds:
    d = Path(seeds_dir)
    regions = pl.read_csv(d / "regions.csv", schema_overrides={"code": pl.Utf8, "province_code": pl.Utf8})
    provinces = (
        regions.filter(pl.col("level") == "province")
        .select("code", "short_zh", "name_zh")
        .sort("code")
    )
    cities = (
        regions.filter(pl.col("level") == "city")
        .select("code", "short_zh", "name_zh", "province_code")
        .sort("code")
    )
    muni = set(cities.filter(pl.col("code") == pl.col("province_code"))["code"].to_list())
    provinces = provinces.with_columns(pl.col("code").is_in(sorted(muni)).alias("municipality"))
    industries = pl.read_csv(d / "industries.csv").with_columns(pl.col("aliases").fill_null(""))
    tiers = clusters = None
    if (d / "city_tiers.csv").exists():
        tiers = pl.read_csv(d / "city_tiers.csv", schema_overrides={"city_code": pl.Utf8})
    if (d / "city_clusters.csv").exists():
        clusters = pl.read_csv(d / "city_clusters.csv", schema_overrides={"city_code": pl.Utf8})
    return Seeds(regions, provinces, cities, industries, tiers, clusters)


# ---------------------------------------------------------------------------------------------------------------
# 2. provinces x quarter
# ---------------------------------------------------------------------------------------------------------------
def _province_ai(prov_short: list[str]) -> np.ndarray:
    """AI province x quarter matrix (31 x 5) meeting the published 2021Q1 table, ranks and growth leaders."""
    nat = np.array(NATIONAL_AI)
    annual_total = nat[:4].sum()
    missing = set(prov_short) ^ set(PROVINCE_AI)
    if missing:
        raise ValueError(f"PROVINCE_AI does not match the seeds' provinces: {sorted(missing)}")
    n = len(prov_short)
    A = np.array([PROVINCE_AI[p][0] for p in prov_short])
    A *= annual_total / A.sum()                      # exact national 2020 total (ranks and shares unchanged)
    # 2021Q1: published values; the 21 others scaled to add up to 17.43 (then rounded to cents, remainder to the
    # largest of them).
    V = np.zeros(n)
    others = [i for i, p in enumerate(prov_short) if p not in PROVINCE_AI_2021Q1]
    for i, p in enumerate(prov_short):
        if p in PROVINCE_AI_2021Q1:
            V[i] = PROVINCE_AI_2021Q1[p]
    raw = np.array([PROVINCE_AI[prov_short[i]][1] for i in others], dtype=float)
    vo = np.round(raw * PROVINCE_AI_2021Q1_OTHERS_TOTAL / raw.sum(), 2)
    vo[np.argmax(vo)] += round(PROVINCE_AI_2021Q1_OTHERS_TOTAL - vo.sum(), 2)
    V[others] = vo
    # 2020Q1: growth leaders from their growth, everybody else annual / R with R such that sum = 100.
    G = np.array([PROVINCE_AI[p][2] or np.nan for p in prov_short])
    lead = ~np.isnan(G)
    Q1 = np.zeros(n)
    Q1[lead] = V[lead] / G[lead]
    rest = ~lead
    Q1[rest] = A[rest] * (nat[0] - Q1[lead].sum()) / A[rest].sum()
    # 2020Q2..Q4: IPF of a smooth path (geometric from Q1 to 2021Q1, times the national seasonal shape).
    g = V / Q1
    t = np.arange(1, 4) / 4.0
    seed = Q1[:, None] * g[:, None] ** t[None, :] * (nat[1:4] / (nat[0] * (nat[4] / nat[0]) ** t))[None, :]
    mid = ipf(seed, A - Q1, nat[1:4])
    return np.column_stack([Q1, mid, V])


def _province_cloud(prov_short: list[str]) -> np.ndarray:
    nat = np.array(NATIONAL_CLOUD)
    missing = set(prov_short) ^ set(PROVINCE_CLOUD)
    if missing:
        raise ValueError(f"PROVINCE_CLOUD does not match the seeds' provinces: {sorted(missing)}")
    n = len(prov_short)
    A = np.array([PROVINCE_CLOUD[p][0] for p in prov_short])
    A *= nat[:4].sum() / A.sum()
    G_named = np.array([PROVINCE_CLOUD[p][1] or np.nan for p in prov_short])
    named = ~np.isnan(G_named)
    spread = np.array([0.9 + 0.2 * _unit("cloud-growth|" + p) for p in prov_short])
    t4 = np.arange(4) / 4.0

    def build(g0: float):
        G = np.where(named, G_named, np.minimum(g0 * spread, CLOUD_OTHER_GROWTH_MAX))
        path = (G[:, None] ** t4[None, :]).sum(axis=1)          # annual / Q1 on a geometric path
        Q1 = A / path
        Q1 *= nat[0] / Q1.sum()
        return G, Q1

    lo, hi = 0.5, CLOUD_OTHER_GROWTH_MAX
    for _ in range(200):                                       # bisection: sum(Q1 * G) = national 2021Q1
        mid = 0.5 * (lo + hi)
        G, Q1 = build(mid)
        if (G * Q1).sum() > nat[4]:
            hi = mid
        else:
            lo = mid
    G, Q1 = build(0.5 * (lo + hi))
    V = G * Q1
    V *= nat[4] / V.sum()
    t = np.arange(1, 4) / 4.0
    g = V / Q1
    seed = Q1[:, None] * g[:, None] ** t[None, :]
    midq = ipf(seed, A - Q1, nat[1:4])
    return np.column_stack([Q1, midq, V])


# ---------------------------------------------------------------------------------------------------------------
# 3. cities (and province-unallocated) x quarter
# ---------------------------------------------------------------------------------------------------------------
UNALLOCATED_SHARE = (0.01, 0.03)      # each non-municipal province: 1-3 % of its value is unallocated
CAPITAL_WEIGHT = 5.0                  # a province capital (code xx0100) is this many times a typical city


def _city_split(seeds: Seeds, metric: str, prov: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    """Split each province's quarterly series over its cities and its unallocated cell.

    Returns (cell codes, province code per cell, cells x quarters matrix)."""
    cells: list[str] = []
    cell_prov: list[str] = []
    blocks: list[np.ndarray] = []
    t = np.arange(5) / 4.0
    for pi, row in enumerate(seeds.provinces.iter_rows(named=True)):
        pcode = row["code"]
        cs = seeds.cities.filter(pl.col("province_code") == pcode)
        codes = cs["code"].to_list()
        w = np.array([
            (CAPITAL_WEIGHT if c.endswith("0100") else 1.0) * math.exp(0.8 * _normal(f"size|{metric}|{c}"))
            for c in codes
        ])
        r = np.array([math.exp(0.25 * _normal(f"growth|{metric}|{c}")) for c in codes])
        if not row["municipality"]:
            u = UNALLOCATED_SHARE[0] + (UNALLOCATED_SHARE[1] - UNALLOCATED_SHARE[0]) * _unit(f"unalloc|{metric}|{pcode}")
            w_u = u / (1 - u) * w.sum()
            codes = codes + [pcode + "U"]
            w = np.append(w, w_u)
            r = np.append(r, 1.0)
        shares = w[:, None] * r[:, None] ** t[None, :]
        shares /= shares.sum(axis=0, keepdims=True)
        blocks.append(shares * prov[pi][None, :])
        cells += codes
        cell_prov += [pcode] * len(codes)
    return cells, cell_prov, np.vstack(blocks)


# ---------------------------------------------------------------------------------------------------------------
# 4. industries
# ---------------------------------------------------------------------------------------------------------------
# Generic national industry mix (relative weights) used where no published figure applies.
INDUSTRY_MIX = {
    "ai": {
        "finance": 204, "industry_saas": 75, "cultural_creative": 62, "real_estate": 55, "lifestyle_internet": 50,
        "retail": 40, "education": 20, "broadcasting": 18, "ecommerce": 16, "gaming": 12, "mobile": 12,
        "healthcare": 10, "government": 12, "manufacturing": 10, "tourism": 6, "energy": 5, "transport": 8,
        "other": 9.45,
    },
    "cloud": {
        "ecommerce": 200, "cultural_creative": 75, "gaming": 47, "industry_saas": 40, "manufacturing": 32,
        "finance": 24, "lifestyle_internet": 22, "education": 20, "broadcasting": 16, "retail": 15,
        "healthcare": 12, "government": 12, "mobile": 14, "real_estate": 8, "tourism": 6, "energy": 8,
        "transport": 7, "other": 10,
    },
}
MIN_INDUSTRIES_PER_CELL = 4


def _industry_split(seeds: Seeds, metric: str, cells: list[str], geo: np.ndarray) -> np.ndarray:
    """cells x industries x quarters, each cell x quarter summing to geo[cell, quarter]."""
    inds = seeds.industries["code"].to_list()
    mix = np.array([INDUSTRY_MIX[metric][i] for i in inds], dtype=float)
    mix /= mix.sum()
    ann = geo[:, :4].sum(axis=1)
    rel = ann / ann.max()
    n_cells, n_ind = len(cells), len(inds)
    t = np.arange(5) / 4.0
    out = np.zeros((n_cells, n_ind, 5))
    for ci, c in enumerate(cells):
        noise = np.array([math.exp(0.7 * _normal(f"ind|{metric}|{c}|{i}")) for i in inds])
        w = mix * noise
        # small cells use fewer industries (sparser like real data); the biggest use all of them
        k = int(np.clip(MIN_INDUSTRIES_PER_CELL + round(14 * rel[ci] ** 0.35), MIN_INDUSTRIES_PER_CELL, n_ind))
        keep = np.argsort(-w, kind="stable")[:k]
        mask = np.zeros(n_ind, bool)
        mask[keep] = True
        w = np.where(mask, w, 0.0)
        gr = np.array([math.exp(0.2 * _normal(f"indg|{metric}|{c}|{i}")) for i in inds])
        sh = w[:, None] * gr[:, None] ** t[None, :]
        sh /= sh.sum(axis=0, keepdims=True)
        out[ci] = sh * geo[ci][None, :]
    return out


# ---------------------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _build(seeds_dir: str) -> pl.DataFrame:
    seeds = load_seeds(seeds_dir)
    prov_short = seeds.provinces["short_zh"].to_list()
    inds = seeds.industries["code"].to_list()
    frames = []
    for metric in METRICS:
        prov = _province_ai(prov_short) if metric == "ai" else _province_cloud(prov_short)
        cells, cell_prov, geo = _city_split(seeds, metric, prov)
        cube = _industry_split(seeds, metric, cells, geo)
        n_c, n_i, n_q = cube.shape
        frames.append(pl.DataFrame({
            "metric": [metric] * (n_c * n_i * n_q),
            "quarter": np.tile(np.array(QUARTERS), n_c * n_i),
            "cell": np.repeat(np.array(cells), n_i * n_q),
            "province_code": np.repeat(np.array(cell_prov), n_i * n_q),
            "industry": np.tile(np.repeat(np.array(inds), n_q), n_c),
            "value": cube.reshape(-1),
        }))
    df = pl.concat(frames).filter(pl.col("value") > 0)
    return df


def build_targets(seeds_dir: str | Path = SEEDS_DIR) -> pl.DataFrame:
    """The target table: metric, quarter, cell, province_code, industry, value (index points, > 0 only)."""
    return _build(str(Path(seeds_dir).resolve())).clone()
