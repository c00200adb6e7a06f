"""The report: charts from the published Parquet only, a self-contained page, Chinese labels, the CLI command."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import polars as pl
import pytest

from assets.transforms import report as charts
from assets.transforms.derived import derive_measures
from assets.transforms.files import write_parquet_atomic
from conftest import run_cli
from assets.transforms.report_page import write_report
from assets.transforms.shift_share import shift_share_table
from test_analytics import derive
from test_derived import MEMBERS, make_table

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def small_release(tmp_path) -> Path:
    """A release folder holding only a hand-made indices.parquet and its derived.parquet."""
    table = make_table(21).with_columns(pl.col("industry").replace({"x": "finance", "y": "ecommerce", "z": "other"}))
    write_parquet_atomic(table, tmp_path / "indices.parquet")
    write_parquet_atomic(derive(table), tmp_path / "derived.parquet")
    write_parquet_atomic(shift_share_table(table), tmp_path / "shift_share.parquet")
    return tmp_path


def test_report_is_self_contained_and_has_every_chart(small_release):
    rendered = write_report(small_release)
    folder = small_release / "report"
    page = (folder / "index.html").read_text(encoding="utf-8")
    expected = {"national_trend.png", "map_ai_2021Q1.png", "map_ai_2020.png", "top10_province_ai.png",
                "top10_city_ai.png", "industries_ai.png", "tier_industry_shares.png", "clusters_ai.png",
                "percapita_ai_2021Q1.png", "shiftshare_ai.png", "lorenz_ai.png"}
    assert expected <= set(rendered)
    for name, (_, png) in rendered.items():
        assert png.startswith(PNG) and (folder / name).read_bytes() == png
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(rendered)
    assert all(base64.b64decode(i).startswith(PNG) for i in images)
    assert not re.search(r'(src|href)="(https?:|//)', page), "the page must open from disk, offline"
    assert "各省" in page and "<table>" in page and '<meta charset="utf-8">' in page


def test_report_rewrites_the_folder(small_release):
    write_report(small_release)
    (small_release / "report" / "stale.png").write_bytes(b"x")
    write_report(small_release)
    assert not (small_release / "report" / "stale.png").exists()


def test_cli_report_regenerates_from_the_parquet(small_release):
    done = run_cli(["report", "--out", small_release], quiet_warnings=True)
    assert done.returncode == 0, done.stderr
    assert (small_release / "report" / "index.html").exists()


def test_cli_report_without_a_release_is_one_line_error(tmp_path):
    done = run_cli(["report", "--out", tmp_path], quiet_warnings=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "indices.parquet" in done.stderr


def test_a_cjk_font_is_found():
    assert charts.use_cjk_font()


def test_missing_cjk_font_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(charts.font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(charts.font_manager, "findSystemFonts", lambda *a, **k: [])
    with pytest.raises(charts.MissingFontError, match="fonts-noto-cjk"):
        charts.use_cjk_font()


def test_province_boundaries_cover_the_31_provinces():
    data = json.loads(charts.BOUNDARIES.read_text(encoding="utf-8"))
    regions = pl.read_csv(Path(charts.BOUNDARIES).parent / "regions.csv", infer_schema=False)
    provinces = set(regions.filter(pl.col("level") == "province")["code"])
    in_scope = {f["properties"]["code"] for f in data["features"] if f["properties"]["in_scope"]}
    assert in_scope == provinces and len(provinces) == 31
    for feature in data["features"]:
        for polygon in feature["geometry"]["coordinates"]:
            for ring in polygon:
                assert ring[0] == ring[-1] and len(ring) >= 4
                assert all(73 <= x <= 136 and 3 <= y <= 54 for x, y in ring)


def test_demo_release_has_its_report(demo_release):
    page = (demo_release / "report" / "index.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 14
    assert "北京" in page
    assert "方法与定义" in page and "合成数据" in page and "发布记录" in page  # methods, provenance, notes
    manifest = json.loads((demo_release / "manifest.json").read_text())
    assert manifest["code_version"] in page and manifest["created_at"] in page


def test_legend_classes_come_from_the_data_with_zero_apart():
    assert charts.value_classes([0.0, 0.0, 0.0]) == []  # a map of zeros has no colour scale
    assert charts.value_classes([0.0, 2.0, 2.0, 5.0]) == [(2.0, 2.0), (5.0, 5.0)]
    classes = charts.value_classes([float(v) for v in range(0, 40)])
    assert len(classes) == 6 and classes[0][0] == 1.0 and classes[-1][1] == 39.0
    assert all(lo <= hi for lo, hi in classes) and all(a[1] <= b[0] for a, b in zip(classes, classes[1:]))


def test_a_sparse_release_ranks_no_zeros_and_titles_fit(small_release):
    """On a release where most cells are 0, the top-10 panels rank only entities with usage, and every title fits
    its line."""
    table = pl.read_parquet(small_release / "indices.parquet")
    sparse = table.with_columns(pl.when(pl.col("geo_code").is_in(["110000", "CN", "110000U"]) |
                                        (pl.col("geo_level") != "city")).then(pl.col("value")).otherwise(0.0))
    write_parquet_atomic(sparse, small_release / "indices.parquet")
    write_parquet_atomic(derive_measures(sparse, MEMBERS), small_release / "derived.parquet")
    from assets.transforms.report_page import top_city_industries

    derived = pl.read_parquet(small_release / "derived.parquet")
    names = top_city_industries(sparse, derived, "ai", {})
    assert names.count("<tr>") <= 2  # a header and at most the one city with usage
    assert all(len(line) <= 60 for line in charts.fit("一" * 50 + " · 2021Q3 较 2019Q1", 36).split("\n"))
    assert charts.fit("赋智量 (AI 指数) · 城市群增速 · 2021Q3 较基期 (%)", 20).count("\n") >= 1


def test_exports_for_spreadsheets(small_release):
    """CSV with a byte-order mark (Excel shows the Chinese names) and one workbook; the quarantine is never exported."""
    import zipfile

    from assets.transforms.publish import REVISION_SCHEMA

    write_parquet_atomic(pl.DataFrame(schema=REVISION_SCHEMA), small_release / "revisions.parquet")
    (small_release / "quarantine.parquet").write_bytes(b"never read")
    done = run_cli(["export", "--out", small_release], quiet_warnings=True)
    assert done.returncode == 0, done.stderr
    folder = small_release / "export"
    assert sorted(p.name for p in folder.iterdir()) == ["derived.csv", "indices.csv", "revisions.csv"]
    raw = (folder / "indices.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert pl.read_csv(folder / "indices.csv").height == pl.read_parquet(small_release / "indices.parquet").height
    done = run_cli(["export", "--out", small_release, "--format", "xlsx", "--to", small_release / "x"],
                   quiet_warnings=True)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(small_release / "x" / "release.xlsx") as book:
        workbook = book.read("xl/workbook.xml").decode()
    assert all(f'name="{name}"' in workbook for name in ("indices", "derived", "revisions"))
    assert run_cli(["export", "--out", small_release, "--format", "pdf"], quiet_warnings=True).returncode == 2


def test_the_economists_section_shows_per_capita_shift_share_and_concentration(small_release):
    """The per-capita map and usage-ratio table, the shift-share waterfall of the largest provinces and the Lorenz
    curve are on the page; the table lists every province with a population, by usage ratio."""
    rendered = write_report(small_release)
    page = (small_release / "report" / "index.html").read_text(encoding="utf-8")
    for section in ("per-capita", "shift-share", "concentration"):
        assert f'<section id="{section}">' in page
    for name in ("percapita_ai_2021Q1.png", "shiftshare_ai.png", "lorenz_ai.png"):
        assert f'title="{name}"' in page and rendered[name][1].startswith(PNG)
    derived = pl.read_parquet(small_release / "derived.parquet")
    ratios = derived.filter((pl.col("measure") == "usage_ratio") & (pl.col("period") == "2021Q1")
                            & (pl.col("geo_level") == "province") & (pl.col("industry") == "all")
                            & (pl.col("metric") == "ai")).sort("value", descending=True)
    table = page.split('<section id="per-capita">', 1)[1].split("</section>", 1)[0]
    assert table.count('<tr class="ratio">') == ratios.height == 5
    assert f"{ratios['value'][0]:.2f}" in table.split('<tr class="ratio">')[1]  # the largest ratio first


def test_waterfall_without_a_year_earlier_says_so():
    from assets.transforms.report_analytics import shift_share_period, shift_share_waterfall
    from assets.transforms.shift_share import SHIFT_SHARE_DTYPES

    table = make_table(3)
    empty = pl.DataFrame(schema=SHIFT_SHARE_DTYPES)
    charts.use_cjk_font()
    assert shift_share_period(empty, "ai") is None
    assert shift_share_waterfall(table, empty, "ai").startswith(PNG)
    assert shift_share_period(shift_share_table(table), "ai") == "2021Q1"
