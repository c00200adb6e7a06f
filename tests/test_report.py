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
from test_derived import MEMBERS, make_table

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def small_release(tmp_path) -> Path:
    """A release folder holding only a hand-made indices.parquet and its derived.parquet."""
    table = make_table(21).with_columns(pl.col("industry").replace({"x": "finance", "y": "ecommerce", "z": "other"}))
    write_parquet_atomic(table, tmp_path / "indices.parquet")
    write_parquet_atomic(derive_measures(table, MEMBERS), tmp_path / "derived.parquet")
    return tmp_path


def test_report_is_self_contained_and_has_every_chart(small_release):
    rendered = write_report(small_release)
    folder = small_release / "report"
    page = (folder / "index.html").read_text(encoding="utf-8")
    expected = {"national_trend.png", "map_ai_2021Q1.png", "map_ai_2020.png", "top10_province_ai.png",
                "top10_city_ai.png", "industries_ai.png", "tier_industry_shares.png", "clusters_ai.png",
                "top_city_industries_ai.png"}
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
    assert page.count("data:image/png;base64,") >= 16
    assert "北京" in page
