"""Acceptance: the published indices equal an independent implementation of the method (tests/reference_method.py).

The raw input is generated here (seeded), never seen by the project: a directory mixing CSV and Parquet files
(hive-partitioned and not, one byte-identical copy), county codes, retired codes (莱芜 371200 ...), municipality
placeholders (110100, 500200), province-only and 省直辖 codes, Chinese names / aliases / codes of industries in any
case and with spaces, null and empty industries, a file without the industry (and metric) column, the metric column
null for some rows, zoned timestamps that cross a quarter boundary in China Standard Time, duplicate rows, zero
amounts, and accounts spread over several cities and industries (so distinct accounts differ from sums). Five
quarters (2020 complete + 2021Q1). Two runs: `--base 2020Q2` (five tiers) and `--tiers six` (default base).
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import random
import shutil
from collections import defaultdict
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

try:  # tests/ as a plain directory (rootdir conftest) or as a package
    from conftest import run_cli_many
    from reference_method import LEVELS, compute, load_seeds, unique_deliveries
except ModuleNotFoundError:
    from tests.conftest import run_cli_many
    from tests.reference_method import LEVELS, compute, load_seeds, unique_deliveries

SEED = 20240611
START, END = dt.date(2020, 1, 1), dt.date(2021, 3, 31)

CITIES = ["110000", "310000", "440300", "440100", "330100", "510100", "420100", "610100", "540100", "520100",
          "370100", "500000", "120000", "419001", "469002", "659001", "640500", "130100", "210100", "350200",
          "450100", "620100", "630100", "320100", "410100"]
RETIRED = ["371200", "371202", "371203", "341400", "330104"]
PLACEHOLDERS = ["110100", "120100", "310100", "500100", "500200"]
PROVINCE_ONLY = ["440000", "510000", "650000", "130000", "320000", "419000", "429000", "469000", "659000"]
INDUSTRY_SPELLINGS = ["finance", " FINANCE ", "金融", " 游戏", "Gaming", "ecommerce", "电商", "智慧零售", "零售",
                      "retail", "政府", "政务", "交通", "交通云", "行业工具", "industry_saas", "文创", "房地产",
                      "生活互联", "教育", "医疗", "文旅", "广电", "制造", "能源", "手机", "Mobile", "其他", "other",
                      None, ""]
COLUMNS = ["usage_date", "account_id", "region_code", "industry", "product", "metric", "amount"]


def _region_pool(rng: random.Random, seeds) -> list[str]:
    counties = sorted(c for c in _county_codes())
    crosswalk = _crosswalk_codes()
    retired = sorted(c for c in seeds.region_map if c in crosswalk and c not in RETIRED)
    return (CITIES + rng.sample(counties, 14) + ["110105", "310115"] + RETIRED + rng.sample(retired, 6)
            + PLACEHOLDERS + PROVINCE_ONLY)


def _county_codes() -> list[str]:
    with open(Path(__file__).resolve().parent.parent / "seeds" / "counties.csv", encoding="utf-8") as f:
        return [r["code"] for r in csv.DictReader(f)]


def _crosswalk_codes() -> set[str]:
    with open(Path(__file__).resolve().parent.parent / "seeds" / "region_crosswalk.csv", encoding="utf-8") as f:
        return {r["old_code"] for r in csv.DictReader(f)}


# Dense cells (so that many published cells pass the privacy rules and are compared): a few city-level entities,
# each reached through several kinds of code, and a few industries, each through several spellings.
CORE = ["110000", "370100", "440300", "440000U", "310000", "500000", "410000U"]
CORE_CODES = {"110000": ["110100", "110105"], "370100": ["371200", "371202"], "440000U": ["440000"],
              "500000": ["500200", "500100"], "410000U": ["410000", "419000"], "310000": ["310100"]}
CORE_INDUSTRIES = [["finance", " FINANCE ", "金融"], [" 游戏", "Gaming"], ["智慧零售", "零售", "retail"],
                   [None, "", "其他", "other"]]


def _core_pool(rng: random.Random, seeds, entity: str) -> list[str]:
    same = sorted(c for c, e in seeds.region_map.items() if e == entity and c not in CORE_CODES.get(entity, []))
    return CORE_CODES.get(entity, []) + rng.sample(same, min(3, len(same)))


def _row(rng, seeds, account, region, industry, day) -> dict:
    cloud = sorted(p for p, m in seeds.products.items() if m == "cloud")
    ai = sorted(p for p, m in seeds.products.items() if m == "ai")
    if rng.random() < 0.6:
        product, metric = rng.choice(cloud), rng.choice([None, None, "cloud"])
    else:
        product, metric = rng.choice(ai), rng.choice([None, "ai"])
    if rng.random() < 0.04:  # an unknown product beside a valid metric is fine
        product, metric = f"custom-{rng.randint(1, 5)}", rng.choice(["cloud", "ai"])
    return {"usage_date": day, "account_id": account, "region_code": region, "industry": industry,
            "product": product, "metric": metric, "amount": round(rng.lognormvariate(3, 0.6), 4)}


def _generate(rng: random.Random, seeds, n_core: int, n_edge: int) -> list[dict]:
    """Logical rows (typed: date, region as text, float amount); the writers render them per file."""
    days = (END - START).days
    pools = {e: _core_pool(rng, seeds, e) for e in CORE}
    rows = []
    core_accounts = [(f"core-{i:03d}", rng.sample(CORE, 2), rng.sample(CORE_INDUSTRIES, 2)) for i in range(160)]
    for _ in range(n_core):
        acct, entities, inds = rng.choice(core_accounts)
        rows.append(_row(rng, seeds, acct, rng.choice(pools[rng.choice(entities)]), rng.choice(rng.choice(inds)),
                         START + dt.timedelta(days=rng.randint(0, days))))
    # the long tail: many codes and spellings, few accounts (mostly suppressed cells, still checked for the grid)
    pool = _region_pool(rng, seeds)
    edge_accounts = [(f"edge-{i:03d}", rng.sample(pool, rng.choice([1, 2, 3, 4])),
                      rng.sample(INDUSTRY_SPELLINGS, rng.choice([1, 2, 3]))) for i in range(40)]
    weights = [1.0 / (1 + i) ** 0.7 for i in range(len(edge_accounts))]
    for _ in range(n_edge):
        acct, regions, inds = rng.choices(edge_accounts, weights)[0]
        rows.append(_row(rng, seeds, acct, rng.choice(regions), rng.choice(inds),
                         START + dt.timedelta(days=rng.randint(0, days))))
    for i, r in enumerate(rows):  # zero amounts: kept, but not an active account; one account has only zeros
        if i % 17 == 0 or r["account_id"] == "edge-007":
            r["amount"] = 0.0
    rng.shuffle(rows)
    return rows


UTC = dt.timezone.utc
# Zoned timestamps: (text as written, the CST quarter it belongs to)
ZONED_TEXT = ["2020-03-31T18:00:00+00:00", "2020-07-01T00:30:00+09:00", "2020-07-01T01:00:00+09:00",
              "2020-12-31T16:30:00.250+00:00", "2020-09-30 20:00:00-04:00", "2021-01-01T07:59:59+08:00",
              "2020-06-30T23:59:59", "2020-04-01 00:00:00"]
ZONED_TS = [dt.datetime(2020, 3, 31, 16, 0, tzinfo=UTC), dt.datetime(2020, 9, 30, 15, 59, tzinfo=UTC),
            dt.datetime(2020, 12, 31, 17, 0, tzinfo=UTC), dt.datetime(2020, 6, 30, 17, 0, tzinfo=UTC)]


def _csv_value(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and v < 1e6 else repr(v)
    return str(v)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> list[dict]:
    """Write rows as CSV text; return them as read back (text, None for an empty field)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for i, r in enumerate(rows, start=1):
            vals = [_csv_value(r[c]) for c in columns]
            w.writerow(["" if v is None else v for v in vals])
            out.append({**{c: (v if v not in (None, "") else None) for c, v in zip(columns, vals)},
                        "source_file": path.name, "source_row": i})
    return out


def _write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> list[dict]:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([{f.name: r[f.name] for f in schema} for r in rows], schema=schema)
    pq.write_table(table, path)
    return [{**{f.name: r[f.name] for f in schema}, "source_file": path.name, "source_row": i}
            for i, r in enumerate(rows, start=1)]


def build_raw(root: Path) -> list[dict]:
    """Write the raw directory; return the rows the method must use (byte-identical copies counted once)."""
    rng = random.Random(SEED)
    seeds = load_seeds()
    rows = _generate(rng, seeds, 3600, 800)
    # every zoned/naive text date and typed timestamp appears at least once
    for i, t in enumerate(ZONED_TEXT):
        rows[i]["usage_date"] = t
    chunks = [rows[:1500], rows[1500:2000], rows[2000:2900], rows[2900:3700], rows[3700:]]
    files: dict[Path, list[dict]] = {}

    a = [{**r, "usage_date": r["usage_date"] if isinstance(r["usage_date"], str) else r["usage_date"].isoformat()}
         for r in chunks[0]]
    a += [dict(a[j]) for j in rng.sample(range(len(a)), 12)]  # duplicate billing lines are kept
    for r in a:  # some amounts written as integers and with spaces
        if rng.random() < 0.05 and r["amount"] > 1:
            r["amount"] = float(int(r["amount"]))
    for r in a:  # customers (privacy's contributors): some core accounts share one, other rows have none
        n = int(r["account_id"][5:]) if r["account_id"].startswith("core-") else -1
        r["customer_id"] = f"cust-{n // 6}" if n >= 0 and n % 3 == 0 else rng.choice([None, ""])
    files[root / "csv" / "part_a.csv"] = _write_csv(root / "csv" / "part_a.csv", a, [*COLUMNS, "customer_id"])

    # no industry column (-> other) and no metric column (-> catalogue): only catalogue products
    b = [{**r, "usage_date": r["usage_date"].isoformat(),
          "product": r["product"] if r["product"] in seeds.products else "cvm"} for r in chunks[1]]
    cols_b = ["usage_date", "account_id", "region_code", "product", "amount"]
    files[root / "csv" / "no_industry.csv"] = _write_csv(root / "csv" / "no_industry.csv", b, cols_b)
    shutil.copyfile(root / "csv" / "no_industry.csv", root / "csv" / "zz_same_delivery.csv")  # one delivery

    # hive-partitioned Parquet whose folder values disagree with usage_date (they are ignored); typed columns
    c = [{**r, "region_code": int(r["region_code"]),
          "industry": r["industry"] if rng.random() > 0.1 else ""} for r in chunks[2]]
    schema_c = pa.schema([("usage_date", pa.date32()), ("account_id", pa.string()), ("region_code", pa.int64()),
                          ("industry", pa.string()), ("product", pa.string()), ("metric", pa.string()),
                          ("amount", pa.float64())])
    half = len(c) // 2
    files[root / "quarter=2020Q3" / "part-0.parquet"] = _write_parquet(root / "quarter=2020Q3" / "part-0.parquet",
                                                                       c[:half], schema_c)
    files[root / "quarter=2021Q1" / "part-0.parquet"] = _write_parquet(root / "quarter=2021Q1" / "part-0.parquet",
                                                                       c[half:], schema_c)

    # zone-aware timestamps (UTC), converted to China Standard Time before the quarter is taken
    d = [{**r, "usage_date": dt.datetime.combine(r["usage_date"], dt.time(rng.randint(0, 15 if r["usage_date"] == END else 23), rng.randint(0, 59)),
                                                 tzinfo=UTC)} for r in chunks[3]]
    for i, ts in enumerate(ZONED_TS):
        d[i]["usage_date"] = ts
    schema_d = pa.schema([("usage_date", pa.timestamp("us", tz="UTC")), ("account_id", pa.string()),
                          ("region_code", pa.string()), ("industry", pa.string()), ("product", pa.string()),
                          ("metric", pa.string()), ("amount", pa.float64())])
    files[root / "ts_utc.parquet"] = _write_parquet(root / "ts_utc.parquet", d, schema_d)

    # plain Parquet, ISO text dates, no metric column
    e = [{**r, "usage_date": r["usage_date"].isoformat(),
          "product": r["product"] if r["product"] in seeds.products else "asr"} for r in chunks[4]]
    schema_e = pa.schema([("usage_date", pa.string()), ("account_id", pa.string()), ("region_code", pa.string()),
                          ("industry", pa.string()), ("product", pa.string()), ("amount", pa.float64())])
    files[root / "nested" / "deeper" / "flat.parquet"] = _write_parquet(root / "nested" / "deeper" / "flat.parquet",
                                                                        e, schema_e)
    keep = set(unique_deliveries(sorted(root.rglob("*.csv")) + sorted(root.rglob("*.parquet"))))
    assert root / "csv" / "zz_same_delivery.csv" not in keep
    return [r for p, rs in files.items() if p in keep for r in rs]


# ------------------------------------------------------------------------------------------------ fixtures
# One run (each costs ~20 s of CPU): a base other than the earliest quarter and the six-tier scheme. The default
# base and the five tiers are compared with the reference in test_quarantine_rules.py.
RUNS = {"six_base_q2": {"base": "2020Q2", "tiers": "six", "args": ["--base", "2020Q2", "--tiers", "six"]}}


@pytest.fixture(scope="session")
def seeds():
    return load_seeds()


@pytest.fixture(scope="session")
def equivalence(tmp_path_factory, seeds):
    root = tmp_path_factory.mktemp("equivalence")
    raw = root / "raw"
    rows = build_raw(raw)
    procs = run_cli_many([["run", "--raw", raw, "--out", root / name, *spec["args"], "--no-report"]
                          for name, spec in RUNS.items()])
    out = {}
    for (name, spec), proc in zip(RUNS.items(), procs):
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
        ref = compute(rows, seeds, base=spec["base"], tier_scheme=spec["tiers"])
        out[name] = (pl.read_parquet(root / name / "indices.parquet"), ref, root / name)
    return rows, out


# ------------------------------------------------------------------------------------------------ the reference itself
def test_reference_region_resolution(seeds):
    m = seeds.region_map
    assert m["371200"] == "370100"  # 莱芜 -> 济南 (crosswalk)
    assert m["371202"] == "370100"  # 莱城区 -> 370116 (a 济南 district) -> 济南
    assert m["330104"] == "330100" and m["341400"] == "340100"
    assert m["110105"] == "110000" and m["110100"] == "110000" and m["500200"] == "500000"
    assert m["120000"] == "120000" and m["440000"] == "440000U" and m["419000"] == "410000U"
    assert m["419001"] == "419001" and m["440300"] == "440300"
    assert "710000" not in m and "810000" not in m
    assert seeds.tier_of("120000", "five") == "tier2" and seeds.tier_of("120000", "six") == "new_tier1"
    assert seeds.tier_of("419001") == "unallocated" and seeds.tier_of("440000U") == "unallocated"
    assert len(seeds.provinces) == 31 and len(seeds.city_entities) == 369 + 27 and len(seeds.clusters) == 19


def test_fixture_exercises_the_cases(equivalence, seeds):
    rows, out = equivalence
    _, ref, _ = out["six_base_q2"]
    assert ref.quarters == ["2020Q1", "2020Q2", "2020Q3", "2020Q4", "2021Q1"] and ref.years == ["2020"]
    assert ref.base == "2020Q2" and ref.metrics == ["cloud", "ai"]
    assert ref.quarantine == [] and ref.rows_used == len(rows)
    regions = {str(r["region_code"]) for r in rows}
    assert {"371200", "110100", "500200", "440000", "419000", "110105"} <= regions
    assert any("industry" not in r for r in rows) and any(r.get("industry") == "" for r in rows)
    assert any(r.get("metric") is None and "metric" in r for r in rows)
    # distinct accounts differ from sums: some national 'all' cell has fewer accounts than its industries together
    cells = ref.cells
    q = "2020Q3"
    total = cells[("cloud", q, "quarter", "national", "CN", "all")][1]
    by_ind = sum(cells[("cloud", q, "quarter", "national", "CN", i)][1] for i in seeds.industries)
    assert total < by_ind
    # and zero-amount rows exist that do not count as active accounts
    assert any(r["amount"] in (0, 0.0, "0") for r in rows)


# ------------------------------------------------------------------------------------------------ equivalence
def _compare(published: pl.DataFrame, ref, seeds) -> list[str]:
    problems = []
    keys = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
    got = {tuple(r[k] for k in keys): r for r in published.iter_rows(named=True)}
    if len(got) != published.height:
        problems.append(f"{published.height - len(got)} duplicate keys")
    missing = set(ref.cells) - set(got)
    extra = set(got) - set(ref.cells)
    if missing:
        problems.append(f"{len(missing)} cells missing from the grid, e.g. {sorted(missing)[:5]}")
    if extra:
        problems.append(f"{len(extra)} unexpected cells, e.g. {sorted(extra)[:5]}")
    bad_value, bad_accounts, bad_status = [], [], []
    for key, (value, accounts) in ref.cells.items():
        row = got.get(key)
        if row is None:
            continue
        if row["status"] == "suppressed":
            if (key[3] == "national" and key[5] == "all") or row["value"] is not None or row["accounts"] is not None:
                bad_status.append((key, row["status"], row["value"], row["accounts"]))
            continue
        if row["status"] != "ok":
            bad_status.append((key, row["status"]))
            continue
        if row["value"] is None or not math.isclose(row["value"], value, rel_tol=1e-9, abs_tol=1e-12):
            bad_value.append((key, row["value"], value))
        if row["accounts"] != accounts:
            bad_accounts.append((key, row["accounts"], accounts))
    for label, bad in (("values", bad_value), ("accounts", bad_accounts), ("status", bad_status)):
        if bad:
            problems.append(f"{len(bad)} cells with wrong {label} (got, expected), e.g. {bad[:5]}")
    return problems


@pytest.mark.parametrize("run", list(RUNS))
def test_indices_equal_reference(equivalence, seeds, run):
    _, out = equivalence
    published, ref, _ = out[run]
    problems = _compare(published, ref, seeds)
    assert not problems, "\n".join(problems)
    # not vacuous: many non-zero published cells were compared at every level, quarters and the year
    ok = published.filter((pl.col("status") == "ok") & (pl.col("value") > 0))
    for level in LEVELS:
        assert ok.filter(pl.col("geo_level") == level).height >= 20, level
    assert ok.filter((pl.col("period_type") == "year") & (pl.col("industry") != "all")).height >= 20
    assert ok.filter(pl.col("geo_level") == "city").select("geo_code").n_unique() >= 5


@pytest.mark.parametrize("run", list(RUNS))
def test_grid_and_columns(equivalence, seeds, run):
    _, out = equivalence
    published, ref, _ = out[run]
    scheme = RUNS[run]["tiers"]
    assert published.columns == ["metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "geo_name_en",
                                 "geo_name_short", "industry", "value", "accounts", "status", "base_period"]
    assert published["base_period"].unique().to_list() == [ref.base]
    assert published["value"].dtype == pl.Float64
    # every entity of every level x industry (all + 18) x period x metric, exactly once
    per_level = published.group_by("geo_level").agg(pl.struct("geo_code").n_unique().alias("n"))
    expected = {lvl: len(seeds.entities(lvl, scheme)) for lvl in LEVELS}
    assert dict(per_level.iter_rows()) == expected
    assert expected["tier"] == (7 if scheme == "six" else 6)
    assert set(published["industry"]) == {"all", *seeds.industries}
    assert set(zip(published["period"], published["period_type"])) == (
        {(q, "quarter") for q in ref.quarters} | {(y, "year") for y in ref.years})
    n = len(ref.metrics) * (len(ref.quarters) + len(ref.years)) * 19 * sum(expected.values())
    assert published.height == n == len(ref.cells)
    # names from the seeds
    assert published["geo_name"].null_count() == 0
    names = {(r["level"], r["code"]): {r["name_zh"], r.get("short_zh")} for r in
             [*seeds.provinces.values(), *seeds.cities.values()]}
    geo = published.select("geo_level", "geo_code", "geo_name").unique()
    wrong = [(lvl, code, name) for lvl, code, name in geo.iter_rows()
             if lvl in ("province", "city") and not code.endswith("U") and name not in names[(lvl, code)]]
    assert not wrong, wrong[:5]
    clusters = {code: name for lvl, code, name in geo.iter_rows() if lvl == "cluster"}
    assert clusters == seeds.cluster_names
    short = published.filter(pl.col("geo_level").is_in(["province", "city"]) & ~pl.col("geo_code").str.ends_with("U"))
    wrong = [(lvl, code, name) for lvl, code, name in short.select("geo_level", "geo_code", "geo_name_short").unique()
             .iter_rows() if name != (seeds.provinces if lvl == "province" else seeds.cities)[code]["short_zh"]]
    assert not wrong, wrong[:5]


def test_national_base_quarter_is_100(equivalence):
    _, out = equivalence
    for run, (published, ref, _) in out.items():
        nat = published.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all")
                               & (pl.col("period") == ref.base))
        assert sorted(nat["value"].to_list()) == pytest.approx([100.0, 100.0], rel=1e-12), run
        assert ref.base == "2020Q2"


def _privacy_status(equivalence):
    _, out = equivalence
    published, ref, _ = out["six_base_q2"]
    keys = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
    return {tuple(r[:6]): r[6] for r in published.select(*keys, "status").iter_rows()}, ref


def test_privacy_primary_rules(equivalence):
    """CONTRACT.md "Privacy": every cell but national x all with usage and < 5 customers or failing the p% rule
    (p = 10) is suppressed; national x all is never suppressed (complements are not checked here)."""
    status, ref = _privacy_status(equivalence)
    not_hidden = [key for key in ref.cells if not (key[3] == "national" and key[5] == "all")
                  and ref.sensitive[key] and status[key] != "suppressed"]
    assert not not_hidden, f"{len(not_hidden)} primary cells published, e.g. {not_hidden[:5]}"
    assert all(status[k] == "ok" for k in ref.cells if k[3] == "national" and k[5] == "all")
    assert "suppressed" in status.values()


def test_privacy_zero_cells_never_suppressed(equivalence):
    status, ref = _privacy_status(equivalence)
    hidden = [k for k in ref.cells if ref.sensitive[k] is None and status[k] != "ok"]
    assert not hidden, f"{len(hidden)} cells without usage suppressed, e.g. {hidden[:5]}"
