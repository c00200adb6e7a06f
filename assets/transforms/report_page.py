"""The quarterly report of a release: DIR/report/index.html (self-contained) and its PNGs, from the published
Parquet files only (indices.parquet, derived.parquet, shift_share.parquet when there is one); labels (industry names) come from seeds/industries.csv.

    write_report(release_dir) -> {chart file name: (title, png bytes)}
"""
from __future__ import annotations

import base64
import html
import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from assets.transforms import report as charts
from assets.transforms import report_analytics as economics
from assets.transforms.shift_share import SHIFT_SHARE_DTYPES

SEEDS_INDUSTRIES = Path(__file__).resolve().parents[2] / "seeds" / "industries.csv"


def industry_names() -> tuple[dict[str, str], list[str]]:
    table = pl.read_csv(SEEDS_INDUSTRIES, infer_schema=False)
    return dict(zip(table["code"], table["name_zh"])), table["code"].to_list()


@dataclass
class Inputs:
    """What every chart reads: the published tables, industry names and codes, province boundaries."""

    indices: pl.DataFrame
    derived: pl.DataFrame
    names: dict[str, str] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)
    boundaries: list[dict] = field(default_factory=list)
    shift_share: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=SHIFT_SHARE_DTYPES))


# chart name -> how to draw it from the inputs and its arguments
DRAW = {
    "national_trend": lambda d: charts.national_trend(d.indices),
    "province_map": lambda d, metric, period: charts.province_map(d.indices, metric, period, d.boundaries),
    "top10": lambda d, metric, level: charts.top10(d.indices, d.derived, metric, level),
    "industry_bars": lambda d, metric: charts.industry_bars(d.indices, d.derived, metric, d.names),
    "tier_industry_shares": lambda d: charts.tier_industry_shares(d.indices, d.derived, d.names, d.codes),
    "cluster_comparison": lambda d, metric: charts.cluster_comparison(d.indices, d.derived, metric),
    "shift_share_waterfall": lambda d, metric: economics.shift_share_waterfall(d.indices, d.shift_share, metric),
    "per_capita_map": lambda d, metric, period: economics.per_capita_map(d.derived, metric, period, d.boundaries),
    "lorenz": lambda d, metric: economics.lorenz(d.indices, d.derived, metric),
}


def plan(indices: pl.DataFrame) -> list[tuple[str, str, str, tuple]]:
    """Every chart of the report, in reading order: (file name, title, drawing, its arguments)."""
    metrics = [m for m in ("ai", "cloud") if m in set(indices["metric"])]
    quarter, year = charts.latest(indices, "quarter"), charts.latest(indices, "year")
    zh = charts.METRIC_ZH
    out = [("national_trend.png", "全国指数走势", "national_trend", ())]
    out += [(f"map_{m}_{p}.png", f"{zh[m]} 分省地图 {p}", "province_map", (m, p))
            for m in metrics for p in (quarter, year) if p]
    out += [(f"top10_{level}_{m}.png", f"{zh[m]} {charts.LEVEL_ZH[level]}前十", "top10", (m, level))
            for level in ("province", "city") for m in metrics]
    out += [(f"industries_{m}.png", f"{zh[m]} 行业", "industry_bars", (m,)) for m in metrics]
    out += [("tier_industry_shares.png", "各级城市行业结构", "tier_industry_shares", ())]
    out += [(f"clusters_{m}.png", f"{zh[m]} 城市群", "cluster_comparison", (m,)) for m in metrics]
    out += [(f"percapita_{m}_{quarter}.png", f"{zh[m]} 每百万常住人口 {quarter}", "per_capita_map", (m, quarter))
            for m in metrics if quarter]
    out += [(f"shiftshare_{m}.png", f"{zh[m]} 偏离-份额分解", "shift_share_waterfall", (m,)) for m in metrics]
    out += [(f"lorenz_{m}.png", f"{zh[m]} 洛伦兹曲线", "lorenz", (m,)) for m in metrics]
    return out


def draw(inputs: Inputs, charts_to_draw: list[tuple[str, str, str, tuple]]) -> dict[str, tuple[str, bytes]]:
    charts.use_cjk_font()
    return {name: (title, DRAW[how](inputs, *args)) for name, title, how, args in charts_to_draw}


def render(indices: pl.DataFrame, derived: pl.DataFrame,
           shift_share: pl.DataFrame | None = None) -> dict[str, tuple[str, bytes]]:
    """Every chart of the report, in reading order: file name -> (title, PNG), drawn in this process."""
    return draw(inputs_of(indices, derived, shift_share), plan(indices))


def inputs_of(indices: pl.DataFrame, derived: pl.DataFrame, shift_share: pl.DataFrame | None = None) -> Inputs:
    names, codes = industry_names()
    inputs = Inputs(indices, derived, names, codes, charts.load_boundaries())
    if shift_share is not None:
        inputs.shift_share = shift_share
    return inputs


def read_shift_share(release: Path) -> pl.DataFrame | None:
    """The release's shift_share.parquet; a release published before it existed has none (its chart says so)."""
    path = release / "shift_share.parquet"
    return pl.read_parquet(path) if path.exists() else None


def _draw_files(release_dir: str, charts_to_draw: list) -> dict[str, tuple[str, bytes]]:
    """A worker's share of the charts, read from the release's Parquet (a process of its own)."""
    release = Path(release_dir)
    return draw(inputs_of(pl.read_parquet(release / "indices.parquet"), pl.read_parquet(release / "derived.parquet"),
                          read_shift_share(release)), charts_to_draw)


def render_files(release_dir: Path, indices: pl.DataFrame, derived: pl.DataFrame,
                 workers: int) -> dict[str, tuple[str, bytes]]:
    """The charts of the release in `release_dir`, drawn by `workers` drawers (matplotlib draws on one core), in
    reading order: this process draws every `workers`-th chart from the tables it holds (`indices`, `derived`), and
    each other drawer is a process of its own that reads the Parquet itself."""
    charts_to_draw = plan(indices)
    release = Path(release_dir)
    here = inputs_of(indices, derived, read_shift_share(release))
    if workers <= 1:
        return draw(here, charts_to_draw)
    # spawned, not forked: this process runs polars' thread pool, which a forked child may find locked
    with ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = [pool.submit(_draw_files, str(release), charts_to_draw[i::workers]) for i in range(1, workers)]
        drawn = draw(here, charts_to_draw[0::workers])  # while the other drawers start
        for share in shares:
            drawn.update(share.result())
    return {name: drawn[name] for name, *_ in charts_to_draw}


def _change(value) -> str:
    if value is None:
        return "·"
    value = int(value)
    return f"↑{value}" if value > 0 else (f"↓{-value}" if value < 0 else "—")


def province_table(indices: pl.DataFrame, derived: pl.DataFrame, metric: str) -> str:
    """HTML table of the provinces in the latest quarter: value, rank, rank changes, share of national."""
    quarter = charts.latest(indices, "quarter")
    rows = charts.cells(indices, metric, "province", quarter).select("geo_code", "geo_name_short", "value", "status")

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
        unused = not hidden and r["value"] == 0  # no usage: listed, but not ranked among the others
        cells = [("" if r["rank"] is None or unused else f"{int(r['rank'])}"), html.escape(r["geo_name_short"]),
                 "已抑制" if hidden else f"{r['value']:.2f}",
                 "" if r["share"] is None else f"{r['share'] * 100:.1f}%",
                 "" if r["gq"] is None else f"{r['gq'] * 100:+.1f}%", _change(r["qoq"]), _change(r["vpy"])]
        body.append(f'<tr class="{"unused" if unused else "ranked"}">' + "".join(f"<td>{c}</td>" for c in cells)
                    + "</tr>")
    return f"<div><h3>{charts.METRIC_ZH[metric]} · 各省 {quarter}</h3><table>{head}{''.join(body)}</table></div>"


STYLE = """body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:2em auto;
max-width:1280px;color:#212529}img{max-width:100%;border:1px solid #dee2e6;margin:.5em 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border:1px solid #dee2e6;padding:2px 8px;text-align:right}th{background:#f1f3f5}
td:nth-child(2){text-align:left}.tables{display:grid;grid-template-columns:1fr 1fr;gap:2em}"""


def usage_ratio_table(indices: pl.DataFrame, derived: pl.DataFrame, metric: str) -> str:
    """HTML table of the provinces in the latest quarter by usage ratio (share of the national index / share of the
    national population), with index points per million residents."""
    quarter = charts.latest(indices, "quarter")

    def pick(name):
        return charts.measure(derived, name, metric, "province", quarter).select(
            "geo_code", pl.col("value").alias(name), pl.col("status").alias(f"{name}_status"))

    table = (charts.cells(indices, metric, "province", quarter).select("geo_code", "geo_name_short", "value")
             .join(pick("usage_ratio"), on="geo_code").join(pick("per_million_residents"), on="geo_code")
             .sort(["usage_ratio", "geo_code"], descending=[True, False], nulls_last=True))
    if table.height == 0:
        return ""
    head = "<tr><th>#</th><th>省份</th><th>指数</th><th>每百万常住人口指数</th><th>使用率比 (占全国指数 / 占全国人口)</th></tr>"
    body = []
    for i, r in enumerate(table.iter_rows(named=True), start=1):
        hidden = r["usage_ratio_status"] == "suppressed"
        ratio = "已抑制" if hidden else ("" if r["usage_ratio"] is None else f"{r['usage_ratio']:.2f}")
        per_million = "已抑制" if r["per_million_residents"] is None else f"{r['per_million_residents']:.3f}"
        value = "已抑制" if r["value"] is None else f"{r['value']:.2f}"
        body.append(f'<tr class="ratio"><td>{i}</td><td>{html.escape(r["geo_name_short"])}</td><td>{value}</td>'
                    f"<td>{per_million}</td><td>{ratio}</td></tr>")
    return (f"<div><h3>{charts.METRIC_ZH[metric]} · 人均使用 {quarter}</h3><table>{head}{''.join(body)}</table>"
            "</div>")


def top_city_industries(indices: pl.DataFrame, derived: pl.DataFrame, metric: str, names: dict[str, str]) -> str:
    """HTML table: the five largest industries of each of the ten largest cities (latest year, else quarter)."""
    period, _ = charts.size_period(indices)
    top = (charts.measure(derived, "rank", metric, "city", period).filter(pl.col("status") == "ok")
           .join(charts.cells(indices, metric, "city", period).select("geo_code", "geo_name_short",
                                                                     pl.col("value").alias("index")), on="geo_code")
           .filter(pl.col("index") > 0).sort("value", "geo_code").head(10))
    by_city = (indices.filter((pl.col("metric") == metric) & (pl.col("geo_level") == "city")
                              & (pl.col("period") == period) & (pl.col("industry") != "all")
                              & (pl.col("status") == "ok") & (pl.col("value") > 0)
                              & pl.col("geo_code").is_in(top["geo_code"].implode()))
               .sort("value", "industry", descending=[True, False]).group_by("geo_code", maintain_order=True)
               .head(5).group_by("geo_code", maintain_order=True).agg("industry", "value"))
    found = {code: list(zip(inds, values)) for code, inds, values in by_city.iter_rows()}
    head = "<tr><th>排名</th><th>城市</th><th>指数</th>" + "".join(f"<th>第{i}</th>" for i in "一二三四五") + "</tr>"
    body = []
    for rank, code, name, value in top.select("value", "geo_code", "geo_name_short", "index").iter_rows():
        best = [f"{html.escape(names.get(i, i))} {v:.1f}" for i, v in found.get(code, [])]
        body.append(f'<tr class="ranked"><td>{int(rank)}</td><td>{html.escape(name)}</td><td>{value:.2f}</td>'
                    + "".join(f"<td>{c}</td>" for c in best + [""] * (5 - len(best))) + "</tr>")
    if not body:
        return f"<div><h3>{charts.METRIC_ZH[metric]} · {period}</h3><p>无数据</p></div>"
    return (f"<div><h3>{charts.METRIC_ZH[metric]} · {period}</h3><table>{head}{''.join(body)}</table></div>")


def methods(indices: pl.DataFrame, manifest: dict) -> str:
    """The method, definitions and provenance in a few lines (docs/METHOD.md has the whole of it)."""
    base = indices["base_period"].drop_nulls()
    synthetic = manifest.get("provenance", {}).get("synthetic")
    origin = ("<b>合成数据</b>：由 yunzhi 生成、按腾讯研究院 2021 年云上智能白皮书公布的数字校准的计费记录，并非真实用量"
              if synthetic else "本发布 manifest.json 所列的原始计费文件（含路径与 SHA-256）")
    items = [
        f"指数 = 100 × 实体消费额 / 基期（{html.escape(base[0] if base.len() else '')}）全国全行业消费额，按指标分别计算；"
        "年度指数为该年四个季度之和（仅完整年度）。省、市（含“未分配到城市”）与城市等级各自加总等于全国，行业加总等于全行业；"
        "城市群为成员城市之和，城市群之间可能重叠。直辖市同时出现在省级与市级（代码相同）。",
        "增速 = 本期指数 / 参照期指数 − 1；参照期为 0 时记为“新增”（new），不计增速。排名仅在公开（未抑制）单元中计算，"
        "并列取最优名次。份额 = 实体 / 全国；城市群前 N 份额可能超过 100%（城市群重叠）。",
        "隐私：账户数过少或单一账户占比过高的单元被抑制（值为空），并做补充抑制，使任何已公开的加总关系都不能推出被抑制单元；"
        "由被抑制单元派生的指标同样被抑制。",
        f"数据来源：{origin}。",
        f"版本 {html.escape(str(manifest.get('code_version', '')))} · 发布于 {html.escape(str(manifest.get('created_at', '')))}"
        " · 数据字典见 datapackage.json 与 README.md。",
    ]
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def release_notes(manifest: dict) -> str:
    """Each publication's changes: new quarters, quarters recomputed, revisions by reason, rebase."""
    rows = []
    for note in reversed(manifest.get("release_notes", [])[-8:]):
        revised = "、".join(f"{html.escape(r)} {n}" for r, n in note.get("revisions", {}).items()) or "无"
        new = "、".join(note.get("quarters_new", [])) or "无"
        done = note.get("quarters_recomputed", [])
        rows.append(f"<tr><td>{html.escape(note.get('published_at', ''))}</td><td>{new}</td>"
                    f"<td>{done[0] + '–' + done[-1] if done else '无'}</td><td>{revised}</td>"
                    f"<td>{html.escape(note.get('rebased_to') or '')}</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th>发布时间 (UTC)</th><th>新增季度</th><th>重算季度</th><th>修订（按原因）</th><th>改基期至</th></tr>"
            + "".join(rows) + "</table>")


def page(indices: pl.DataFrame, derived: pl.DataFrame, rendered: dict[str, tuple[str, bytes]],
         manifest: dict | None = None) -> str:
    manifest = manifest or {}

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
    names, _ = industry_names()
    sections = [  # (id, heading, content): the ids are the page's stable anchors
        ("methods", "方法与定义", methods(indices, manifest)),
        ("trend", "全国指数走势", img("national_trend.png")),
        ("maps", "分省地图", '<div class="grid">' + "".join(img(n) for n in group("map_")) + "</div>"),
        ("top10", f"省份与城市前十 · {quarter}（规模与较基期增速）", "".join(img(n) for n in group("top10_"))),
        ("provinces", "各省排名表（最新季度）", '<div class="tables">' + "".join(
            province_table(indices, derived, m) for m in metrics) + "</div>"),
        ("industries", "行业：指数、均值线与倍数", "".join(img(n) for n in group("industries_"))),
        ("tiers", "各级城市的行业结构", img("tier_industry_shares.png")),
        ("clusters", "城市群比较", "".join(img(n) for n in group("clusters_"))),
        ("per-capita", "人均：每百万常住人口指数与使用率比（2020 年人口普查）",
         '<div class="grid">' + "".join(img(n) for n in group("percapita_")) + "</div>"
         + '<div class="tables">' + "".join(usage_ratio_table(indices, derived, m) for m in metrics) + "</div>"),
        ("shift-share", "偏离-份额分解：较一年前的变动 = 全国增长 + 行业结构 + 竞争效应",
         "".join(img(n) for n in group("shiftshare_"))),
        ("concentration", "集中度：洛伦兹曲线与基尼系数",
         '<div class="grid">' + "".join(img(n) for n in group("lorenz_")) + "</div>"),
        ("top-cities", "前十城市的前五大行业", '<div class="tables">' + "".join(
            top_city_industries(indices, derived, m, names) for m in metrics) + "</div>"),
        ("notes", "发布记录", release_notes(manifest)),
    ]
    body = "".join(f'<section id="{key}"><h2>{t}</h2>{c}</section>' for key, t, c in sections if c)
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
    rendered = render_files(release, indices, derived, min(2, os.cpu_count() or 1))
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8")) if (
        release / "manifest.json").exists() else {}
    tmp = Path(tempfile.mkdtemp(prefix=".report.", dir=release))
    tmp.chmod(0o755)
    try:
        for name, (_, png) in rendered.items():
            (tmp / name).write_bytes(png)
        (tmp / "index.html").write_text(page(indices, derived, rendered, manifest), encoding="utf-8")
        target = release / "report"
        old = release / f".report.old.{os.getpid()}"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rendered
