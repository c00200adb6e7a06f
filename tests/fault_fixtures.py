"""Shared helpers for the property and fault tests: small raw inputs built from the seeds, and the pure
transform chain the assets run (ingest -> validate -> cube -> base -> indices -> annual), without Dagster.

`run_transforms` calls the per-quarter functions the assets call, so that a property test costs milliseconds, not a
Dagster run.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from assets.transforms import validate
from assets.transforms.errors import InputError
from assets.transforms.annual import complete_years, index_year
from assets.transforms.base import base_totals_of, check_metric_quarters
from assets.transforms.cube import cube_quarter
from assets.transforms.indices import index_grid, normalise_to_base_period
from assets.transforms.ingest.inventory import data_quarters, take_inventory
from assets.transforms.ingest.read import undated_rows
from assets.transforms.publish import assemble_quarantine
from assets.transforms.quarters import quarter_bounds
from assets.transforms.validate import validate_quarter
from assets.transforms.reference import Reference, load_reference

ROOT = Path(__file__).resolve().parent.parent
PRODUCTS = {"cloud": ["cvm", "cos", "cdn", "redis"], "ai": ["asr", "ocr", "nlp"]}


@lru_cache(maxsize=1)
def reference() -> Reference:
    return load_reference()


@lru_cache(maxsize=1)
def region_pool() -> tuple[str, ...]:
    """A mix of raw region codes: cities of every tier and none, municipalities, counties, province codes
    (unallocated), a retired code and a municipality placeholder."""
    ref = reference()
    cities = ref.cities.sort("code")["code"].to_list()
    clustered = sorted(set(ref.clusters["city_code"]))
    provinces = ref.provinces.sort("code")["code"].to_list()
    counties = ref.counties.sort("code")["code"].to_list()
    pool = cities[::23] + clustered[::9] + provinces[::4] + counties[::400] + ["110000", "310100", "371200"]
    return tuple(dict.fromkeys(pool))


def quarter_dates(quarter: str, n: int, rng: np.random.Generator) -> list[dt.date]:
    start, end = quarter_bounds(quarter)
    days = (end - start).days
    return [start + dt.timedelta(days=int(d)) for d in rng.integers(0, days, n)]


def make_raw(quarters: list[str], rows_per_quarter: int = 60, seed: int = 0, accounts: int = 40,
             industries: bool = True, regions: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Good raw rows (every quarter has both metrics), in the contract's raw schema, deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    pool = regions or region_pool()
    codes = reference().industries["code"].to_list()
    frames = []
    for quarter in quarters:
        n = rows_per_quarter
        metric = np.array(["cloud", "ai"])[np.arange(n) % 2]
        product = [PRODUCTS[m][int(i)] for m, i in zip(metric, rng.integers(0, 3, n))]
        frames.append(pl.DataFrame({
            "usage_date": quarter_dates(quarter, n, rng),
            "account_id": [f"acct-{int(i):04d}" for i in rng.integers(0, accounts, n)],
            "region_code": [pool[int(i)] for i in rng.integers(0, len(pool), n)],
            "industry": [codes[int(i)] for i in rng.integers(0, len(codes), n)] if industries else [None] * n,
            "product": product,
            "amount": np.round(rng.lognormal(6, 1.5, n), 2),
        }, schema_overrides={"industry": pl.String}))
    return pl.concat(frames)


BAD_ROWS = [  # (column overrides, reason): one of each quarantine reason that a typed file can carry
    ({"account_id": None}, "missing_account"),
    ({"account_id": "\u200b"}, "missing_account"),
    ({"region_code": ""}, "missing_region"),
    ({"region_code": "999999"}, "unknown_region"),
    ({"industry": "astrology"}, "unknown_industry"),
    ({"product": "no-such-product"}, "unknown_product"),
    ({"amount": float("nan")}, "invalid_amount"),
    ({"amount": float("inf")}, "invalid_amount"),
    ({"amount": -5.0}, "invalid_amount"),
    ({"amount": 1e300}, "invalid_amount"),
]


def add_bad_rows(frame: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """`frame` with `n` of its rows copied and spoiled, one BAD_ROWS fault each (round-robin), appended."""
    if n == 0 or frame.height == 0:
        return frame
    rng = np.random.default_rng(seed)
    picked = frame[rng.integers(0, frame.height, n).tolist()]
    bad = [picked[i].with_columns(pl.lit(v, dtype=frame.schema[k]).alias(k) for k, v in BAD_ROWS[i % len(BAD_ROWS)][0].items())
           for i in range(n)]
    return pl.concat([frame, *bad])


def write_parquet(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def write_csv(frame: pl.DataFrame, path: Path, encoding: str = "utf-8", separator: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.write_csv(separator=separator)
    path.write_bytes(text.encode(encoding))
    return path


def split_into_files(frame: pl.DataFrame, directory: Path, cuts: list[int], fmt: str = "parquet") -> Path:
    """Write `frame` as consecutive slices ending at each cut (plus the rest), one file each."""
    directory.mkdir(parents=True, exist_ok=True)
    bounds = [0, *sorted(c for c in cuts if 0 < c < frame.height), frame.height]
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        part = frame.slice(lo, hi - lo)
        path = directory / f"part-{i:03d}.{fmt}"
        (write_parquet if fmt == "parquet" else write_csv)(part, path)
    return directory


def run_transforms(raw: str | Path, base_period: str | None = None, allow_empty: bool = True) -> dict:
    """The per-quarter functions the assets call, in flow order: quarterly and annual index tables (with amount
    columns), cubes, the quarantine and the row counts. Whole-input errors raise `InputError`, as in a run."""
    ref = reference()
    inventory = take_inventory(raw)
    quarters = data_quarters(inventory)
    with_rows = set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls())
    if not allow_empty and set(quarters) - with_rows:
        raise InputError(f"{raw}: empty quarter")
    book = validate.Codebook(ref)
    usage, quarantine = {}, [validate.select_quarantine(validate.classify_rows(undated_rows(inventory), book)).collect()]
    for quarter in quarters:
        usage[quarter], bad = validate_quarter(inventory, quarter, book)
        quarantine.append(bad)
    cubes = {q: cube_quarter(usage[q].lazy(), ref) for q in quarters}
    check_metric_quarters(cubes, allow_empty, str(raw))
    totals = base_totals_of(cubes, base_period or quarters[0])
    grid = index_grid(ref, totals["metric"].to_list())
    quarterly = {q: normalise_to_base_period(cubes[q], totals, grid, q) for q in quarters}
    lazy_usage = {q: frame.lazy() for q, frame in usage.items()}
    annual = {year: index_year(year, quarterly, lazy_usage, ref) for year in complete_years(quarters)}
    ingested = inventory.filter(pl.col("status") == "ingested")
    quarantined = assemble_quarantine(quarantine)
    return {"inventory": inventory, "quarters": quarters, "usage": usage, "cubes": cubes, "base": totals,
            "quarterly": quarterly, "annual": annual, "quarantine": quarantined,
            "rows_in": int(ingested["rows"].sum()),
            "rows_used": sum(int(u["rows"].sum()) for u in usage.values()),
            "rows_quarantined": quarantined.height}


def dense_raw(quarters: list[str], seed: int = 0) -> pl.DataFrame:
    """Enough accounts in few places that most published cells pass the privacy rules (for full CLI runs)."""
    ref = reference()
    places = tuple(sorted(set(ref.clusters["city_code"]))[::6]) + ("440000", "110000", "310000")
    return make_raw(quarters, 1200, seed=seed, accounts=400, regions=places)


def cli_run(raw: str | Path, out: str | Path, *extra: str) -> int:
    from pipelines.cli import main

    return main(["run", "--raw", str(raw), "--out", str(out), *extra])
