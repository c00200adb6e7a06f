"""Calibration targets for the default (demo) dataset.

Builds the target table ``value[metric, quarter, cell, industry]`` in index points (1 point = 1 % of the national
total of that metric in the base quarter 2020Q1).  A *cell* is a city code of ``seeds/regions.csv`` or
``<province code>U`` (usage a province's data could not place in a city).  ``pipelines.demo.data`` then writes raw
billing rows whose amounts add up, cell by cell, to ``value * POINT_YUAN[metric]``, so that the standard index
computation (index = 100 * raw / raw(2020Q1, national)) reproduces the figures published by the source.

Every published figure the targets are built to reproduce is a named constant below with a pointer to
``docs/METHOD.md`` ("The figures the default dataset reproduces").  Everything the source does not say is filled
generically (deterministic pseudo-random sizes and growth), and the published constraints are enforced last
(exact values / sums, orderings); ``tests/test_demo_data.py`` re-aggregates the generated rows and asserts them.

Build order (each stage only splits the totals fixed by the previous one, so published totals stay exact):
  1. national series per metric                      (NATIONAL_SERIES)
  2. province x quarter                               (PROVINCE_AI / PROVINCE_CLOUD tables)
  3. city (and province-unallocated) x quarter       (generic shares + CITY_* anchors)
  4. industry split of each cell x quarter            (generic mix + national industry targets, IPF)
  5. city x industry structure                        (a linear programme that moves the least mass, L1, between
     industries within cells, compensated across cells, so that no cell x quarter total and no national
     industry x quarter total changes: top-5 industries of the top-10 AI cities, tier structures)
Stage 5 uses scipy.optimize.linprog (HiGHS); scipy is installed as a dependency of great-expectations.

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

SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"

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
    "山东":   (5.2,     None,    5.11),
    "安徽":   (4.6,     0.85,    None),
    "广西":   (4.0,     0.72,    None),
    "湖北":   (3.6,     None,    6.64),
    "江西":   (3.0,     0.55,    None),
    "黑龙江": (2.4,     0.42,    None),
    "天津":   (2.2,     1.30,    7.31),
    "辽宁":   (2.0,     1.15,    9.14),
    "内蒙古": (1.8,     0.32,    None),
    "山西":   (1.75,    0.95,    5.97),
    "云南":   (1.6,     1.00,    9.83),
    "甘肃":   (1.4,     0.26,    None),
    "吉林":   (1.2,     0.70,    7.92),
    "海南":   (1.1,     0.22,    None),
    "新疆":   (1.0,     0.65,    11.08),
    "青海":   (0.6,     0.30,    5.62),
    "宁夏":   (0.55,    0.36,    12.37),
}

# Quarterly shape 2020Q2 : Q3 : Q4 of named provinces (the others follow the national shape, IPF).  METHOD.md
# "Clusters": 珠三角's member-city mean peaks in 2020Q4 (广东 holds most of the cluster), so 广东 peaks in 2020Q4.
PROVINCE_AI_MID = {"广东": (0.20, 0.25, 0.55)}

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
    "山西":   (11.0,    3.63),
    "山东":   (9.0,     None),
    "河南":   (8.5,     None),
    "重庆":   (3.8,     None),
    "陕西":   (7.5,     None),
    "湖南":   (7.0,     2.47),
    "安徽":   (6.5,     2.58),
    "贵州":   (6.0,     None),
    "河北":   (5.5,     None),
    "辽宁":   (5.0,     3.31),
    "江西":   (4.5,     None),
    "云南":   (4.0,     None),
    "广西":   (4.0,     None),
    "黑龙江": (3.5,     None),
    "吉林":   (3.0,     None),
    "新疆":   (3.0,     4.02),
    "内蒙古": (2.5,     2.91),
    "甘肃":   (2.0,     2.21),
    "海南":   (2.0,     None),
    "宁夏":   (1.5,     3.12),
    "青海":   (1.0,     2.33),
    "西藏":   (0.8,     2.74),
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
    fixed = np.array([p in PROVINCE_AI_MID for p in prov_short])
    mid = np.zeros((n, 3))
    for i, p in enumerate(prov_short):
        if fixed[i]:
            mid[i] = (A[i] - Q1[i]) * np.array(PROVINCE_AI_MID[p]) / sum(PROVINCE_AI_MID[p])
    mid[~fixed] = ipf(seed[~fixed], (A - Q1)[~fixed], nat[1:4] - mid[fixed].sum(axis=0))
    return np.column_stack([Q1, mid, V])


def _fit_to_national(build, lo: float, hi: float, annual: np.ndarray, nat: np.ndarray) -> np.ndarray:
    """Rows x 5 quarters: bisect build's free growth parameter until sum(Q1 x G) is the national 2021Q1, then
    fill 2020Q2..Q4 by IPF of a geometric path from Q1 to 2021Q1 to the rows' annual totals and the national ones."""
    for _ in range(200):
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
    seed = Q1[:, None] * (V / Q1)[:, None] ** t[None, :]
    return np.column_stack([Q1, ipf(seed, annual - Q1, nat[1:4]), V])


def _province_cloud(prov_short: list[str]) -> np.ndarray:
    nat = np.array(NATIONAL_CLOUD)
    missing = set(prov_short) ^ set(PROVINCE_CLOUD)
    if missing:
        raise ValueError(f"PROVINCE_CLOUD does not match the seeds' provinces: {sorted(missing)}")
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

    return _fit_to_national(build, 0.5, CLOUD_OTHER_GROWTH_MAX, A, nat)


# ---------------------------------------------------------------------------------------------------------------
# 3. cities (and province-unallocated) x quarter
# ---------------------------------------------------------------------------------------------------------------
UNALLOCATED_SHARE = (0.01, 0.03)      # each non-municipal province: 1-3 % of its value is unallocated
CAPITAL_WEIGHT = 2.5                  # a province capital (code xx0100) is this many times a typical city
CITY_SIZE_SD = 0.5                    # log-sd of generic city sizes
CITY_GROWTH_SD = 0.08                 # log-sd of generic city growth around their province's

# Named cities, keyed by short_zh.  (成都, 西安, 深圳, 广州 and 拉萨 also shape the cluster growth of METHOD.md
# "Clusters": 成都 grows slower than 四川, 西安 much faster than 陕西, 深圳 / 广州 faster than 广东.)  Size anchors: (share of its province in 2020Q1, share in 2021Q1); the
# quarters between follow a geometric path.  Chosen so that METHOD.md's city rankings hold:
#   AI size 2020: 北京 上海 深圳 广州 成都 杭州 南京 西安 拉萨 贵阳;  AI 2021Q1: 北京 深圳 上海 广州 成都 (杭州) 济南 重庆
#   cloud size 2020: 上海 北京 深圳 广州 杭州 武汉 成都 天津 太原 贵阳
CITY_SHARES = {
    "ai": {"深圳": (0.45, 0.58), "广州": (0.22, 0.25), "成都": (0.84, 0.62), "杭州": (0.75, 0.75),
           "南京": (0.55, 0.40), "西安": (0.34, 0.95), "拉萨": (0.75, 0.75), "贵阳": (0.85, 0.85),
           "济南": (0.50, 0.80)},
    "cloud": {"深圳": (0.50, 0.50), "广州": (0.33, 0.33), "杭州": (0.50, 0.50), "武汉": (0.70, 0.70),
              "成都": (0.80, 0.80), "贵阳": (0.85, 0.85)},
}
# Growth anchors: (share of its province in 2020Q1, growth 2021Q1/2020Q1), in the published order of the
# city growth top 10 (METHOD.md "City AI growth", "City cloud growth").
CITY_GROWTH = {
    "ai": {"克拉玛依": (0.05, 60.0), "咸宁": (0.02, 50.0), "朝阳": (0.03, 45.0), "周口": (0.005, 40.0),
           "连云港": (0.004, 35.0), "眉山": (0.005, 30.0), "阳泉": (0.03, 26.0), "河池": (0.005, 22.0),
           "银川": (0.40, 19.0), "遵义": (0.005, 16.0)},
    "cloud": {"中卫": (0.03, 30.0), "晋中": (0.02, 20.0), "鞍山": (0.04, 17.0), "乌鲁木齐": (0.20, 14.0),
              "太原": (0.45, 7.0), "大兴安岭地区": (0.01, 6.6), "延边州": (0.05, 6.2), "绥化": (0.03, 5.8),
              "泰州": (0.03, 5.4), "湖州": (0.03, 5.0)},
}
# Cluster tilt of generic (unanchored) member cities: (weight multiplier in 2020Q1, in 2021Q1), within their
# province.  METHOD.md "Clusters": 长江中游 and 珠三角 the two highest AI growth rates (长江中游 > 300 %); 兰西 and
# 关中平原 growing faster than the median of the seven.
CLUSTER_TILT = {
    "ai": {
        "长江中游": {"*": (0.25, 4.0)},
        "珠三角": {"*": (0.33, 3.0)},
        "成渝": {"四川": (2.5, 0.7)},
        "关中平原": {"陕西": (0.1, 3.0), "山西": (3.0, 3.0), "甘肃": (0.3, 3.0)},
        "兰西": {"甘肃": (0.7, 1.4)},
    },
    "cloud": {},
}
# Cities that must stay below the 10th of a size list (enforced last, on generic cities only): metric -> list
# of (period, name of the city that bounds everybody else from above).  '2020' = annual.
CITY_SIZE_BOUNDS = {"ai": [("2020", "贵阳"), ("2021Q1", "济南")], "cloud": [("2020", "贵阳")]}
# AI 2021Q1: only 杭州 may sit between 成都 and 济南 (济南 7th, 重庆 8th), so generic cities stay below 重庆.
CITY_AI_2021Q1_BOUND = "重庆"


def _city_lookup(seeds: Seeds, short: str) -> str:
    hit = seeds.cities.filter((pl.col("short_zh") == short) | (pl.col("name_zh") == short))
    if hit.height != 1:
        raise ValueError(f"city {short!r} is not unique in seeds/regions.csv ({hit.height} matches)")
    return hit["code"][0]


def _city_split(seeds: Seeds, metric: str, prov: np.ndarray) -> tuple[list[str], list[str], np.ndarray]:
    """Split each province's quarterly series over its cities and its unallocated cell.

    Returns (cell codes, province code per cell, cells x quarters matrix)."""
    t = np.arange(5) / 4.0
    anchors: dict[str, tuple[float, float]] = {}
    for short, (s1, s5) in CITY_SHARES[metric].items():
        anchors[_city_lookup(seeds, short)] = (s1, s5)
    prov_idx = {c: i for i, c in enumerate(seeds.provinces["code"].to_list())}
    c2p = dict(zip(seeds.cities["code"].to_list(), seeds.cities["province_code"].to_list()))
    for short, (s1, g) in CITY_GROWTH[metric].items():
        c = _city_lookup(seeds, short)
        p = prov[prov_idx[c2p[c]]]
        anchors[c] = (s1, s1 * g * p[0] / p[4])

    cluster_of: dict[str, str] = {}
    if seeds.clusters is not None:
        for cl, c in zip(seeds.clusters["cluster_name_zh"].to_list(), seeds.clusters["city_code"].to_list()):
            if cl in CLUSTER_TILT[metric]:
                cluster_of[c] = cl
    blocks: list[tuple[list[str], str, np.ndarray, np.ndarray]] = []
    for pi, row in enumerate(seeds.provinces.iter_rows(named=True)):
        pcode = row["code"]
        codes = seeds.cities.filter(pl.col("province_code") == pcode)["code"].to_list()
        if row["municipality"]:
            blocks.append((codes, pcode, np.ones((1, 5)), np.zeros(1, bool)))
            continue
        w = np.array([(CAPITAL_WEIGHT if c.endswith("0100") else 1.0)
                      * math.exp(CITY_SIZE_SD * _normal(f"size|{metric}|{c}")) for c in codes])
        r = np.array([math.exp(CITY_GROWTH_SD * _normal(f"growth|{metric}|{c}")) for c in codes])
        tilt = [CLUSTER_TILT[metric].get(cluster_of.get(c, ""), {}) for c in codes]
        tilt = [t.get(row["short_zh"], t.get("*", (1.0, 1.0))) for t in tilt]
        k1 = np.array([t[0] for t in tilt])
        k5 = np.array([t[1] for t in tilt])
        r = r * k5 / k1
        w = w * k1
        u = UNALLOCATED_SHARE[0] + (UNALLOCATED_SHARE[1] - UNALLOCATED_SHARE[0]) * _unit(f"unalloc|{metric}|{pcode}")
        codes = codes + [pcode + "U"]
        fixed = np.array([c in anchors for c in codes])
        s1 = np.zeros(len(codes))
        s5 = np.zeros(len(codes))
        for i, c in enumerate(codes):
            if c in anchors:
                s1[i], s5[i] = anchors[c]
        free1, free5 = 1.0 - s1.sum(), 1.0 - s5.sum()
        if free1 <= 0 or free5 <= 0:
            raise ValueError(f"city anchors of {pcode} ({metric}) leave no room for its other cities")
        # unallocated: u of the province in every quarter (when room), generic cities share the rest
        gen = ~fixed
        gen[-1] = False
        uu = min(u, 0.5 * free1, 0.5 * free5)
        s1[-1], s5[-1] = uu, uu
        wg = np.append(w, 0.0)[gen]
        rg = np.append(r, 1.0)[gen]
        s1[gen] = (free1 - uu) * wg / wg.sum()
        s5[gen] = (free5 - uu) * wg * rg / (wg * rg).sum()
        shares = s1[:, None] ** (1 - t[None, :]) * s5[:, None] ** t[None, :]
        shares /= shares.sum(axis=0, keepdims=True)
        blocks.append((codes, pcode, shares, gen))
    # enforcement: generic cities stay below the named bounds (cap, hand the excess to the province's other
    # generic cities and its unallocated cell)
    bounds = []
    for period, short in CITY_SIZE_BOUNDS[metric]:
        bounds.append((period, _city_lookup(seeds, short)))
    if metric == "ai":
        bounds.append(("2021Q1", _city_lookup(seeds, CITY_AI_2021Q1_BOUND)))
    named = set(anchors) | {c for (_, c) in bounds}
    for _ in range(20):
        vals = {}
        for (codes, pcode, shares, gen), pv in zip(blocks, prov):
            for c, sh in zip(codes, shares):
                vals[c] = sh * pv
        changed = False
        for period, bc in bounds:
            sel = slice(0, 4) if period == "2020" else slice(4, 5)
            cap = 0.97 * vals[bc][sel].sum()
            for (codes, pcode, shares, gen), pv in zip(blocks, prov):
                for i, c in enumerate(codes):
                    if not gen[i] or c in named:
                        continue
                    v = (shares[i] * pv)[sel].sum()
                    if v > cap:
                        excess = shares[i] * (1 - cap / v)
                        shares[i] -= excess
                        others = gen.copy()
                        others[i] = False
                        others[-1] = True
                        tot = shares[others].sum(axis=0)
                        shares[others] += excess[None, :] * shares[others] / tot[None, :]
                        changed = True
        if not changed:
            break
    cells: list[str] = []
    cell_prov: list[str] = []
    mats = []
    for (codes, pcode, shares, gen), pv in zip(blocks, prov):
        cells += codes
        cell_prov += [pcode] * len(codes)
        mats.append(shares * pv[None, :])
    return cells, cell_prov, np.vstack(mats)


# ---------------------------------------------------------------------------------------------------------------
# 4. industries
# ---------------------------------------------------------------------------------------------------------------
# National 2020 annual value per industry, in index points (sum = the national 2020 annual total).
# METHOD.md "Industries": AI: 金融 > 200 and 5-6x the mean (624.45/18 = 34.69); 行业工具, 文创 2nd/3rd; 房地产 4th;
# 生活互联 and 零售 above the mean.  The AI digital-native industries are kept as small as these orderings allow
# (行业工具 > 文创 > 房地产 > 零售 > 生活互联 > mean) and the traditional ones large, because METHOD.md "Tiers" needs
# traditional + 金融 > 70 % of every tier (nationally 75 % here; the digital-native rest goes mostly to the cities
# whose published top 5 is digital-native, and to the province-unallocated cells).  Cloud (mean 479/18 = 26.61): 电商 > 7x; top 4 电商 文创 游戏 行业工具; 文创 ~2.7x,
# 游戏 ~1.7x; 制造 above the mean; 教育 制造 广电 in the top 10.
INDUSTRY_ANNUAL = {
    "ai": {
        "finance": 207, "industry_saas": 40, "cultural_creative": 39, "real_estate": 38, "retail": 37,
        "lifestyle_internet": 35.5, "broadcasting": 34, "education": 30, "government": 28, "healthcare": 22,
        "manufacturing": 22, "transport": 18, "tourism": 17, "energy": 15, "ecommerce": 12, "gaming": 9,
        "mobile": 9, "other": 11.95,
    },
    "cloud": {
        "ecommerce": 195, "cultural_creative": 72, "gaming": 45, "industry_saas": 36, "manufacturing": 28,
        "finance": 15, "education": 14, "broadcasting": 13, "lifestyle_internet": 10.5, "retail": 9,
        "mobile": 8, "healthcare": 6, "government": 5, "energy": 4, "real_estate": 4, "transport": 4,
        "tourism": 3.5, "other": 7.0,
    },
}
# Growth 2021Q1/2020Q1 - 1 per industry.  Named: METHOD.md (AI growth top 3 文旅 广电 制造; cloud growth top 3
# 政务 医疗 能源, 政务 > 200 % and ~4x the unweighted mean growth, 医疗 > 140 % and ~2.5x, mean ~56-57 %, 教育 制造
# 广电 in the cloud growth top 10).  The others are shifted by a common amount so that the industries add up to
# the national growth exactly.
INDUSTRY_GROWTH_NAMED = {
    "ai": {"tourism": 4.0, "broadcasting": 3.2, "manufacturing": 2.8},
    "cloud": {"government": 2.26, "healthcare": 1.45, "energy": 1.20,
              "education": 0.95, "manufacturing": 0.90, "broadcasting": 0.85},
}
INDUSTRY_GROWTH_OTHER = {
    "ai": {"finance": 0.95, "industry_saas": 0.9, "cultural_creative": 0.85, "real_estate": 0.9,
           "lifestyle_internet": 0.95, "retail": 1.0, "education": 1.2, "ecommerce": 0.8, "gaming": 0.7,
           "mobile": 0.75, "healthcare": 1.3, "government": 1.1, "energy": 0.9, "transport": 0.8, "other": 0.7},
    # cloud: the big digital-native industries grow near the national rate, the small remaining ones hardly at
    # all, so that the unweighted mean growth is ~56.5 % while the weighted one is the national 57 %.
    "cloud": {"ecommerce": 0.55, "cultural_creative": 0.60, "gaming": 0.55, "industry_saas": 0.65,
              "finance": 0.08, "lifestyle_internet": 0.10, "retail": 0.08, "mobile": 0.05,
              "real_estate": -0.15, "transport": 0.05, "tourism": -0.20, "other": -0.10},
}
INDUSTRY_GROWTH_OTHER_MAX = {"ai": 2.5, "cloud": 0.84}
INDUSTRY_SEED_SD = 0.6
MIN_INDUSTRIES_PER_CELL = 7  # a city bills in at least 7 of the 18 industries


def _industry_national(inds: list[str], metric: str) -> np.ndarray:
    """industries x quarters national targets."""
    nat = np.array(NATIONAL_SERIES[metric])
    A = np.array([INDUSTRY_ANNUAL[metric][i] for i in inds], float)
    A *= nat[:4].sum() / A.sum()
    named = INDUSTRY_GROWTH_NAMED[metric]
    base = np.array([INDUSTRY_GROWTH_OTHER[metric].get(i, 0.5) for i in inds])
    is_named = np.array([i in named for i in inds])
    t4 = np.arange(4) / 4.0

    def build(shift: float):
        g = np.where(is_named, [named.get(i, 0.0) for i in inds],
                     np.minimum(base + shift, INDUSTRY_GROWTH_OTHER_MAX[metric]))
        G = 1.0 + np.maximum(g, -0.9)
        Q1 = A / (G[:, None] ** t4[None, :]).sum(axis=1)
        Q1 *= nat[0] / Q1.sum()
        return G, Q1

    return _fit_to_national(build, -1.5, 1.5, A, nat)


def _industry_split(seeds: Seeds, metric: str, cells: list[str], geo: np.ndarray) -> np.ndarray:
    """cells x industries x quarters; each cell x quarter sums to geo[cell, quarter] exactly, each industry x
    quarter to the national industry target (IPF)."""
    inds = seeds.industries["code"].to_list()
    nat_ind = _industry_national(inds, metric)
    mix = nat_ind[:, :4].sum(axis=1)
    mix /= mix.sum()
    ann = geo[:, :4].sum(axis=1)
    rel = ann / ann.max()
    n_cells, n_ind = len(cells), len(inds)
    seed = np.zeros((n_cells, n_ind))
    for ci, c in enumerate(cells):
        noise = np.array([math.exp(INDUSTRY_SEED_SD * _normal(f"ind|{metric}|{c}|{i}")) for i in inds])
        w = mix * noise
        # small cells use fewer industries (sparse like real data); the biggest use all of them
        k = int(np.clip(MIN_INDUSTRIES_PER_CELL + round(14 * rel[ci] ** 0.3), MIN_INDUSTRIES_PER_CELL, n_ind))
        keep = np.argsort(-w, kind="stable")[:k]
        seed[ci, keep] = w[keep]
    out = np.zeros((n_cells, n_ind, 5))
    for q in range(5):
        x = ipf(seed * geo[:, q:q + 1], geo[:, q], nat_ind[:, q], iters=500, tol=1e-12)
        # exact cell totals (the published geography) win over the industry margins
        x *= (geo[:, q] / x.sum(axis=1))[:, None]
        out[:, :, q] = x
    return out


# ---------------------------------------------------------------------------------------------------------------
# 5. city x industry structure (METHOD.md "Top-5 industries ..." and "Tiers")
# ---------------------------------------------------------------------------------------------------------------
# Top-5 industries by AI index (2020 annual) of the top-10 AI cities, in order.  METHOD.md.
CITY_AI_TOP5 = {
    "北京": ("lifestyle_internet", "cultural_creative", "finance", "industry_saas", "education"),
    "上海": ("retail", "real_estate", "finance", "industry_saas", "gaming"),
    "深圳": ("finance", "industry_saas", "mobile", "ecommerce", "gaming"),
    "广州": ("broadcasting", "ecommerce", "cultural_creative", "industry_saas", "education"),
    "成都": ("finance", "lifestyle_internet", "industry_saas", "government", "healthcare"),
    "杭州": ("industry_saas", "finance", "ecommerce", "lifestyle_internet", "cultural_creative"),
    "南京": ("broadcasting", "finance", "industry_saas", "ecommerce", "mobile"),
    "西安": ("finance", "broadcasting", "industry_saas", "ecommerce", "transport"),
    "拉萨": ("real_estate", "education", "industry_saas", "ecommerce", "other"),
    "贵阳": ("government", "finance", "cultural_creative", "industry_saas", "ecommerce"),
}
# Tiers of the source: five, 新一线 folded into 二线 (seeds/city_tiers.csv, vintage below).
TIER_VINTAGE = 2020
TIER_FOLD = {"tier1": 1, "new_tier1": 2, "tier2": 2, "tier3": 3, "tier4": 4, "tier5": 5}
# METHOD.md "Tiers".  AI: traditional + finance above AI_TRAD_FIN_MIN in every tier; the industries that lead each
# tier (in order; the last one of each tuple is larger than every industry not listed).
AI_TRAD_FIN_MIN = 0.70
AI_TIER_LEADERS = {1: ("finance",), 2: ("finance",), 3: ("finance", "broadcasting"),
                   4: ("finance", "industry_saas"), 5: ("finance", "real_estate")}
AI_TIER_LEADERS_UNORDERED = {3}          # tier 3: 金融 and 广电 are "the two largest" (either order)
# Cloud: tier 1 share of these four > CLOUD_TIER1_DN4_MIN and the highest of all tiers; tier 2: all other industries
# together ~CLOUD_TIER2_REST (+-0.5 points, the highest); digital-native share rising from tier 2 to tier 5.
CLOUD_DN4 = ("ecommerce", "cultural_creative", "gaming", "industry_saas")
CLOUD_TIER1_DN4_MIN = 0.78
CLOUD_TIER2_REST = 0.44
# Margins the structure is solved with (so that rounding never flips an order): relative to the entity's total.
STRUCT_ORDER_MARGIN = 0.004
STRUCT_SHARE_MARGIN = 0.004


def _tier_of(seeds: Seeds) -> dict[str, int]:
    if seeds.tiers is None:
        return {}
    t = seeds.tiers.filter(pl.col("vintage") == TIER_VINTAGE)
    return {c: TIER_FOLD[x] for c, x in zip(t["city_code"].to_list(), t["tier"].to_list()) if x in TIER_FOLD}


def _industry_structure(seeds: Seeds, metric: str, cells: list[str], cube: np.ndarray) -> np.ndarray:
    """Re-shape the city x industry split so that the published structure figures hold, keeping every cell x
    quarter total and every national industry x quarter total exactly (a linear programme: the smallest total
    mass moved, L1, subject to the orderings and shares of METHOD.md as linear inequalities on 2020 annual sums).
    """
    from scipy import sparse
    from scipy.optimize import linprog

    inds = seeds.industries["code"].to_list()
    group = dict(zip(inds, seeds.industries["group"].to_list()))
    ii = {c: k for k, c in enumerate(inds)}
    ci = {c: k for k, c in enumerate(cells)}
    n_c, n_i, n_q = cube.shape
    x0 = cube.reshape(-1)
    nv = x0.size

    def vidx(c, i, q):
        return (c * n_i + i) * n_q + q

    rows_ub: list[dict[int, float]] = []      # sum coef * x <= rhs   (expressed on x; converted to p, n below)
    rhs_ub: list[float] = []

    def annual(coefs: dict[tuple[int, int], float]) -> dict[int, float]:
        out: dict[int, float] = {}
        for (c, i), w in coefs.items():
            for q in range(4):
                out[vidx(c, i, q)] = out.get(vidx(c, i, q), 0.0) + w
        return out

    def ge(lhs: dict[tuple[int, int], float], margin: float):
        """sum lhs (annual) >= margin  ->  -sum lhs <= -margin"""
        rows_ub.append({k: -v for k, v in annual(lhs).items()})
        rhs_ub.append(-margin)

    ann_cell = cube[:, :, :4].sum(axis=(1, 2))
    if metric == "ai":
        for short, top in CITY_AI_TOP5.items():
            c = ci[_city_lookup(seeds, short)]
            m = STRUCT_ORDER_MARGIN * ann_cell[c]
            k = [ii[x] for x in top]
            for a, b in zip(k, k[1:]):
                ge({(c, a): 1.0, (c, b): -1.0}, m)
            for j in range(n_i):
                if j not in k:
                    ge({(c, k[-1]): 1.0, (c, j): -1.0}, m)
    tier = _tier_of(seeds)
    members = {t: [ci[c] for c in cells if tier.get(c) == t] for t in range(1, 6)}
    tot = {t: ann_cell[members[t]].sum() for t in members}

    def tier_sum(t, ind_list, w=1.0):
        return {(c, ii[i]): w for c in members[t] for i in ind_list}

    def add(*ds):
        out: dict = {}
        for d in ds:
            for k, v in d.items():
                out[k] = out.get(k, 0.0) + v
        return out

    if metric == "ai" and tier:
        tf = [i for i in inds if group[i] in ("traditional", "finance")]
        for t in range(1, 6):
            T = tot[t]
            m = STRUCT_ORDER_MARGIN * T
            ge(add(tier_sum(t, tf), tier_sum(t, inds, -(AI_TRAD_FIN_MIN + STRUCT_SHARE_MARGIN))), 0.0)
            lead = AI_TIER_LEADERS[t]
            if t not in AI_TIER_LEADERS_UNORDERED:
                for a, b in zip(lead, lead[1:]):
                    ge(add(tier_sum(t, [a]), tier_sum(t, [b], -1.0)), m)
            for j in inds:
                if j in lead:
                    continue
                for a in (lead if t in AI_TIER_LEADERS_UNORDERED else lead[-1:]):
                    ge(add(tier_sum(t, [a]), tier_sum(t, [j], -1.0)), m)
    if metric == "cloud" and tier:
        dn4 = list(CLOUD_DN4)
        dn = [i for i in inds if group[i] == "digital_native"]
        s = STRUCT_SHARE_MARGIN
        # tier 1 share of the four > min, and above every other tier's
        ge(add(tier_sum(1, dn4, 1.0 / tot[1]), tier_sum(1, inds, -(CLOUD_TIER1_DN4_MIN + s) / tot[1])), 0.0)
        for t in range(2, 6):
            ge(add(tier_sum(1, dn4, 1.0 / tot[1]), tier_sum(t, dn4, -1.0 / tot[t])), s)
        # tier 2: the rest ~44 % (+-0.3 here), the highest rest share (= the lowest share of the four)
        rest = [i for i in inds if i not in dn4]
        ge(add(tier_sum(2, rest, 1.0 / tot[2]), tier_sum(2, inds, -(CLOUD_TIER2_REST - 0.003) / tot[2])), 0.0)
        ge(add(tier_sum(2, rest, -1.0 / tot[2]), tier_sum(2, inds, (CLOUD_TIER2_REST + 0.003) / tot[2])), 0.0)
        for t in range(3, 6):
            ge(add(tier_sum(t, dn4, 1.0 / tot[t]), tier_sum(2, dn4, -1.0 / tot[2])), s)
        # rising from tier 2 to tier 5: both the digital-native group and the four big ones (METHOD.md does not say
        # which one it means)
        for grp in (dn, dn4):
            for t in range(2, 5):
                ge(add(tier_sum(t + 1, grp, 1.0 / tot[t + 1]), tier_sum(t, grp, -1.0 / tot[t])), s)
    if not rows_ub:
        return cube
    # variables: x = x0 + p - n, p >= 0, 0 <= n <= x0; minimise sum(p + n)
    r, cidx, val = [], [], []
    for k, row in enumerate(rows_ub):
        for j, v in row.items():
            r.append(k); cidx.append(j); val.append(v)
    Ax = sparse.csr_matrix((val, (r, cidx)), shape=(len(rows_ub), nv))
    b_ub = np.array(rhs_ub) - Ax @ x0
    A_ub = sparse.hstack([Ax, -Ax]).tocsr()
    # equalities: cell x quarter and industry x quarter sums of (p - n) are 0
    eq_r, eq_c = [], []
    for c in range(n_c):
        for q in range(n_q):
            for i in range(n_i):
                eq_r.append(c * n_q + q); eq_c.append(vidx(c, i, q))
    off = n_c * n_q
    for i in range(n_i):
        for q in range(n_q):
            for c in range(n_c):
                eq_r.append(off + i * n_q + q); eq_c.append(vidx(c, i, q))
    E = sparse.csr_matrix((np.ones(len(eq_r)), (eq_r, eq_c)), shape=(off + n_i * n_q, nv))
    A_eq = sparse.hstack([E, -E]).tocsr()
    b_eq = np.zeros(A_eq.shape[0])
    bounds = np.column_stack([np.zeros(2 * nv), np.concatenate([np.full(nv, np.inf), x0])])
    res = linprog(np.ones(2 * nv), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise ValueError(f"industry structure ({metric}) infeasible: {res.message}")
    x = x0 + res.x[:nv] - res.x[nv:]
    x[x < 1e-9] = 0.0
    x = x.reshape(n_c, n_i, n_q)
    geo = cube.sum(axis=1)
    x *= (geo / x.sum(axis=1))[:, None, :]
    return x


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
        cube = _industry_structure(seeds, metric, cells, cube)
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
