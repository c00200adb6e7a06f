"""The quarterly report of a release: DIR/report/index.html (self-contained) and its PNGs, from the published
Parquet files only (indices.parquet, derived.parquet); labels (industry names) come from seeds/industries.csv.

    write_report(release_dir) -> {chart file name: (title, png bytes)}
"""
from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

from assets.transforms import report as charts

SEEDS_INDUSTRIES = Path(__file__).resolve().parents[2] / "seeds" / "industries.csv"


def industry_names() -> tuple[dict[str, str], list[str]]:
    table = pl.read_csv(SEEDS_INDUSTRIES, infer_schema=False)
    return dict(zip(table["code"], table["name_zh"])), table["code"].to_list()


def render(indices: pl.DataFrame, derived: pl.DataFrame) -> dict[str, tuple[str, bytes]]:
    """Every chart of the report, in reading order: file name -> (title, PNG)."""
    charts.use_cjk_font()
    names, codes = industry_names()
    boundaries = charts.load_boundaries()
    metrics = [m for m in ("ai", "cloud") if m in set(indices["metric"])]
    quarter, year = charts.latest(indices, "quarter"), charts.latest(indices, "year")
    out = {"national_trend.png": ("全国指数走势", charts.national_trend(indices))}
    for metric in metrics:
        for period in (p for p in (quarter, year) if p):
            out[f"map_{metric}_{period}.png"] = (f"{charts.METRIC_ZH[metric]} 分省地图 {period}",
                                                 charts.province_map(indices, metric, period, boundaries))
    for level in ("province", "city"):
        for metric in metrics:
            out[f"top10_{level}_{metric}.png"] = (f"{charts.METRIC_ZH[metric]} {level} 前十",
                                                  charts.top10(indices, derived, metric, level))
    for metric in metrics:
        out[f"industries_{metric}.png"] = (f"{charts.METRIC_ZH[metric]} 行业",
                                           charts.industry_bars(indices, derived, metric, names))
    out["tier_industry_shares.png"] = ("各级城市行业结构", charts.tier_industry_shares(indices, derived, names, codes))
    for metric in metrics:
        out[f"clusters_{metric}.png"] = (f"{charts.METRIC_ZH[metric]} 城市群",
                                         charts.cluster_comparison(indices, derived, metric))
    for metric in metrics:
        out[f"top_city_industries_{metric}.png"] = (f"{charts.METRIC_ZH[metric]} 前十城市前五行业",
                                                    charts.top_city_industries(indices, derived, metric, names))
    return out


def _change(value) -> str:
    if value is None:
        return "·"
    value = int(value)
    return f"↑{value}" if value > 0 else (f"↓{-value}" if value < 0 else "—")


def province_table(indices: pl.DataFrame, derived: pl.DataFrame, metric: str) -> str:
    """HTML table of the provinces in the latest quarter: value, rank, rank changes, share of national."""
    quarter = charts.latest(indices, "quarter")
    rows = charts.cells(indices, metric, "province", quarter).select("geo_code", "geo_name", "value", "status")

    def pick(name, comparison=None, alias="x"):
        return charts.measure(derived, name, metric, "province", quarter, comparison=comparison).select(
            "geo_code", pl.col("value").alias(alias), pl.col("reference_period").alias(f"{alias}_ref"))

    table = (rows.join(pick("rank", alias="rank"), on="geo_code", how="left")
             .join(pick("rank_change", "qoq", "qoq"), on="geo_code", how="left")
             .join(pick("rank_change", "vs_prev_year", "vpy"), on="geo_code", how="left")
             .join(pick("share_of_national", alias="share"), on="geo_code", how="left")
             .join(pick("growth", "qoq", "gq"), on="geo_code", how="left")
             .sort("rank", "geo_code", nulls_last=True))
    qoq_ref = next((r for r in table["qoq_ref"] if r), "上季")
    vpy_ref = next((r for r in table["vpy_ref"] if r), "上年")
    head = (f"<tr><th>排名</th><th>省份</th><th>指数</th><th>占全国</th><th>环比增速</th>"
            f"<th>排名变化 vs {html.escape(qoq_ref)}</th><th>排名变化 vs {html.escape(vpy_ref)} 年度</th></tr>")
    body = []
    for r in table.iter_rows(named=True):
        hidden = r["status"] != "ok"
        cells = [("" if r["rank"] is None else f"{int(r['rank'])}"), html.escape(charts.short_name(r["geo_name"])),
                 "已抑制" if hidden else f"{r['value']:.2f}",
                 "" if r["share"] is None else f"{r['share'] * 100:.1f}%",
                 "" if r["gq"] is None else f"{r['gq'] * 100:+.1f}%", _change(r["qoq"]), _change(r["vpy"])]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<div><h3>{charts.METRIC_ZH[metric]} · 各省 {quarter}</h3><table>{head}{''.join(body)}</table></div>"


STYLE = """body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:2em auto;
max-width:1280px;color:#212529}img{max-width:100%;border:1px solid #dee2e6;margin:.5em 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border:1px solid #dee2e6;padding:2px 8px;text-align:right}th{background:#f1f3f5}
td:nth-child(2){text-align:left}.tables{display:grid;grid-template-columns:1fr 1fr;gap:2em}"""


def page(indices: pl.DataFrame, derived: pl.DataFrame, rendered: dict[str, tuple[str, bytes]]) -> str:
    def img(name):
        if name not in rendered:
            return ""
        title, png = rendered[name]
        data = base64.b64encode(png).decode()
        return f'<img alt="{html.escape(title)}" title="{html.escape(name)}" src="data:image/png;base64,{data}">'

    def group(prefix):
        return [n for n in rendered if n.startswith(prefix)]

    quarter, year = charts.latest(indices, "quarter"), charts.latest(indices, "year")
    base = indices["base_period"].drop_nulls()
    metrics = [m for m in ("ai", "cloud") if m in set(indices["metric"])]
    sections = [
        ("全国指数走势", img("national_trend.png")),
        ("分省地图", '<div class="grid">' + "".join(img(n) for n in group("map_")) + "</div>"),
        ("省份与城市前十（规模与增速）", "".join(img(n) for n in group("top10_"))),
        ("各省排名表（最新季度）", '<div class="tables">' + "".join(province_table(indices, derived, m)
                                                            for m in metrics) + "</div>"),
        ("行业：指数、均值线与倍数", "".join(img(n) for n in group("industries_"))),
        ("各级城市的行业结构", img("tier_industry_shares.png")),
        ("城市群比较", "".join(img(n) for n in group("clusters_"))),
        ("前十城市的前五大行业", "".join(img(n) for n in group("top_city_industries_"))),
    ]
    body = "".join(f"<h2>{t}</h2>{c}" for t, c in sections)
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>云智指数季度报告 {quarter}</title>'
            f"<style>{STYLE}</style></head><body><h1>云智指数季度报告 · {quarter}</h1>"
            f"<p>用云量（云计算指数）与赋智量（AI 指数），基期 {base[0] if base.len() else ''} = 100；"
            f"最新季度 {quarter}，最新完整年度 {year or '无'}。数据来自本发布的 indices.parquet 与 derived.parquet；"
            f"地图边界：ECharts 4.9.0 中国地图（Apache-2.0），台湾、香港、澳门不在统计范围。</p>{body}</body></html>")


def write_report(release_dir: str | Path) -> dict[str, tuple[str, bytes]]:
    """(Re)write DIR/report/ from DIR/indices.parquet and DIR/derived.parquet; return the charts."""
    release = Path(release_dir)
    for name in ("indices.parquet", "derived.parquet"):
        if not (release / name).exists():
            raise FileNotFoundError(f"{release / name}: not published; run `python -m pipelines run` first")
    indices = pl.read_parquet(release / "indices.parquet")
    derived = pl.read_parquet(release / "derived.parquet")
    rendered = render(indices, derived)
    tmp = Path(tempfile.mkdtemp(prefix=".report.", dir=release))
    tmp.chmod(0o755)
    try:
        for name, (_, png) in rendered.items():
            (tmp / name).write_bytes(png)
        (tmp / "index.html").write_text(page(indices, derived, rendered), encoding="utf-8")
        target = release / "report"
        old = release / f".report.old.{os.getpid()}"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rendered
