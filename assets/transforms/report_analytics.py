"""Report charts for the economists' measures: shift-share waterfalls, a per-capita map, Lorenz curves. Pure; PNG
bytes from the published tables (indices, derived, shift_share), like `assets.transforms.report`."""
from __future__ import annotations

import polars as pl

from assets.transforms.report import (LEVEL_ZH, METRIC_COLOR, METRIC_ZH, _png, cells, choropleth, fit, latest, measure,
                                      no_data, plt)

EFFECT_ZH = {"national_effect": "全国增长效应", "industry_mix_effect": "行业结构效应",
             "competitive_effect": "竞争效应"}
EFFECT_COLOR = {"national_effect": "#1c7ed6", "industry_mix_effect": "#f59f00", "competitive_effect": "#2f9e44"}


def shift_share_period(shift_share: pl.DataFrame, metric: str) -> str | None:
    """The latest period with a published shift-share row: a quarter (against a year earlier), else a year."""
    ok = shift_share.filter((pl.col("metric") == metric) & (pl.col("status") == "ok"))
    for period_type in ("quarter", "year"):
        periods = ok.filter(pl.col("period_type") == period_type)["period"]
        if periods.len():
            return periods.max()
    return None


def shift_share_waterfall(indices: pl.DataFrame, shift_share: pl.DataFrame, metric: str) -> bytes:
    """For the ten largest provinces (index of the period), a waterfall each: national, industry-mix and
    competitive effects stacked from 0 to the change against a year earlier (index points)."""
    period = shift_share_period(shift_share, metric)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    if period is None:
        no_data(ax, "无数据（需要一年前的同期数据）")
        ax.axis("off")
        ax.set_title(fit(f"{METRIC_ZH[metric]} · 各省变动的偏离-份额分解", 60))
        return _png(fig)
    rows = (shift_share.filter((pl.col("metric") == metric) & (pl.col("period") == period)
                               & (pl.col("geo_level") == "province") & (pl.col("status") == "ok"))
            .join(cells(indices, metric, "province", period).select("geo_code", "geo_name_short", "value"),
                  on="geo_code").sort(["value", "geo_code"], descending=[True, False]).head(10))
    width, step = 0.8, 5
    reached = [0.0]  # every step's top and bottom: the axis shows each bar whole, with room for the labels
    for k, row in enumerate(rows.iter_rows(named=True)):
        level = 0.0
        for j, effect in enumerate(EFFECT_ZH):
            delta = row[effect]
            reached += [level, level + delta]
            ax.bar(k * step + j, delta, bottom=level, width=width, color=EFFECT_COLOR[effect],
                   label=EFFECT_ZH[effect] if k == 0 else None)
            if j < 2:  # the connector to the next step
                ax.plot([k * step + j + width / 2, k * step + j + 1 - width / 2], [level + delta] * 2, color="#868e96",
                        lw=0.7)
            level += delta
        ax.bar(k * step + 3, row["change"], width=width, color="#495057", label="变动（指数点）" if k == 0 else None)
        ax.text(k * step + 3, row["change"], f"{row['change']:+.2f}", ha="center",
                va="bottom" if row["change"] >= 0 else "top", fontsize=7)
    low, high = min(reached), max(reached)
    pad = 0.12 * ((high - low) or 1.0)
    ax.set_ylim(low - pad if low < 0 else 0, high + pad)
    ax.axhline(0, color="#212529", lw=0.8)
    ax.set_xticks([k * step + 1.5 for k in range(rows.height)], rows["geo_name_short"].to_list())
    ax.set_ylabel("指数点")
    ax.legend(fontsize=8, frameon=False, ncols=4)
    ax.spines[["top", "right"]].set_visible(False)
    reference = rows["reference_period"][0] if rows.height else ""
    ax.set_title(fit(f"{METRIC_ZH[metric]} · 十大省份 {period} 较 {reference} 的变动：全国增长 + 行业结构 + 竞争", 70))
    return _png(fig)


def per_capita_map(derived: pl.DataFrame, metric: str, period: str, boundaries: list[dict]) -> bytes:
    """Choropleth of the provinces' index points per million residents."""
    rows = measure(derived, "per_million_residents", metric, "province", period)
    values = {c: (v, s) for c, v, s in rows.select("geo_code", "value", "status").iter_rows()}
    return choropleth(values, boundaries, f"{METRIC_ZH[metric]} · 每百万常住人口指数 · {period}", "指数/百万人")


def lorenz(indices: pl.DataFrame, derived: pl.DataFrame, metric: str) -> bytes:
    """Lorenz curves of the latest quarter across the allocated provinces and cities (all industries), with their
    Gini coefficients; a level with a suppressed entity has no curve (its values are not all published)."""
    quarter = latest(indices, "quarter")
    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    ax.plot([0, 1], [0, 1], color="#adb5bd", lw=0.8, ls="--", label="完全平均")
    for level, color in (("province", METRIC_COLOR[metric]), ("city", "#2f9e44")):
        rows = cells(indices, metric, level, quarter).filter(~pl.col("geo_code").str.ends_with("U"))
        gini = measure(derived, "gini", metric, level, quarter).filter(pl.col("geo_code") == "CN")
        values = sorted(rows["value"].to_list()) if (rows["status"] == "ok").all() else []
        total = sum(values)
        if not values or total <= 0:
            continue
        xs, ys, running = [0.0], [0.0], 0.0
        for i, v in enumerate(values, start=1):
            running += v
            xs.append(i / len(values))
            ys.append(running / total)
        label = LEVEL_ZH[level] + (f"（基尼系数 {gini['value'][0]:.3f}）" if gini.height and gini["value"][0] is not None
                                   else "")
        ax.plot(xs, ys, color=color, lw=1.6, label=label)
    ax.set_xlabel("实体累计占比（由小到大）")
    ax.set_ylabel("指数累计占比")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(fit(f"{METRIC_ZH[metric]} · 洛伦兹曲线 · {quarter}", 30))
    return _png(fig)
