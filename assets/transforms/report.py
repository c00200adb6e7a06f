"""Report charts: matplotlib PNGs (bytes) from the published indices and derived measures. Pure; no dagster.

Every chart function takes the published tables (`indices`, `derived`: polars DataFrames as in CONTRACT.md) and
returns PNG bytes. Chinese labels need a CJK font: `use_cjk_font()` finds one or raises `MissingFontError`.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

BOUNDARIES = Path(__file__).resolve().parents[2] / "seeds" / "province_boundaries.geojson"
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
                "Noto Serif CJK SC", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "AR PL UMing CN")
CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "wqy", "sourcehan", "simhei", "msyh", "pingfang", "uming", "ukai")
METRIC_ZH = {"ai": "赋智量 (AI 指数)", "cloud": "用云量 (云计算指数)"}
METRIC_COLOR = {"ai": "#d9480f", "cloud": "#1c7ed6"}
ZERO_COLOR = "#f8f9fa"  # provinces with no usage: neither the scale's lightest colour nor "out of scope"
LEVEL_ZH = {"province": "省份", "city": "城市"}
SOURCE_CLUSTERS = ("京津冀", "珠三角", "长三角", "长江中游", "成渝", "关中平原", "兰西")
TIER_ORDER = ("tier1", "new_tier1", "tier2", "tier3", "tier4", "tier5")


class MissingFontError(RuntimeError):
    """No font with Chinese glyphs: the report would show boxes instead of labels."""


def use_cjk_font() -> str:
    """Set matplotlib's sans-serif family to an installed CJK font and return its name."""
    names = {f.name for f in font_manager.fontManager.ttflist}
    found = next((n for n in CJK_FAMILIES if n in names), None)
    if found is None:  # installed after matplotlib cached its font list: register the files directly
        for path in font_manager.findSystemFonts():
            if any(h in Path(path).name.lower().replace("-", "").replace("_", "") for h in CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):
                    continue
        names = {f.name for f in font_manager.fontManager.ttflist}
        found = next((n for n in CJK_FAMILIES if n in names), None)
    if found is None:
        raise MissingFontError("no CJK font found for the report's Chinese labels: install one, e.g. "
                               "`apt-get install -y fonts-noto-cjk` (or fonts-wqy-microhei), then rerun "
                               "`python -m pipelines report --out DIR`")
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["font.sans-serif"] = [found, "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return found


def _png(fig) -> bytes:
    """The figure as PNG bytes, laid out once (tight_layout) and drawn once (bbox_inches="tight" would draw it twice
    to measure it, the larger part of a chart's time)."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def no_data(ax, text: str = "无数据") -> None:
    """A panel with nothing to draw says so in its middle."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def fit(title: str, width: int = 36) -> str:
    """A title wrapped to lines of at most `width` characters (a CJK character is about twice a Latin one), so
    that it is never cut off at the figure's edge."""
    lines, line = [], ""
    for word in title.split(" "):
        candidate = f"{line} {word}".strip()
        if len(candidate.encode("gbk", "replace")) // 2 + 1 > width and line:
            lines.append(line)
            candidate = word
        line = candidate
    return "\n".join([*lines, line])


def latest(indices: pl.DataFrame, period_type: str) -> str | None:
    periods = indices.filter(pl.col("period_type") == period_type)["period"].unique().sort()
    return periods[-1] if periods.len() else None


def size_period(indices: pl.DataFrame) -> tuple[str, str]:
    """The period size rankings use: the latest complete year (as the source), else the latest quarter."""
    year = latest(indices, "year")
    return (year, "year") if year else (latest(indices, "quarter"), "quarter")


def cells(indices: pl.DataFrame, metric: str, level: str, period: str, industry: str = "all") -> pl.DataFrame:
    return indices.filter((pl.col("metric") == metric) & (pl.col("geo_level") == level) & (pl.col("period") == period)
                          & (pl.col("industry") == industry))


def measure(derived: pl.DataFrame, name: str, metric: str, level: str, period: str, industry: str = "all",
            comparison: str | None = None) -> pl.DataFrame:
    rows = derived.filter((pl.col("measure") == name) & (pl.col("metric") == metric) & (pl.col("geo_level") == level)
                          & (pl.col("period") == period) & (pl.col("industry") == industry))
    return rows.filter(pl.col("comparison") == comparison) if comparison else rows




def national_trend(indices: pl.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for metric in ("cloud", "ai"):
        rows = indices.filter((pl.col("metric") == metric) & (pl.col("geo_level") == "national")
                              & (pl.col("industry") == "all") & (pl.col("period_type") == "quarter")).sort("period")
        if rows.height == 0:
            continue
        ax.plot(rows["period"], rows["value"], marker="o", color=METRIC_COLOR[metric], label=METRIC_ZH[metric])
        for p, v in zip(rows["period"], rows["value"]):
            ax.annotate(f"{v:.1f}", (p, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.axhline(100, color="grey", lw=0.8, ls="--")
    ax.set_title("全国指数走势（基期 = 100）")
    ax.set_ylabel("指数")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def load_boundaries(path: Path = BOUNDARIES) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def province_map(indices: pl.DataFrame, metric: str, period: str, boundaries: list[dict]) -> bytes:
    """Choropleth of provincial index values (quantile classes); out-of-scope areas grey, suppressed hatched."""
    rows = cells(indices, metric, "province", period)
    values = {c: (v, s) for c, v, s in rows.select("geo_code", "value", "status").iter_rows()}
    kind = "年度" if len(period) == 4 else "季度"
    return choropleth(values, boundaries, f"{METRIC_ZH[metric]} · 各省{kind}指数 · {period}", "指数")


def choropleth(values: dict[str, tuple[float | None, str]], boundaries: list[dict], title: str, legend: str) -> bytes:
    """Provinces coloured by value (code -> (value, status); quantile classes); out-of-scope areas and provinces
    without a value grey, suppressed hatched."""
    classes = value_classes([v for v, s in values.values() if s == "ok" and v is not None])
    cmap = plt.get_cmap("YlOrRd", max(len(classes), 1) + 1)
    fig, ax = plt.subplots(figsize=(8, 6.4))
    for feature in boundaries:
        props = feature["properties"]
        rings = [[(x, y) for x, y in ring] for poly in feature["geometry"]["coordinates"] for ring in poly]
        value, status = values.get(props["code"], (None, "missing"))
        if not props["in_scope"] or status == "missing":
            face, hatch = "#e9ecef", None
        elif status != "ok" or value is None:
            face, hatch = "#ffffff", "///"
        elif value == 0:
            face, hatch = ZERO_COLOR, None
        else:
            face, hatch = cmap(1 + next(i for i, (lo, hi) in enumerate(classes) if value <= hi)), None
        ax.add_collection(PolyCollection(rings, facecolors=face, edgecolors="#495057", linewidths=0.4, hatch=hatch))
        if props["in_scope"]:
            ring = max(rings, key=len)
            xs, ys = zip(*ring)
            ax.text(sum(xs) / len(xs), sum(ys) / len(ys), props["name_zh"], fontsize=6.5, ha="center", va="center")
    ax.set_xlim(73, 136)
    ax.set_ylim(17, 54)
    ax.set_aspect(1.25)
    ax.axis("off")
    handles = [Patch(facecolor=cmap(1 + i), edgecolor="#495057",
                     label=f"{lo:.2f}" if lo == hi else f"{lo:.2f} – {hi:.2f}") for i, (lo, hi) in enumerate(classes)]
    if any(s == "ok" and v == 0 for v, s in values.values()):
        handles.insert(0, Patch(facecolor=ZERO_COLOR, edgecolor="#495057", label="0（无用量）"))
    handles += [Patch(facecolor="#ffffff", hatch="///", edgecolor="#495057", label="已抑制（隐私）"),
                Patch(facecolor="#e9ecef", edgecolor="#495057", label="不在统计范围")]
    ax.legend(handles=handles, loc="lower left", fontsize=8, frameon=False, title=legend)
    ax.set_title(fit(title))
    return _png(fig)


def value_classes(values: list[float], classes: int = 6) -> list[tuple[float, float]]:
    """Legend classes of the positive values, from the data: quantile bounds, each class holding at least one value
    and no two classes the same (fewer classes when there are few distinct values); 0 is a class of its own,
    drawn apart, so a map of zeros has no colour scale at all."""
    positive = sorted(v for v in values if v > 0)
    if not positive:
        return []
    distinct = sorted(set(positive))
    if len(distinct) <= classes:
        return [(v, v) for v in distinct]
    bounds = sorted({positive[min(len(positive) - 1, round(i * (len(positive) - 1) / classes))]
                     for i in range(classes + 1)})
    return [(bounds[0] if i == 0 else bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _barh(ax, names, values, color, fmt="{:.2f}", title=""):
    if not names:
        no_data(ax)
    ax.barh(range(len(names))[::-1], values, color=color)
    ax.set_yticks(range(len(names))[::-1], names)
    for i, v in zip(range(len(names))[::-1], values):
        ax.text(v, i, " " + fmt.format(v), va="center", fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.margins(x=0.18)


def top10(indices: pl.DataFrame, derived: pl.DataFrame, metric: str, level: str) -> bytes:
    """Top 10 of the latest quarter by size (index) and by growth against the base quarter; entities with no usage
    are never ranked here, and a panel with nothing to rank says so."""
    quarter = latest(indices, "quarter")
    base = indices["base_period"].drop_nulls()
    base = base[0] if base.len() else ""
    size = (measure(derived, "rank", metric, level, quarter).filter(pl.col("status") == "ok")
            .join(cells(indices, metric, level, quarter).select("geo_code", "geo_name_short",
                                                                pl.col("value").alias("index")), on="geo_code")
            .filter(pl.col("index") > 0).sort("value", "geo_code").head(10))
    growth = (measure(derived, "growth_rank", metric, level, quarter, comparison="since_base")
              .filter(pl.col("status") == "ok")
              .join(measure(derived, "growth", metric, level, quarter, comparison="since_base")
                    .select("geo_code", pl.col("value").alias("growth")), on="geo_code")
              .join(cells(indices, metric, level, quarter).select("geo_code", "geo_name_short"), on="geo_code")
              .sort("value", "geo_code").head(10))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    _barh(a, size["geo_name_short"].to_list(), size["index"].to_list(), METRIC_COLOR[metric],
          title=f"{LEVEL_ZH[level]}规模前十（指数）")
    _barh(b, growth["geo_name_short"].to_list(), (growth["growth"] * 100).to_list(), "#2f9e44",
          fmt="{:.0f}%", title=f"{LEVEL_ZH[level]}增速前十（较 {base}）")
    fig.suptitle(fit(f"{METRIC_ZH[metric]} · {quarter}", 60))
    return _png(fig)


def industry_bars(indices: pl.DataFrame, derived: pl.DataFrame, metric: str, names: dict[str, str]) -> bytes:
    """National industries: index with the unweighted mean line and multiples; growth with the mean growth."""
    period, _ = size_period(indices)
    quarter = latest(indices, "quarter")
    size = derived.filter((pl.col("measure") == "industry_multiple") & (pl.col("metric") == metric)
                          & (pl.col("geo_level") == "national") & (pl.col("period") == period))
    size = size.join(indices.filter((pl.col("metric") == metric) & (pl.col("geo_level") == "national")
                                    & (pl.col("period") == period)).select("industry", pl.col("value").alias("index")),
                     on="industry").filter(pl.col("index").is_not_null()).sort("index", descending=True)
    # a national x industry cell may be suppressed (privacy): it is left out, as in every chart
    growth = derived.filter((pl.col("measure") == "growth") & (pl.col("comparison") == "since_base")
                            & (pl.col("metric") == metric) & (pl.col("geo_level") == "national")
                            & (pl.col("period") == quarter) & (pl.col("industry") != "all")
                            & pl.col("value").is_not_null()).sort("value", descending=True)
    mean = size["index"].mean()  # the mean line is over every published industry, zeros included
    size = size.filter(pl.col("index") > 0)  # industries without usage are not ranked
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 5))
    for ax, frame in ((a, size), (b, growth)):
        if not frame.height:  # everything suppressed or zero (a sparse release): say so, draw no empty axes
            ax.text(0.5, 0.5, "无可发布数据（零或已抑制）", ha="center", va="center", transform=ax.transAxes)
            ax.axis("off")
    labels = [names.get(i, i) for i in size["industry"]]
    if size.height:
        a.bar(labels, size["index"], color=METRIC_COLOR[metric])
        a.axhline(mean, color="black", ls="--", lw=1)
        a.text(len(labels) - 0.5, mean, f"均值 {mean:.1f}", ha="right", va="bottom", fontsize=8)
        for i, (v, m) in enumerate(zip(size["index"], size["value"])):
            if m is not None:
                a.text(i, v, f"{m:.1f}×", ha="center", va="bottom", fontsize=7)
        plt.setp(a.get_xticklabels(), rotation=50, ha="right", rotation_mode="anchor")
    a.set_title(f"各行业指数与均值倍数 · {period}")
    glabels = [names.get(i, i) for i in growth["industry"]]
    if growth.height:
        b.bar(glabels, growth["value"] * 100, color="#2f9e44")
        gmean = growth["value"].mean()
        b.axhline(gmean * 100, color="black", ls="--", lw=1)
        b.text(len(glabels) - 0.5, gmean * 100, f"平均增速 {gmean * 100:.0f}%", ha="right", va="bottom", fontsize=8)
        plt.setp(b.get_xticklabels(), rotation=50, ha="right", rotation_mode="anchor")
    b.set_title(f"各行业增速 · {quarter} 较基期 (%)")
    for ax in (a, b):
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"{METRIC_ZH[metric]} · 全国行业")
    return _png(fig)


def tier_industry_shares(indices: pl.DataFrame, derived: pl.DataFrame, names: dict[str, str],
                         industries: list[str]) -> bytes:
    """Stacked shares of each industry within each tier, both metrics (latest year, else quarter)."""
    period, _ = size_period(indices)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    colors = plt.get_cmap("tab20").colors
    for ax, metric in zip(axes, ("ai", "cloud")):
        rows = derived.filter((pl.col("measure") == "share_within_geo") & (pl.col("metric") == metric)
                              & (pl.col("geo_level") == "tier") & (pl.col("period") == period)
                              & (pl.col("geo_code") != "unallocated"))
        tiers = [t for t in TIER_ORDER if t in set(rows["geo_code"])]
        tier_names = {c: n for c, n in rows.select("geo_code", "geo_name").unique().iter_rows()}
        left = [0.0] * len(tiers)
        for k, ind in enumerate(industries):
            share = {c: v or 0.0 for c, v in rows.filter(pl.col("industry") == ind).select("geo_code", "value")
                     .iter_rows()}
            widths = [share.get(t, 0.0) * 100 for t in tiers]
            ax.barh([tier_names.get(t, t) for t in tiers], widths, left=left, color=colors[k % 20],
                    label=names.get(ind, ind))
            left = [a + b for a, b in zip(left, widths)]
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_title(f"{METRIC_ZH[metric]} · {period}")
        ax.set_xlabel("行业占比 (%)")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.suptitle("各级城市的行业结构")
    return _png(fig)


def cluster_comparison(indices: pl.DataFrame, derived: pl.DataFrame, metric: str) -> bytes:
    """Clusters: index (latest year), growth since base (latest quarter), member-city mean by quarter."""
    period, _ = size_period(indices)
    quarter = latest(indices, "quarter")
    size = cells(indices, metric, "cluster", period).filter(pl.col("status") == "ok").sort("value", descending=True)
    growth = (measure(derived, "growth", metric, "cluster", quarter, comparison="since_base")
              .filter(pl.col("status") == "ok").sort("value", descending=True))
    means = derived.filter((pl.col("measure") == "cluster_mean") & (pl.col("metric") == metric)
                           & (pl.col("industry") == "all") & (pl.col("period_type") == "quarter")
                           & pl.col("geo_name").is_in(SOURCE_CLUSTERS)).sort("period")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 5.2))
    highlight = lambda names: [METRIC_COLOR[metric] if n in SOURCE_CLUSTERS else "#adb5bd" for n in names]  # noqa: E731
    for ax, frame, scale in ((a, size, 1), (b, growth, 100)):
        names, values = frame["geo_name"].to_list()[::-1], (frame["value"] * scale).to_list()[::-1]
        if names:
            ax.barh(names, values, color=highlight(names))
        else:
            no_data(ax)
    a.set_title(fit(f"城市群指数 · {period}"))
    b.set_title(fit(f"城市群增速 · {quarter} 较基期 (%)"))
    for name in SOURCE_CLUSTERS:
        rows = means.filter(pl.col("geo_name") == name)
        if rows.height:
            c.plot(rows["period"], rows["value"], marker="o", label=name)
    c.set_title("成员城市平均指数（按季度）")
    if c.get_lines():
        c.legend(fontsize=8, frameon=False)
    c.tick_params(axis="x", rotation=30)
    for ax in (a, b, c):
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(fit(f"{METRIC_ZH[metric]} · 城市群比较（彩色：来源报告讨论的七个城市群）", 70))
    return _png(fig)
