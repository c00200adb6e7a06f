"""Tests of the demo raw dataset (pipelines/demo/data.py) and, independently of the pipeline, of its calibration:
the generated good rows are aggregated here with a few lines of polars and compared with METHOD.md's figures."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.demo.data import BAD_KINDS, write_demo_raw

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
ROWS = 50_000
QUARTERS = ["2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo") / "raw"
    summary = write_demo_raw(d, rows=ROWS, seed=2021)
    return d, summary


@pytest.fixture(scope="session")
def raw(raw_dir):
    d, _ = raw_dir
    return pl.read_parquet(d / "**" / "*.parquet", hive_partitioning=False)


@pytest.fixture(scope="session")
def seeds():
    regions = pl.read_csv(SEEDS / "regions.csv", schema_overrides={"code": pl.Utf8, "province_code": pl.Utf8})
    counties = pl.read_csv(SEEDS / "counties.csv", schema_overrides={"code": pl.Utf8, "city_code": pl.Utf8})
    xw = pl.read_csv(SEEDS / "region_crosswalk.csv", schema_overrides={"old_code": pl.Utf8, "new_code": pl.Utf8})
    industries = pl.read_csv(SEEDS / "industries.csv").with_columns(pl.col("aliases").fill_null(""))
    products = pl.read_csv(SEEDS / "products.csv")
    return dict(regions=regions, counties=counties, xw=xw, industries=industries, products=products)


def _region_map(seeds) -> dict[str, str]:
    """region code -> cell (city code, or '<province>U'), built independently from the seeds and the contract."""
    regions = seeds["regions"]
    cities = regions.filter(pl.col("level") == "city")
    provs = regions.filter(pl.col("level") == "province")
    city_codes = set(cities["code"])
    muni = {c for c, p in zip(cities["code"], cities["province_code"]) if c == p}
    m: dict[str, str] = {}
    for p in provs["code"]:
        m[p] = p if p in muni else p + "U"
    for c in city_codes:
        m[c] = c
    for code, c in zip(seeds["counties"]["code"], seeds["counties"]["city_code"]):
        m.setdefault(code, c)
    for mu in muni:                                  # 市辖区 / 县 placeholders of a municipality
        for suffix in ("0100", "0200", "0300"):
            m.setdefault(mu[:2] + suffix, mu)
    succ: dict[str, set] = {}
    for o, n in zip(seeds["xw"]["old_code"], seeds["xw"]["new_code"]):
        succ.setdefault(o, set()).add(n)
    for _ in range(8):
        for o, ns in succ.items():
            if o not in m and len(ns) == 1 and next(iter(ns)) in m:
                m[o] = m[next(iter(ns))]
    return m


def _industry_map(seeds) -> dict[str, str]:
    m = {}
    for r in seeds["industries"].iter_rows(named=True):
        m[r["code"]] = r["code"]
        m[r["name_zh"]] = r["code"]
        for a in r["aliases"].split("|"):
            if a:
                m[a] = r["code"]
    return m


@pytest.fixture(scope="session")
def good(raw, seeds):
    """Good rows with cell, province, industry code, metric and quarter resolved (independent re-implementation)."""
    rmap = _region_map(seeds)
    imap = _industry_map(seeds)
    pmap = dict(zip(seeds["products"]["product"], seeds["products"]["metric"]))
    cities = seeds["regions"].filter(pl.col("level") == "city")
    c2p = dict(zip(cities["code"], cities["province_code"]))
    df = raw.with_columns(
        pl.col("region_code").replace_strict(rmap, default=None).alias("cell"),
        pl.when(pl.col("industry").is_null() | (pl.col("industry") == "")).then(pl.lit("other"))
        .otherwise(pl.col("industry").replace_strict(imap, default=None)).alias("ind"),
        pl.coalesce(pl.col("metric"), pl.col("product").replace_strict(pmap, default=None)).alias("m"),
        pl.col("product").replace_strict(pmap, default=None).alias("pm"),
    )
    ok = (
        pl.col("usage_date").is_not_null() & pl.col("account_id").is_not_null() & (pl.col("account_id") != "")
        & pl.col("cell").is_not_null() & pl.col("ind").is_not_null() & pl.col("m").is_in(["cloud", "ai"])
        & (pl.col("pm").is_null() | (pl.col("pm") == pl.col("m")))
        & pl.col("amount").is_finite() & (pl.col("amount") >= 0)
    )
    df = df.filter(ok).with_columns(
        pl.when(pl.col("cell").str.ends_with("U")).then(pl.col("cell").str.slice(0, 6))
        .otherwise(pl.col("cell").replace_strict(c2p, default=None)).alias("prov"),
        (pl.col("usage_date").dt.year().cast(pl.Utf8) + pl.lit("Q")
         + pl.col("usage_date").dt.quarter().cast(pl.Utf8)).alias("quarter"),
    )
    return df


@pytest.fixture(scope="session")
def idx(good):
    """index[metric, quarter, cell, prov, ind] = 100 * sum / national base-quarter sum of the metric."""
    agg = good.group_by("m", "quarter", "cell", "prov", "ind").agg(pl.col("amount").sum().alias("raw"),
                                                                 pl.col("account_id").n_unique().alias("acc"))
    base = agg.filter(pl.col("quarter") == "2020Q1").group_by("m").agg(pl.col("raw").sum().alias("base"))
    return agg.join(base, on="m").with_columns((100 * pl.col("raw") / pl.col("base")).alias("v"))


@pytest.fixture(scope="session")
def names(seeds):
    r = seeds["regions"]
    return {(lvl, s): c for lvl, c, s in zip(r["level"], r["code"], r["short_zh"])}


def _series(idx, metric, by, period):
    """{key: value} for a metric and a period ('2020' = annual, or a quarter)."""
    q = QUARTERS[:4] if period == "2020" else [period]
    d = idx.filter((pl.col("m") == metric) & pl.col("quarter").is_in(q)).group_by(by).agg(pl.col("v").sum())
    return dict(zip(d[by], d["v"]))


def _rank(values: dict) -> dict:
    """Competition ranks (1, 2, 2, 4), descending; values compared at 2 decimals."""
    rounded = {k: round(v, 2) for k, v in values.items()}
    return {k: 1 + sum(1 for w in rounded.values() if w > v) for k, v in rounded.items()}


# ------------------------------------------------------------------------------------------------ structure
def test_determinism(raw_dir, tmp_path):
    d1, s1 = raw_dir
    d2 = tmp_path / "again"
    s2 = write_demo_raw(d2, rows=ROWS, seed=2021)
    assert s1["files"] == s2["files"]
    for f in s1["files"]:
        assert hashlib.sha256((d1 / f).read_bytes()).digest() == hashlib.sha256((d2 / f).read_bytes()).digest(), f
    assert not list(tmp_path.glob(".again*")), "temporary directory left behind"


def test_layout_rowcount_schema(raw_dir, raw):
    d, s = raw_dir
    assert sorted(p.name for p in d.iterdir()) == ["_dataset.json", *(f"quarter={q}" for q in QUARTERS)]
    assert json.loads((d / "_dataset.json").read_text())["synthetic"] is True
    assert all(f.startswith("quarter=") and f.endswith(".parquet") for f in s["files"])
    assert raw.height == ROWS == s["rows"] == s["good_rows"] + s["bad_rows"]
    assert s["bad_rows"] == 10 * len(BAD_KINDS)
    assert raw.schema == pl.Schema({
        "usage_date": pl.Date, "account_id": pl.Utf8, "region_code": pl.Utf8, "industry": pl.Utf8,
        "product": pl.Utf8, "metric": pl.Utf8, "amount": pl.Float64})
    # quarter folder agrees with usage_date for good rows
    for q in QUARTERS:
        part = pl.read_parquet(d / f"quarter={q}" / "*.parquet").drop_nulls("usage_date")
        qq = part.select((pl.col("usage_date").dt.year().cast(pl.Utf8) + "Q"
                          + pl.col("usage_date").dt.quarter().cast(pl.Utf8)).unique())["usage_date"].to_list()
        assert qq == [q]


def test_coverage(good, seeds, idx):
    cities = seeds["regions"].filter(pl.col("level") == "city")["code"].to_list()
    provs = seeds["regions"].filter(pl.col("level") == "province")["code"].to_list()
    assert set(cities) <= set(good["cell"].unique())
    assert set(provs) == set(good["prov"].unique())
    assert set(seeds["industries"]["code"]) == set(good["ind"].unique())
    assert set(good["m"].unique()) == {"cloud", "ai"}
    # every city has both metrics in every quarter (growth is defined everywhere)
    per = idx.group_by("m", "quarter", "cell").agg(pl.col("v").sum())
    assert per.height == 2 * 5 * good["cell"].n_unique()


def test_products_metric_nulls_accounts(raw, good, seeds, raw_dir):
    _, s = raw_dir
    cat = set(seeds["products"]["product"])
    assert set(good["product"].unique()) <= cat
    share_null = good["metric"].is_null().mean()
    assert 0.25 < share_null < 0.35
    assert (good["amount"] >= 0).all()
    # one location and one industry label per account; several quarters and a few products per account
    per = good.group_by("account_id").agg(pl.col("region_code").n_unique().alias("r"),
                                          pl.col("industry").n_unique().alias("i"),
                                          pl.col("quarter").n_unique().alias("q"),
                                          pl.col("product").n_unique().alias("p"))
    assert per["r"].max() == 1 and per["i"].max() == 1
    assert per.height == s["accounts"]
    assert per["q"].mean() > 2.0
    assert per["p"].max() <= 5
    # region spellings: county codes, bare province codes, municipality placeholders, retired codes
    codes = set(good["region_code"].unique())
    counties = set(seeds["counties"]["code"]) - set(seeds["regions"]["code"])
    assert codes & counties
    assert "371200" in codes or codes & set(seeds["xw"]["old_code"])
    assert {"110100", "500200"} & codes or "110100" in codes
    assert good.filter(pl.col("industry").is_null()).height > 0
    assert {"智慧零售", "政府"} & set(good["industry"].drop_nulls())


def test_region_codes_resolvable(raw, seeds):
    rmap = _region_map(seeds)
    codes = set(raw["region_code"].drop_nulls().unique()) - {""}
    unresolved = {c for c in codes if c not in rmap}
    assert unresolved <= {"999999", "719900"}       # the deliberate unknown_region rows


def test_bad_rows_every_reason(raw, seeds):
    """Classify each row by the contract's first applicable reason (independent implementation)."""
    rmap = _region_map(seeds)
    imap = _industry_map(seeds)
    pmap = dict(zip(seeds["products"]["product"], seeds["products"]["metric"]))
    reasons = []
    for r in raw.iter_rows(named=True):
        ind = r["industry"]
        m = r["metric"] if r["metric"] is not None else pmap.get(r["product"])
        if r["usage_date"] is None:
            reasons.append("invalid_date")
        elif not r["account_id"]:
            reasons.append("missing_account")
        elif not r["region_code"]:
            reasons.append("missing_region")
        elif r["region_code"] not in rmap:
            reasons.append("unknown_region")
        elif ind not in (None, "") and ind not in imap:
            reasons.append("unknown_industry")
        elif r["metric"] is not None and r["metric"] not in ("cloud", "ai"):
            reasons.append("invalid_metric")
        elif m is None:
            reasons.append("unknown_product")
        elif r["product"] in pmap and pmap[r["product"]] != m:
            reasons.append("metric_conflict")
        elif not (math.isfinite(r["amount"]) and r["amount"] >= 0):
            reasons.append("invalid_amount")
        else:
            reasons.append(None)
    counts = pl.Series(reasons).value_counts()
    got = {k: v for k, v in zip(counts[""] if "" in counts.columns else counts[counts.columns[0]], counts["count"])}
    for k in BAD_KINDS:
        assert got.get(k) == 10, (k, got)


def test_small_rows_no_bad_and_too_small(tmp_path):
    s = write_demo_raw(tmp_path / "small", rows=40_000, seed=7)
    assert s["rows"] == 40_000
    with pytest.raises(ValueError):
        write_demo_raw(tmp_path / "tiny", rows=1_000)


def test_sparse_variant_has_customers_and_small_cells(tmp_path):
    """demo-data --sparse: the same rows and totals, plus customers shared by accounts and cells with few accounts;
    the default has no customer column."""
    import polars as pl

    s = write_demo_raw(tmp_path / "sparse", rows=40_000, seed=7, sparse=True)
    rows = pl.read_parquet(str(tmp_path / "sparse" / "**" / "*.parquet"))
    assert s["rows"] == rows.height == 40_000 and "customer_id" in rows.columns
    good = rows.filter(pl.col("customer_id").is_not_null())
    per_customer = good.group_by("customer_id").agg(pl.col("account_id").n_unique().alias("n"))
    assert per_customer["n"].max() >= 3  # customers with several accounts
    assert good.filter(pl.col("customer_id").str.starts_with("group-"))["region_code"].n_unique() > 5  # spread
    # small cells: many (city code, industry, quarter) groups with fewer than 5 accounts
    cells = rows.group_by("region_code", "industry", pl.col("usage_date").dt.quarter()).agg(
        pl.col("account_id").n_unique().alias("n"))
    assert (cells["n"] < 5).mean() > 0.5
    default = write_demo_raw(tmp_path / "default", rows=40_000, seed=7)
    assert "customer_id" not in pl.read_parquet(str(tmp_path / "default" / "**" / "*.parquet")).columns
    assert default["rows"] == 40_000


# ------------------------------------------------------------------------------------------------ calibration (1)
AI_SERIES = [100.0, 118.56, 212.93, 192.96, 193.00]
PROV_AI_2021Q1 = {"北京": 57.23, "广东": 51.74, "上海": 26.76, "四川": 10.38, "江苏": 8.21,
                  "浙江": 6.55, "山东": 4.93, "重庆": 3.52, "湖北": 3.39, "陕西": 2.86}
RANK_CHANGE = {"北京": 0, "广东": 0, "上海": 0, "四川": 1, "江苏": -1, "浙江": 0, "山东": 8, "重庆": 3,
               "湖北": 9, "陕西": -3}
PROV_AI_2020_TOP10 = ["北京", "广东", "上海", "江苏", "四川", "浙江", "陕西", "西藏", "福建", "贵州"]


def test_national_series(idx):
    for metric in ("ai", "cloud"):
        s = _series(idx.with_columns(pl.lit("CN").alias("n")), metric, "n", "2020Q1")
        assert round(s["CN"], 2) == 100.0
    ai = [round(_series(idx.with_columns(pl.lit("CN").alias("n")), "ai", "n", q)["CN"], 2) for q in QUARTERS]
    assert ai == AI_SERIES
    cloud = [_series(idx.with_columns(pl.lit("CN").alias("n")), "cloud", "n", q)["CN"] for q in QUARTERS]
    assert round(cloud[4] / cloud[0], 2) == 1.57
    growth = ai[4] / ai[0] - 1
    assert round(100 * growth) == 93
    qoq = [ai[i + 1] / ai[i] - 1 for i in range(4)]
    assert round(100 * sum(qoq) / 4, 1) == 22.2
    assert round(100 * qoq[1], 1) == 79.6
    assert round(100 * (ai[2] + ai[3]) / sum(ai[:4])) == 65
    assert round(sum(ai[:4]) / 31, 2) == 20.14


def test_province_ai_2021q1_table(idx, names):
    v = _series(idx, "ai", "prov", "2021Q1")
    code = {s: names[("province", s)] if ("province", s) in names else None for s in PROV_AI_2021Q1}
    for s, expected in PROV_AI_2021Q1.items():
        assert round(v[code[s]], 2) == expected, s
    others = {k: x for k, x in v.items() if k not in code.values()}
    assert len(others) == 21
    assert round(sum(others.values()), 2) == 17.43
    assert max(others.values()) < 2.86
    r21 = _rank(v)
    assert [s for s in sorted(PROV_AI_2021Q1, key=lambda s: r21[code[s]])] == list(PROV_AI_2021Q1)
    assert [r21[code[s]] for s in PROV_AI_2021Q1] == list(range(1, 11))


def test_province_ai_rank_changes_and_2020_ranking(idx, names):
    v21 = _series(idx, "ai", "prov", "2021Q1")
    v20 = _series(idx, "ai", "prov", "2020")
    r21, r20 = _rank(v21), _rank(v20)
    for s, change in RANK_CHANGE.items():
        c = names[("province", s)]
        assert r20[c] - r21[c] == change, s
    top = sorted(v20, key=lambda c: -v20[c])[:10]
    assert top == [names[("province", s)] for s in PROV_AI_2020_TOP10]
    assert r20[names[("province", "重庆")]] == 11
    assert r20[names[("province", "山东")]] == 15
    assert r20[names[("province", "湖北")]] == 18


def test_province_ai_top3_shares(idx):
    v21 = sorted(_series(idx, "ai", "prov", "2021Q1").values(), reverse=True)
    v20 = sorted(_series(idx, "ai", "prov", "2020").values(), reverse=True)
    assert round(100 * sum(v21[:3]) / sum(v21), 1) == 70.3
    assert abs(100 * sum(v20[:3]) / sum(v20) - 70) <= 0.5


# ------------------------------------------------------------------------------------------------ calibration (2)
TOP10 = [
    # (metric, level, measure, expected order)      METHOD.md "Top-10 rankings"
    ("cloud", "prov", "size", "上海 北京 广东 浙江 湖北 江苏 四川 福建 天津 山西"),
    ("cloud", "prov", "growth", "新疆 山西 辽宁 宁夏 内蒙古 西藏 安徽 湖南 青海 甘肃"),
    ("ai", "prov", "size", "北京 广东 上海 江苏 四川 浙江 陕西 西藏 福建 贵州"),
    ("ai", "prov", "growth", "宁夏 新疆 云南 辽宁 吉林 天津 湖北 山西 青海 山东"),
    ("cloud", "city", "size", "上海 北京 深圳 广州 杭州 武汉 成都 天津 太原 贵阳"),
    ("cloud", "city", "growth", "中卫 晋中 鞍山 乌鲁木齐 太原 大兴安岭地区 延边州 绥化 泰州 湖州"),
    ("ai", "city", "size", "北京 上海 深圳 广州 成都 杭州 南京 西安 拉萨 贵阳"),
    ("ai", "city", "growth", "克拉玛依 咸宁 朝阳 周口 连云港 眉山 阳泉 河池 银川 遵义"),
]


def _geo(idx, metric, level, period):
    by = "prov" if level == "prov" else "cell"
    d = _series(idx, metric, by, period)
    return {k: v for k, v in d.items() if not k.endswith("U")}


@pytest.mark.parametrize("metric,level,measure,expected", TOP10, ids=[f"{a}-{b}-{c}" for a, b, c, _ in TOP10])
def test_top10_lists(idx, names, metric, level, measure, expected):
    lvl = "province" if level == "prov" else "city"
    code2name = {c: s for (lv, s), c in names.items() if lv == lvl}
    if measure == "size":
        v = _geo(idx, metric, level, "2020")
    else:
        a, b = _geo(idx, metric, level, "2020Q1"), _geo(idx, metric, level, "2021Q1")
        v = {k: b[k] / a[k] - 1 for k in a if a[k] > 0}
    top = [code2name[k] for k in sorted(v, key=lambda k: -v[k])[:10]]
    assert top == expected.split()


def test_city_ai_2021q1_order(idx, names):
    code2name = {c: s for (lv, s), c in names.items() if lv == "city"}
    v = _geo(idx, "ai", "city", "2021Q1")
    top = [code2name[k] for k in sorted(v, key=lambda k: -v[k])[:8]]
    assert top[:5] == ["北京", "深圳", "上海", "广州", "成都"]
    assert top[6] == "济南" and top[7] == "重庆"


def _ind(idx, metric, period):
    return _series(idx, metric, "ind", period)


def test_industry_ai(idx):
    a = _ind(idx, "ai", "2020")
    mean = sum(a.values()) / len(a)
    assert len(a) == 18
    order = sorted(a, key=lambda k: -a[k])
    assert order[:4] == ["finance", "industry_saas", "cultural_creative", "real_estate"]
    assert a["finance"] > 200 and 5 <= a["finance"] / mean < 6
    assert a["lifestyle_internet"] > mean and a["retail"] > mean
    g = {k: _ind(idx, "ai", "2021Q1")[k] / _ind(idx, "ai", "2020Q1")[k] - 1 for k in a}
    assert sorted(g, key=lambda k: -g[k])[:3] == ["tourism", "broadcasting", "manufacturing"]


def test_industry_cloud(idx):
    a = _ind(idx, "cloud", "2020")
    mean = sum(a.values()) / len(a)
    order = sorted(a, key=lambda k: -a[k])
    assert order[:4] == ["ecommerce", "cultural_creative", "gaming", "industry_saas"]
    assert a["ecommerce"] / mean > 7
    assert abs(a["cultural_creative"] / mean - 2.7) <= 0.1
    assert abs(a["gaming"] / mean - 1.7) <= 0.1
    assert a["manufacturing"] > mean
    q1, q5 = _ind(idx, "cloud", "2020Q1"), _ind(idx, "cloud", "2021Q1")
    g = {k: q5[k] / q1[k] - 1 for k in a}
    gm = sum(g.values()) / len(g)
    gorder = sorted(g, key=lambda k: -g[k])
    assert gorder[:3] == ["government", "healthcare", "energy"]
    assert g["government"] > 2.0 and abs(g["government"] / gm - 4) <= 0.3
    assert g["healthcare"] > 1.4 and abs(g["healthcare"] / gm - 2.5) <= 0.3
    assert 0.555 <= gm <= 0.575
    for k in ("education", "manufacturing", "broadcasting"):
        assert k in order[:10] and k in gorder[:10], k


def test_cluster_ai_top3(idx):
    cl = pl.read_csv(SEEDS / "city_clusters.csv", schema_overrides={"city_code": pl.Utf8})
    seven = ["京津冀", "珠三角", "长三角", "长江中游", "成渝", "关中平原", "兰西"]
    v = (idx.filter((pl.col("m") == "ai") & pl.col("quarter").is_in(QUARTERS[:4]))
         .join(cl.select("cluster_name_zh", pl.col("city_code").alias("cell")), on="cell")
         .filter(pl.col("cluster_name_zh").is_in(seven))
         .group_by("cluster_name_zh").agg(pl.col("v").sum()).sort("v", descending=True))
    assert set(v["cluster_name_zh"][:3]) == {"京津冀", "珠三角", "长三角"}


# ------------------------------------------------------------------------------------------------ calibration (3)
IND_ZH = {"生活互联": "lifestyle_internet", "文创": "cultural_creative", "金融": "finance", "行业工具": "industry_saas",
          "教育": "education", "智慧零售": "retail", "房地产": "real_estate", "游戏": "gaming", "手机": "mobile",
          "电商": "ecommerce", "广电": "broadcasting", "政府": "government", "医疗": "healthcare",
          "交通云": "transport", "其他": "other"}
CITY_TOP5 = {   # METHOD.md "Top-5 industries by AI index in the top-10 AI cities (2020 annual)"
    "北京": "生活互联 文创 金融 行业工具 教育", "上海": "智慧零售 房地产 金融 行业工具 游戏",
    "深圳": "金融 行业工具 手机 电商 游戏", "广州": "广电 电商 文创 行业工具 教育",
    "成都": "金融 生活互联 行业工具 政府 医疗", "杭州": "行业工具 金融 电商 生活互联 文创",
    "南京": "广电 金融 行业工具 电商 手机", "西安": "金融 广电 行业工具 电商 交通云",
    "拉萨": "房地产 教育 行业工具 电商 其他", "贵阳": "政府 金融 文创 行业工具 电商",
}


@pytest.mark.parametrize("city", list(CITY_TOP5))
def test_city_ai_top5_industries(idx, names, city):
    c = names[("city", city)]
    v = _series(idx.filter(pl.col("cell") == c), "ai", "ind", "2020")
    top = sorted(v, key=lambda k: -v[k])[:5]
    assert top == [IND_ZH[s] for s in CITY_TOP5[city].split()]


def _tier_shares(idx, seeds, metric):
    """{tier (1..5): {industry: share of the tier's 2020 annual index}}, 新一线 folded into 二线 (vintage 2020)."""
    fold = {"tier1": 1, "new_tier1": 2, "tier2": 2, "tier3": 3, "tier4": 4, "tier5": 5}
    t = (pl.read_csv(SEEDS / "city_tiers.csv", schema_overrides={"city_code": pl.Utf8})
         .filter(pl.col("vintage") == 2020)
         .select(pl.col("city_code").alias("cell"), pl.col("tier").replace_strict(fold).alias("t")))
    d = (idx.filter((pl.col("m") == metric) & pl.col("quarter").is_in(QUARTERS[:4])).join(t, on="cell")
         .group_by("t", "ind").agg(pl.col("v").sum()))
    out = {}
    for tt in range(1, 6):
        x = d.filter(pl.col("t") == tt)
        tot = x["v"].sum()
        out[tt] = {k: v / tot for k, v in zip(x["ind"], x["v"])}
    return out


def _groups(seeds):
    return dict(zip(seeds["industries"]["code"], seeds["industries"]["group"]))


def test_tier_ai_structure(idx, seeds):
    s = _tier_shares(idx, seeds, "ai")
    g = _groups(seeds)
    for t in range(1, 6):
        tf = sum(v for k, v in s[t].items() if g[k] in ("traditional", "finance"))
        dn = sum(v for k, v in s[t].items() if g[k] == "digital_native")
        assert tf > 0.70 and dn <= 0.30, t
    order = {t: sorted(s[t], key=lambda k: -s[t][k]) for t in s}
    assert order[1][0] == "finance" and order[2][0] == "finance"
    assert set(order[3][:2]) == {"finance", "broadcasting"}
    assert order[4][:2] == ["finance", "industry_saas"]
    assert order[5][:2] == ["finance", "real_estate"]


def test_tier_cloud_structure(idx, seeds):
    s = _tier_shares(idx, seeds, "cloud")
    g = _groups(seeds)
    four = ("ecommerce", "cultural_creative", "gaming", "industry_saas")
    s4 = {t: sum(s[t].get(k, 0.0) for k in four) for t in s}
    assert s4[1] > 0.78 and all(s4[1] > s4[t] for t in range(2, 6))
    rest = {t: 1 - s4[t] for t in s}
    assert abs(100 * rest[2] - 44) <= 0.5 and all(rest[2] > rest[t] for t in (1, 3, 4, 5))
    dn = {t: sum(v for k, v in s[t].items() if g[k] == "digital_native") for t in s}
    assert dn[2] < dn[3] < dn[4] < dn[5]
    assert s4[2] < s4[3] < s4[4] < s4[5]          # also read as the share of the four big ones


SEVEN = ["京津冀", "珠三角", "长三角", "长江中游", "成渝", "关中平原", "兰西"]


def _clusters(idx):
    """{cluster: {quarter: AI index}} and member counts, for the seven clusters the source ranks."""
    cl = pl.read_csv(SEEDS / "city_clusters.csv", schema_overrides={"city_code": pl.Utf8})
    cl = cl.filter(pl.col("cluster_name_zh").is_in(SEVEN)).select("cluster_name_zh", pl.col("city_code").alias("cell"))
    n = dict(cl.group_by("cluster_name_zh").len().iter_rows())
    d = (idx.filter(pl.col("m") == "ai").join(cl, on="cell").group_by("cluster_name_zh", "quarter")
         .agg(pl.col("v").sum()))
    out: dict = {}
    for c, q, v in d.iter_rows():
        out.setdefault(c, {})[q] = v
    return out, n


def test_cluster_ai_growth_and_peak(idx):
    v, n = _clusters(idx)
    g = {c: v[c]["2021Q1"] / v[c]["2020Q1"] - 1 for c in SEVEN}
    order = sorted(SEVEN, key=lambda c: -g[c])
    assert order[:2] == ["长江中游", "珠三角"] and g["长江中游"] > 3.0
    q1 = {c: v[c]["2020Q1"] for c in SEVEN}
    med_q1 = sorted(q1.values())[3]
    assert q1["兰西"] < med_q1 and q1["关中平原"] < med_q1
    # feasible part of "growth above the median": both right after the top two (3rd and 4th)
    assert set(order[2:4]) == {"兰西", "关中平原"}
    mean = {q: v["珠三角"][q] / n["珠三角"] for q in QUARTERS}
    assert max(mean, key=mean.get) == "2020Q4"
    assert mean["2020Q4"] > 7          # soft figure of METHOD.md, reproduced


@pytest.mark.xfail(strict=True, reason=(
    "METHOD.md asks 长江中游 and 珠三角 to be the two fastest-growing of the seven clusters AND 兰西 and 关中平原 to grow "
    "strictly faster than the median of the seven: with 7 values the median is the 4th, so 'above' needs ranks "
    "1-3, which leaves room for only one of 兰西 / 关中平原 after the top two. The demo puts them 3rd and 4th; the one "
    "at 4th equals the median."))
def test_cluster_ai_growth_strictly_above_median(idx):
    v, _ = _clusters(idx)
    g = {c: v[c]["2021Q1"] / v[c]["2020Q1"] - 1 for c in SEVEN}
    med = sorted(g.values())[3]
    assert g["兰西"] > med and g["关中平原"] > med
