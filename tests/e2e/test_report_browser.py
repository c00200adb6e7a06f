"""The report of a sparse release, seen in a browser (Playwright on the system Chromium): every chart loads, the
methods and provenance are there, and no table ranks entities without usage. Locators are the page's own section
ids and row classes; the screenshot under build/e2e/ is for humans."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from conftest import run_cli, skip_unless_ci
from tests.e2e.fixture import load_e2e_script, tiny_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sparse_release(tmp_path_factory) -> Path:
    """Usage in two cities and one province's unallocated rows only: most cells of every level are 0."""
    root = tmp_path_factory.mktemp("sparse")
    rows = tiny_rows().filter(pl.col("region_code").is_in(["110000", "440300"]) & (pl.col("amount") > 0))
    extra = rows.head(3).with_columns(pl.lit("650000").alias("region_code"))
    (root / "raw").mkdir()
    pl.concat([rows, extra]).write_csv(root / "raw" / "usage.csv")
    done = run_cli(["run", "--raw", root / "raw", "--out", root / "release"], quiet_warnings=True)
    assert done.returncode == 0, done.stderr
    return root / "release"


def test_the_report_of_a_sparse_release_in_a_browser(sparse_release):
    e2e = load_e2e_script("yunzhi_e2e_report")
    try:
        binary = e2e.ensure_chromium()
    except e2e.Skip as exc:
        skip_unless_ci(f"browser test skipped: {exc}")
    indices = pl.read_parquet(sparse_release / "indices.parquet")
    quarter = sorted(indices.filter(pl.col("period_type") == "quarter")["period"].unique())[-1]
    with_usage = indices.filter((pl.col("geo_level") == "province") & (pl.col("period") == quarter)
                                & (pl.col("industry") == "all") & (pl.col("status") == "ok") & (pl.col("value") > 0))
    with e2e.browser_page(binary) as page:
        page.goto((sparse_release / "report" / "index.html").as_uri())
        images = page.locator("section img")
        assert images.count() >= 10
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("section#methods li").count() >= 4
        manifest = json.loads((sparse_release / "manifest.json").read_text())
        assert manifest["code_version"] in page.locator("section#methods").inner_text()
        for metric in ("ai", "cloud"):  # ranked rows are the provinces with usage, no more
            ranked = with_usage.filter(pl.col("metric") == metric).height
            table = page.locator("section#provinces table").nth(0 if metric == "ai" else 1)
            assert table.locator("tr.ranked").count() == ranked
            assert table.locator("tr.unused").count() == 31 - ranked - table.locator("tr", has_text="已抑制").count()
        for row in page.locator("section#top-cities tr.ranked").all():
            assert float(row.locator("td").nth(2).inner_text()) > 0
        out = ROOT / "build" / "e2e"
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "sparse_report.png"), full_page=True)
