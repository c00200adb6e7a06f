"""Tiny raw fixtures, deterministic and independent of the demo generator (a few hundred rows each):

- `tiny_rows` / `write_tiny_raw`: two quarters, six cities, both metrics, two rejected rows (tests/test_ui.py);
- `story_rows` / `write_story_raw` / `write_late_file`: the browser story (scripts/e2e.py): the four quarters of
  2020 in nine city-level places (every tier of the six-tier scheme but tier4/tier5, and one province-level code,
  so `unallocated` has usage), then a late file of new accounts for 2020Q4.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import polars as pl

QUARTERS = ("2020Q1", "2020Q2")
CITIES = ("110000", "310000", "440100", "440300", "330100", "510100")
INDUSTRIES = ("finance", "ecommerce", "gaming", "education", None)
PRODUCTS = {"cloud": ("cvm", "cbs"), "ai": ("asr", "tts")}
ACCOUNTS_PER_CITY = 8


def tiny_rows() -> pl.DataFrame:
    rows = []
    for qi, quarter in enumerate(QUARTERS):
        first = dt.date(int(quarter[:4]), 3 * int(quarter[5]) - 2, 1)
        for ci, city in enumerate(CITIES):
            for a in range(ACCOUNTS_PER_CITY):
                for mi, metric in enumerate(("cloud", "ai")):
                    rows.append({"usage_date": (first + dt.timedelta(days=(a * 7 + ci + mi) % 85)).isoformat(),
                                 "account_id": f"e2e-{ci:02d}-{a:02d}", "region_code": city,
                                 "industry": INDUSTRIES[(a + ci) % len(INDUSTRIES)],
                                 "product": PRODUCTS[metric][a % 2],
                                 "amount": round(100.0 + 13.0 * a + 41.0 * ci + 29.0 * qi + 7.0 * mi, 2)})
    rows += [  # one rejected row of each of two kinds
        {"usage_date": "2020-02-02", "account_id": "e2e-bad-1", "region_code": "999999", "industry": None,
         "product": "cvm", "amount": 10.0},
        {"usage_date": "2020-05-05", "account_id": "e2e-bad-2", "region_code": "110000", "industry": None,
         "product": "cvm", "amount": -1.0},
    ]
    return pl.DataFrame(rows, schema={"usage_date": pl.String, "account_id": pl.String, "region_code": pl.String,
                                      "industry": pl.String, "product": pl.String, "amount": pl.Float64})


def write_by_quarter(frame: pl.DataFrame, quarters: tuple[str, ...], directory: str | Path) -> Path:
    """One CSV per quarter (`usage_<quarter>.csv`) of `frame`'s rows under `directory`; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for quarter in quarters:
        year, q = int(quarter[:4]), int(quarter[5])
        months = [f"{year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
        frame.filter(pl.col("usage_date").str.slice(0, 7).is_in(months)).write_csv(directory / f"usage_{quarter}.csv")
    return directory


def write_tiny_raw(directory: str | Path) -> Path:
    """One CSV per quarter under `directory`; returns the directory."""
    return write_by_quarter(tiny_rows(), QUARTERS, directory)


def load_e2e_script(name: str = "yunzhi_e2e"):
    """scripts/e2e.py as a module (the story and its browser steps; scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[2] / "scripts" / "e2e.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------ the UI story
# The browser story (scripts/e2e.py): four quarters of 2020 (base 2020Q2, six tiers), then a late file for 2020Q4.
STORY_QUARTERS = ("2020Q1", "2020Q2", "2020Q3", "2020Q4")
LATE_QUARTER = "2020Q4"
# tier1 x4, new_tier1 x2 (330100, 510100), tier2 (130100), tier3 (130200) and a province code (130000: somewhere in
# Hebei, published as 130000U and tier `unallocated`)
STORY_CITIES = CITIES + ("130100", "130200", "130000")


def _story_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"usage_date": pl.String, "account_id": pl.String, "region_code": pl.String,
                                      "industry": pl.String, "product": pl.String, "amount": pl.Float64})


def story_rows(quarters: tuple[str, ...] = STORY_QUARTERS, prefix: str = "e2e", accounts: int = ACCOUNTS_PER_CITY,
               offset: float = 0.0) -> pl.DataFrame:
    """Deterministic rows: every account of every city bills both metrics in every quarter of `quarters`
    (9 cities x 8 accounts x 2 metrics x 4 quarters = 576 rows by default), plus two rejected rows in 2020Q1."""
    rows = []
    for quarter in quarters:
        qi = STORY_QUARTERS.index(quarter) if quarter in STORY_QUARTERS else 0
        first = dt.date(int(quarter[:4]), 3 * int(quarter[5]) - 2, 1)
        for ci, city in enumerate(STORY_CITIES):
            for a in range(accounts):
                for mi, metric in enumerate(("cloud", "ai")):
                    rows.append({"usage_date": (first + dt.timedelta(days=(a * 11 + ci * 3 + mi) % 88)).isoformat(),
                                 "account_id": f"{prefix}-{ci:02d}-{a:02d}", "region_code": city,
                                 "industry": INDUSTRIES[(a + ci) % len(INDUSTRIES)],
                                 "product": PRODUCTS[metric][(a + qi) % 2],
                                 "amount": round(offset + 90.0 + 17.0 * a + 37.0 * ci + 23.0 * qi + 5.0 * mi, 2)})
    if prefix == "e2e":
        rows += [{"usage_date": "2020-02-02", "account_id": "e2e-bad-1", "region_code": "999999", "industry": None,
                  "product": "cvm", "amount": 10.0},
                 {"usage_date": "2020-03-05", "account_id": "e2e-bad-2", "region_code": "110000", "industry": None,
                  "product": "cvm", "amount": -1.0}]
    return _story_frame(rows)


def write_story_raw(directory: str | Path) -> Path:
    """The story's first delivery: one CSV per quarter of 2020 under `directory`; returns the directory."""
    return write_by_quarter(story_rows(), STORY_QUARTERS, directory)


def write_late_file(path: str | Path, quarter: str = LATE_QUARTER) -> Path:
    """A late delivery for one quarter: new accounts (e2e-late-*) in every city, both metrics (144 rows)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    story_rows((quarter,), prefix="e2e-late", offset=3.0).write_csv(path)
    return path
