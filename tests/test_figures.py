"""Every figure of docs/METHOD.md, reproduced from the demo release (tests/conftest.py `demo_release`).

One row per figure: (id, where the source states it, expected, tolerance, how to read it from the published
indices.parquet and derived.parquet). Lines refer to seed-docs/004_7e7315b40ff483fe.txt. Tolerances follow
METHOD.md: decimals match at that rounding, a whole-number percentage to +-0.5 points, "more than" is strict, a "~"
multiple to +-0.1 unless stated. The one figure that is infeasible as the source states it is a strict expected
failure, with the reason, so the list stays complete.
"""
from __future__ import annotations

import statistics
from functools import lru_cache
from pathlib import Path

import polars as pl
import pytest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
SRC = "seed-docs/004_7e7315b40ff483fe.txt"
TRADITIONAL_PLUS_FINANCE = {"finance", "real_estate", "retail", "education", "healthcare", "tourism", "broadcasting",
                            "manufacturing", "government", "energy", "transport", "other"}
BIG_FOUR = {"ecommerce", "cultural_creative", "gaming", "industry_saas"}
SOURCE_CLUSTERS = ["京津冀", "珠三角", "长三角", "长江中游", "成渝", "关中平原", "兰西"]


# ---- reading the release -------------------------------------------------------------------------------------------

class Release:
    def __init__(self, path: Path):
        self.indices = pl.read_parquet(path / "indices.parquet")
        self.derived = pl.read_parquet(path / "derived.parquet")
        regions = pl.read_csv(SEEDS / "regions.csv", infer_schema=False)
        self.short = dict(zip(regions["code"] + regions["level"], regions["short_zh"]))
        inds = pl.read_csv(SEEDS / "industries.csv", infer_schema=False)
        self.ind_code = {n: c for c, n in zip(inds["code"], inds["name_zh"])}
        for code, aliases in zip(inds["code"], inds["aliases"]):
            self.ind_code.update({a: code for a in (aliases or "").split("|") if a})
        self.source_name = dict(zip(inds["code"], inds["name_zh"])) | {"retail": "智慧零售", "government": "政府"}

    def value(self, metric, period, level="national", code="CN", industry="all"):
        rows = self.indices.filter((pl.col("metric") == metric) & (pl.col("period") == period)
                                   & (pl.col("geo_level") == level) & (pl.col("geo_code") == code)
                                   & (pl.col("industry") == industry))
        return rows["value"][0]

    def measure(self, name, metric, period, level="national", code="CN", industry="all", comparison=None):
        rows = self.derived.filter((pl.col("measure") == name) & (pl.col("metric") == metric)
                                   & (pl.col("period") == period) & (pl.col("geo_level") == level)
                                   & (pl.col("geo_code") == code) & (pl.col("industry") == industry))
        if comparison:
            rows = rows.filter(pl.col("comparison") == comparison)
        assert rows.height == 1, (name, metric, period, level, code, industry, comparison, rows.height)
        return rows["value"][0]

    def code(self, level, short):
        hits = [c[:-len(level)] for c, s in self.short.items() if s == short and c.endswith(level)]
        assert len(hits) == 1, (level, short, hits)
        return hits[0]

    def ranking(self, measure, metric, period, level, comparison=None, industry="all", n=10):
        rows = self.derived.filter((pl.col("measure") == measure) & (pl.col("metric") == metric)
                                   & (pl.col("period") == period) & (pl.col("geo_level") == level)
                                   & (pl.col("industry") == industry) & (pl.col("status") == "ok"))
        if comparison:
            rows = rows.filter(pl.col("comparison") == comparison)
        rows = rows.sort("value", "geo_code").head(n)
        return [self.short.get(c + level, c) for c in rows["geo_code"]]

    def industries(self, metric, period, level="national", code="CN"):
        rows = self.indices.filter((pl.col("metric") == metric) & (pl.col("period") == period)
                                   & (pl.col("geo_level") == level) & (pl.col("geo_code") == code)
                                   & (pl.col("industry") != "all"))
        return dict(zip(rows["industry"], rows["value"]))

    def industry_growth(self, metric):
        rows = self.derived.filter((pl.col("measure") == "growth") & (pl.col("comparison") == "since_base")
                                   & (pl.col("metric") == metric) & (pl.col("period") == "2021Q1")
                                   & (pl.col("geo_level") == "national") & (pl.col("industry") != "all"))
        return dict(zip(rows["industry"], rows["value"]))

    def tier_shares(self, metric, tier):
        rows = self.derived.filter((pl.col("measure") == "share_within_geo") & (pl.col("metric") == metric)
                                   & (pl.col("period") == "2020") & (pl.col("geo_level") == "tier")
                                   & (pl.col("geo_code") == tier))
        return dict(zip(rows["industry"], rows["value"]))

    def cluster(self, name):
        rows = self.indices.filter((pl.col("geo_level") == "cluster") & (pl.col("geo_name") == name))
        return rows["geo_code"][0]

    def names(self, codes):
        """Industry codes -> the spelling the source uses (智慧零售, 政府: aliases where the source uses them)."""
        return [self.source_name.get(c, c) for c in codes]


@pytest.fixture(scope="module")
def rel(demo_release) -> Release:
    return Release(demo_release)


def top(d: dict, n: int, total: float | None = None) -> list:
    """The n largest keys; suppressed (None) values are allowed only when `total` (what all values add up to)
    proves that none of them can reach the n-th published one."""
    hidden = sorted(k for k, v in d.items() if v is None)
    if hidden:
        known = sorted((v for v in d.values() if v is not None), reverse=True)
        residual = None if total is None else total - sum(known)
        assert residual is not None and len(known) >= n and residual < known[n - 1], f"suppressed cells: {hidden}"
        d = {k: v for k, v in d.items() if v is not None}
    return [k for k, _ in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def growth(r, metric, level, name, period="2021Q1"):
    return r.measure("growth", metric, period, level, r.code(level, name) if level != "national" else "CN",
                     comparison="since_base")


def mean_qoq(r):
    return statistics.mean(r.measure("growth", "ai", q, comparison="qoq") for q in ("2020Q2", "2020Q3", "2020Q4",
                                                                                     "2021Q1"))


def provinces_ai(r, period="2021Q1"):
    return {r.short[c + "province"]: v for c, v in r.indices.filter(
        (pl.col("metric") == "ai") & (pl.col("period") == period) & (pl.col("geo_level") == "province")
        & (pl.col("industry") == "all")).select("geo_code", "value").iter_rows()}


def others_below(r, bound=2.86):
    """Every other province below the 10th; a suppressed one is at most national - all published provinces."""
    values = provinces_ai(r)
    hidden = r.value("ai", "2021Q1") - sum(v for v in values.values() if v is not None)
    return all((hidden if v is None else v) < bound for p, v in values.items() if p not in PROVINCE_AI)


PROVINCE_AI = {"北京": (57.23, 0), "广东": (51.74, 0), "上海": (26.76, 0), "四川": (10.38, 1), "江苏": (8.21, -1),
               "浙江": (6.55, 0), "山东": (4.93, 8), "重庆": (3.52, 3), "湖北": (3.39, 9), "陕西": (2.86, -3)}
TOP10 = {
    ("province", "cloud", "size"): "上海 北京 广东 浙江 湖北 江苏 四川 福建 天津 山西",
    ("province", "cloud", "growth"): "新疆 山西 辽宁 宁夏 内蒙古 西藏 安徽 湖南 青海 甘肃",
    ("province", "ai", "size"): "北京 广东 上海 江苏 四川 浙江 陕西 西藏 福建 贵州",
    ("province", "ai", "growth"): "宁夏 新疆 云南 辽宁 吉林 天津 湖北 山西 青海 山东",
    ("city", "cloud", "size"): "上海 北京 深圳 广州 杭州 武汉 成都 天津 太原 贵阳",
    ("city", "cloud", "growth"): "中卫 晋中 鞍山 乌鲁木齐 太原 大兴安岭地区 延边州 绥化 泰州 湖州",
    ("city", "ai", "size"): "北京 上海 深圳 广州 成都 杭州 南京 西安 拉萨 贵阳",
    ("city", "ai", "growth"): "克拉玛依 咸宁 朝阳 周口 连云港 眉山 阳泉 河池 银川 遵义",
}
CITY_TOP5 = {"北京": "生活互联 文创 金融 行业工具 教育", "上海": "智慧零售 房地产 金融 行业工具 游戏",
             "深圳": "金融 行业工具 手机 电商 游戏", "广州": "广电 电商 文创 行业工具 教育",
             "成都": "金融 生活互联 行业工具 政府 医疗", "杭州": "行业工具 金融 电商 生活互联 文创",
             "南京": "广电 金融 行业工具 电商 手机", "西安": "金融 广电 行业工具 电商 交通云",
             "拉萨": "房地产 教育 行业工具 电商 其他", "贵阳": "政府 金融 文创 行业工具 电商"}


def _top10(level, metric, kind):
    def read(r):
        if kind == "size":
            return " ".join(r.ranking("rank", metric, "2020", level))
        return " ".join(r.ranking("growth_rank", metric, "2021Q1", level, comparison="since_base"))
    return read


def _city_top5(city):
    def read(r):
        code = r.code("city", city)
        return " ".join(r.names(top(r.industries("ai", "2020", "city", code), 5,
                                     r.value("ai", "2020", "city", code))))
    return read


def _cluster_values(r, metric, period, measure=None):
    out = {}
    for name in SOURCE_CLUSTERS:
        code = r.cluster(name)
        out[name] = (r.value(metric, period, "cluster", code) if measure is None
                     else r.measure(measure, metric, period, "cluster", code, comparison="since_base"))
    return out


def _ai_tier(r):
    return {t: r.tier_shares("ai", t) for t in ("tier1", "tier2", "tier3", "tier4", "tier5")}


def _multiple(r, metric, industry):
    return r.measure("industry_multiple", metric, "2020", industry=industry)


# The one figure no data can meet as METHOD.md states it: with seven clusters the median is the 4th value, so
# "growth above the median" means ranks 1-3; ranks 1-2 are 长江中游 and 珠三角, leaving room for one of 兰西 and
# 关中平原 only (the demo puts them 3rd and 4th; the 4th equals the median).
XF = pytest.mark.xfail(strict=True, reason="infeasible as stated: with 7 clusters and 长江中游, 珠三角 the two "
                                           "fastest, only one of 兰西 / 关中平原 can grow above the median")

# (id, where, expected, tolerance, read(release)); tolerance None = exact equality
FIGURES = [
    ("national cloud +57%", "line 30, 368", 0.57, 0.005, lambda r: growth(r, "cloud", "national", None)),
    ("national AI +93%", "line 30, 368", 0.93, 0.005, lambda r: growth(r, "ai", "national", None)),
    ("AI mean QoQ growth 22.2%", "line 368", 0.222, 0.0005, mean_qoq),
    ("AI 2020Q3 QoQ +79.6%", "line ~368-372", 0.796, 0.0005,
     lambda r: r.measure("growth", "ai", "2020Q3", comparison="qoq")),
    ("AI 2020Q3+Q4 = 65% of 2020", "line ~368-372", 0.65, 0.005,
     lambda r: (r.value("ai", "2020Q3") + r.value("ai", "2020Q4")) / r.value("ai", "2020")),
    *[(f"national AI {q} = {v}", "METHOD.md series", v, 0.005, lambda r, q=q: r.value("ai", q))
      for q, v in zip(("2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"), (100, 118.56, 212.93, 192.96, 193.00))],
    ("national AI 2020 annual 624.45", "METHOD.md series", 624.45, 0.005, lambda r: r.value("ai", "2020")),
    ("2020 provincial AI mean 20.14", "line 425", 20.14, 0.005,
     lambda r: r.value("ai", "2020") / len(provinces_ai(r, "2020"))),  # provinces add up to national
    *[(f"AI 2021Q1 {p} = {v}", "lines 425-446", v, 0.005,
       lambda r, p=p: r.value("ai", "2021Q1", "province", r.code("province", p))) for p, (v, _) in PROVINCE_AI.items()],
    *[(f"AI 2021Q1 {p} rank change {c:+d} vs 2020", "lines 425-446", c, None,
       lambda r, p=p: r.measure("rank_change", "ai", "2021Q1", "province", r.code("province", p),
                                comparison="vs_prev_year")) for p, (_, c) in PROVINCE_AI.items()],
    ("AI top-3 provinces = 70.3% of 2021Q1", "line 425", 0.703, 0.0005,
     lambda r: r.measure("top3_share", "ai", "2021Q1", "province")),
    ("AI top-3 provinces ~70% of 2020", "line 425", 0.70, 0.005,
     lambda r: r.measure("top3_share", "ai", "2020", "province")),
    ("other 21 provinces share 17.43", "line 425", 17.43, 0.005,  # national - the ten (suppressed cells hidden)
     lambda r: r.value("ai", "2021Q1") - sum(provinces_ai(r)[p] for p in PROVINCE_AI)),
    ("other 21 provinces each below 2.86", "line 425", True, None, others_below),
    *[(f"top 10 {level} {metric} {kind}", "lines 396-418, 446-462", names, None, _top10(level, metric, kind))
      for (level, metric, kind), names in TOP10.items()],
    ("city AI 2021Q1 top 8", "lines 451, 462", "北京 深圳 上海 广州 成都 杭州 济南 重庆", None,
     lambda r: " ".join(r.ranking("rank", "ai", "2021Q1", "city", n=8))),
    *[(f"top-5 AI industries of {c} (2020)", "line 506", names, None, _city_top5(c)) for c, names in CITY_TOP5.items()],
    # industries
    ("AI industry 1st 金融 > 200", "line 489", True, None,
     lambda r: top(r.industries("ai", "2020"), 1) == ["finance"] and r.industries("ai", "2020")["finance"] > 200),
    ("AI 金融 5-6x the industry mean", "line 489", True, None, lambda r: 5 <= _multiple(r, "ai", "finance") < 6),
    ("AI industries 2-4: 行业工具 文创 房地产", "line 489", ["industry_saas", "cultural_creative", "real_estate"], None,
     lambda r: top(r.industries("ai", "2020"), 4)[1:]),
    ("AI 生活互联 and 零售 above the mean", "line 489", True, None,
     lambda r: _multiple(r, "ai", "lifestyle_internet") > 1 and _multiple(r, "ai", "retail") > 1),
    ("AI growth top 3: 文旅 广电 制造", "line 489", ["tourism", "broadcasting", "manufacturing"], None,
     lambda r: top(r.industry_growth("ai"), 3)),
    ("cloud 电商 > 7x the mean", "line 497", True, None, lambda r: _multiple(r, "cloud", "ecommerce") > 7),
    ("cloud top 4: 电商 文创 游戏 行业工具", "line 497", ["ecommerce", "cultural_creative", "gaming", "industry_saas"],
     None, lambda r: top(r.industries("cloud", "2020"), 4)),
    ("cloud 文创 ~2.7x the mean", "line 497", 2.7, 0.1, lambda r: _multiple(r, "cloud", "cultural_creative")),
    ("cloud 游戏 ~1.7x the mean", "line 497", 1.7, 0.1, lambda r: _multiple(r, "cloud", "gaming")),
    ("cloud 制造 above the mean", "line 497", True, None, lambda r: _multiple(r, "cloud", "manufacturing") > 1),
    ("cloud growth top 3: 政务 医疗 能源", "line 499", ["government", "healthcare", "energy"], None,
     lambda r: top(r.industry_growth("cloud"), 3)),
    ("cloud 政务 growth > 200%", "line 499", True, None, lambda r: r.industry_growth("cloud")["government"] > 2.0),
    ("cloud 政务 ~4x the mean growth (+-0.3)", "line 499", 4.0, 0.3,
     lambda r: r.industry_growth("cloud")["government"] / statistics.mean(r.industry_growth("cloud").values())),
    ("cloud 医疗 growth > 140%", "line 499", True, None, lambda r: r.industry_growth("cloud")["healthcare"] > 1.4),
    ("cloud 医疗 ~2.5x the mean growth (+-0.3)", "line 499", 2.5, 0.3,
     lambda r: r.industry_growth("cloud")["healthcare"] / statistics.mean(r.industry_growth("cloud").values())),
    ("cloud mean industry growth 56-57%", "line 499", True, None,
     lambda r: 0.555 <= statistics.mean(r.industry_growth("cloud").values()) <= 0.575),
    ("cloud 教育 制造 广电 in top 10 of size and growth", "line 497-499", True, None,
     lambda r: {"education", "manufacturing", "broadcasting"} <= set(top(r.industries("cloud", "2020"), 10))
     & set(top(r.industry_growth("cloud"), 10))),
    # tiers (2020 shares within each tier, five tiers)
    ("AI traditional + 金融 > 70% in every tier", "line 525", True, None,
     lambda r: all(sum(v for k, v in s.items() if k in TRADITIONAL_PLUS_FINANCE) > 0.70
                   for s in _ai_tier(r).values())),
    ("AI 金融 the largest share in tiers 1 and 2", "line 525", ["finance", "finance"], None,
     lambda r: [top(r.tier_shares("ai", t), 1, 1.0)[0] for t in ("tier1", "tier2")]),
    ("AI tier 3: 金融 and 广电 the two largest", "line 525", {"finance", "broadcasting"}, None,
     lambda r: set(top(r.tier_shares("ai", "tier3"), 2, 1.0))),
    ("AI tier 4: 行业工具 largest after 金融", "line 525", ["finance", "industry_saas"], None,
     lambda r: top(r.tier_shares("ai", "tier4"), 2, 1.0)),
    ("AI tier 5: 房地产 largest after 金融", "line 525", ["finance", "real_estate"], None,
     lambda r: top(r.tier_shares("ai", "tier5"), 2, 1.0)),
    ("cloud tier 1: 电商+文创+游戏+行业工具 > 78%, the highest tier", "line 531", True, None,
     lambda r: (lambda s: s["tier1"] > 0.78 and s["tier1"] == max(s.values()))(
         {t: sum(v for k, v in r.tier_shares("cloud", t).items() if k in BIG_FOUR)
          for t in ("tier1", "tier2", "tier3", "tier4", "tier5")})),
    ("cloud tier 2: other industries ~44%, the highest tier", "line 531", True, None,
     lambda r: (lambda s: abs(s["tier2"] - 0.44) <= 0.005 and s["tier2"] == max(s.values()))(
         {t: sum(v for k, v in r.tier_shares("cloud", t).items() if k not in BIG_FOUR)
          for t in ("tier1", "tier2", "tier3", "tier4", "tier5")})),
    ("cloud digital-native share rises from tier 2 to tier 5", "line 531", True, None,
     lambda r: (lambda s: s == sorted(s))([sum(v for k, v in r.tier_shares("cloud", t).items() if k in BIG_FOUR)
                                           for t in ("tier2", "tier3", "tier4", "tier5")])),
    # clusters (the seven the source names)
    ("clusters: AI top 3 京津冀 珠三角 长三角", "line 467", {"京津冀", "珠三角", "长三角"}, None,
     lambda r: set(top(_cluster_values(r, "ai", "2020"), 3))),
    ("clusters: 珠三角 member-city mean peaks in 2020Q4", "line 467", "2020Q4", None,
     lambda r: top({q: r.measure("cluster_mean", "ai", q, "cluster", r.cluster("珠三角"))
                    for q in ("2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1")}, 1)[0]),
    ("clusters: 长江中游 and 珠三角 the two fastest", "line 467", {"长江中游", "珠三角"}, None,
     lambda r: set(top(_cluster_values(r, "ai", "2021Q1", "growth"), 2))),
    ("clusters: 长江中游 growth > 300%", "line 467", True, None,
     lambda r: _cluster_values(r, "ai", "2021Q1", "growth")["长江中游"] > 3.0),
    ("clusters: 兰西, 关中平原 below median 2020Q1, growth above", "line 467", True, None,
     lambda r: (lambda size, grow: all(size[c] < statistics.median(size.values())
                                       and grow[c] > statistics.median(grow.values()) for c in ("兰西", "关中平原")))(
         _cluster_values(r, "ai", "2020Q1"), _cluster_values(r, "ai", "2021Q1", "growth"))),
    ("clusters: 珠三角 member-city mean > 7 in 2020Q4 (soft)", "line 467", True, None,
     lambda r: r.measure("cluster_mean", "ai", "2020Q4", "cluster", r.cluster("珠三角")) > 7),
]
XFAIL_IDS: set[str] = {"clusters: 兰西, 关中平原 below median 2020Q1, growth above"}


def _param(row):
    if isinstance(row, type(pytest.param(None))):
        return row
    marks = [XF] if row[0] in XFAIL_IDS else []
    return pytest.param(*row, marks=marks, id=row[0])


@pytest.mark.parametrize("figure, where, expected, tolerance, read", [_param(r) for r in FIGURES])
def test_figure(rel, figure, where, expected, tolerance, read):
    actual = read(rel)
    if tolerance is None:
        assert actual == expected, f"{figure} ({SRC} {where}): got {actual!r}, expected {expected!r}"
    else:
        assert actual is not None, f"{figure} ({SRC} {where}): not published (suppressed?)"
        assert abs(actual - expected) <= tolerance + 1e-12, \
            f"{figure} ({SRC} {where}): got {actual:.6g}, expected {expected} +- {tolerance}"
