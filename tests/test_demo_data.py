"""Tests of the demo raw dataset (pipelines/demo_data.py) and, independently of the pipeline, of its calibration:
the generated good rows are aggregated here with a few lines of polars and compared with METHOD.md's figures."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.demo_data import BAD_KINDS, write_demo_raw

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
    assert sorted(p.name for p in d.iterdir()) == [f"quarter={q}" for q in QUARTERS]
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
    s = write_demo_raw(tmp_path / "small", rows=30_000, seed=7)
    assert s["rows"] == 30_000
    with pytest.raises(ValueError):
        write_demo_raw(tmp_path / "tiny", rows=1_000)


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
