"""The engines compared: the project's bare computation, DuckDB on the same work, and their comparison."""
from __future__ import annotations

import time
from pathlib import Path

import polars as pl

KEYS = ["metric", "period", "geo_level", "geo_code", "industry"]
RTOL = 1e-9


def privacy_stage(release: str | Path) -> dict:
    """The privacy stage alone on a release's stored quarterly and annual indices, as its `disclosed_indices` step
    first published them: the release's k, p, q and geo hierarchy, no earlier version. The protection (LPs chosen by
    HiGHS) and the attacker's audit, with their LP counts and seconds."""
    from assets.transforms.cube import geo_membership
    from assets.transforms.privacy import audit, combine_periods, suppression_flags
    from assets.transforms.protection import Stats
    from assets.transforms.release import read_settings

    state = Path(release) / "state" / "assets"
    started = time.perf_counter()
    rules = read_settings(release)
    quarterly = [pl.read_parquet(p) for p in sorted((state / "quarterly_indices").glob("*.parquet"))]
    annual = pl.read_parquet(state / "annual_indices.parquet")
    combined = combine_periods(quarterly, annual)
    membership = geo_membership(rules.reference())
    read_s = time.perf_counter() - started
    protection, attack = Stats(), Stats()
    t = time.perf_counter()
    flags = suppression_flags(combined, rules.privacy_k, rules.privacy_p, rules.protection_percent, membership,
                              stats=protection)
    protect_s = time.perf_counter() - t
    t = time.perf_counter()
    found = audit(flags, membership, attack)
    audit_s = time.perf_counter() - t
    return {"cells": combined.height, "sensitive": int(flags["primary"].sum()),
            "suppressed": int(flags["suppressed"].sum()), "short": int(found["short"].sum()),
            "protection_lps": protection.lps, "protection_witnessed": protection.witnessed,
            "protection_limited": protection.limited, "attacker_lps": attack.lps,
            "stages": {"read_s": round(read_s, 3), "protect_s": round(protect_s, 3), "audit_s": round(audit_s, 3)}}


def project_indices(raw: str | Path, work: str | Path, engine: str = "polars", spark=None) -> dict:
    """Raw files -> indices.parquet through the per-quarter functions the assets call (no Dagster); returns stage
    timings.

    Each quarter is read once (file-level pruning by the inventory), classified and aggregated per account in one
    streaming pass that also yields its quarantine; the account-level frame goes to Parquet, as the IO manager
    stores it, and everything downstream reads it back lazily.
    """
    from assets.transforms.annual import complete_years, index_year
    from assets.transforms.base import base_totals_of
    from assets.transforms.cube import cube_quarter
    from assets.transforms.files import STATE_COMPRESSION, write_parquet_atomic
    from assets.transforms.indices import index_grid, normalise_to_base_period
    from assets.transforms.ingest.inventory import data_quarters, take_inventory
    from assets.transforms.reference import load_reference
    from assets.transforms.validate import Codebook, validate_quarter

    work = Path(work)
    timings, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - t, 3)
        t = now

    def stored(frame, name: str, quarter: str) -> pl.LazyFrame:
        return pl.scan_parquet(write_parquet_atomic(frame, work / name / f"{quarter}.parquet", STATE_COMPRESSION))

    ref = load_reference()
    inventory = take_inventory(raw)
    quarters = data_quarters(inventory)
    lap("inventory")
    usage, cubes = {}, {}
    if engine == "spark":
        from assets.transforms import spark_cube

        session = spark or spark_cube.session()
        for q, (usage_lf, quarantine_lf) in spark_cube.account_usage(session, inventory, quarters, ref,
                                                                    work / "spark").items():
            usage[q] = stored(usage_lf, "account_usage", q)
            stored(quarantine_lf, "quarantine", q)
        lap("account_usage")
        cubes = spark_cube.build_cubes(session, {q: [work / "account_usage" / f"{q}.parquet"] for q in quarters}, ref)
        lap("cube")
    else:
        book = Codebook(ref)
        for q in quarters:
            account, quarantine = validate_quarter(inventory, q, book)
            usage[q] = stored(account, "account_usage", q)
            stored(quarantine, "quarantine", q)
            del account, quarantine
        lap("account_usage")
        cubes = {q: cube_quarter(usage[q], ref) for q in quarters}
        lap("cube")
    base = base_totals_of(cubes, quarters[0])
    grid = index_grid(ref, base["metric"].to_list())
    tables = {q: normalise_to_base_period(cubes[q], base, grid, q) for q in quarters}
    lap("indices")
    years = [index_year(year, tables, usage, ref) for year in complete_years(quarters)]
    lap("annual")
    indices = pl.concat([*tables.values(), *years])
    write_parquet_atomic(indices, work / "indices.parquet")
    lap("write")
    return {"stages": timings, "quarters": quarters, "rows_out": indices.height}


def duckdb_indices(raw: str | Path, work: str | Path, threads: int | None = None) -> dict:
    """The same indices in DuckDB SQL, from the same files: quarters and complete years, every level and industry.

    The reference lookups (region codes, industry spellings, products, geo membership) are the project's tables,
    registered as DuckDB relations; everything that touches raw rows is SQL.
    """
    import duckdb
    import polars as pl

    from assets.transforms.cube import geo_membership
    from assets.transforms.ingest.read import list_raw_files
    from assets.transforms.reference import load_reference

    work = Path(work)
    timings, t = {}, time.perf_counter()
    ref = load_reference()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{work / 'duckdb.tmp'}'")
    regions = ref.region_lookup()  # noqa: F841 (registered by name below)
    industries = ref.industry_lookup()
    products = ref.product_lookup()
    members = geo_membership(ref)
    for name, frame in {"regions": regions, "industries": industries, "products": products,
                        "members": members}.items():
        con.register(name, frame.to_arrow())
    files = [str(p) for p in list_raw_files(raw)]
    con.execute(f"""
    CREATE TEMP TABLE account_usage AS
    WITH raw AS (
        SELECT usage_date, trim(account_id) AS account_id, trim(region_code) AS region_code,
               trim(industry) AS industry, trim(product) AS product, lower(trim(metric)) AS metric, amount
        FROM read_parquet({files!r}, hive_partitioning = false)
    ), resolved AS (
        SELECT r.*, g.geo_code, g.province_code, coalesce(i.code, 'other') AS industry_code, p.product_metric,
               i.code AS industry_found
        FROM raw r
        LEFT JOIN regions g ON g.code = regexp_replace(r.region_code, '\\.0+$', '')
        LEFT JOIN industries i ON i.spelling = lower(r.industry)
        LEFT JOIN products p ON p.product = lower(r.product)
    )
    SELECT year(usage_date) || 'Q' || quarter(usage_date) AS quarter,
           coalesce(nullif(metric, ''), product_metric) AS metric, geo_code, industry_code AS industry, account_id,
           sum(amount::DECIMAL(38, 9)) AS amount
    FROM resolved
    WHERE usage_date >= DATE '2000-01-01' AND usage_date < DATE '2100-01-01'
      AND coalesce(account_id, '') <> '' AND coalesce(region_code, '') <> '' AND geo_code IS NOT NULL
      AND (coalesce(industry, '') = '' OR industry_found IS NOT NULL)
      AND CASE WHEN coalesce(metric, '') <> ''
               THEN metric IN ('cloud', 'ai') AND (product_metric IS NULL OR product_metric = metric)
               ELSE product_metric IS NOT NULL END
      AND amount IS NOT NULL AND isfinite(amount) AND amount >= 0 AND amount <= 1e15
    GROUP BY ALL
    """)
    now = time.perf_counter()
    timings["account_usage"], t = round(now - t, 3), now
    # Quarters and complete years: a year's accounts are distinct over its four quarters.
    con.execute("""
    CREATE TEMP TABLE periods AS
    WITH q AS (SELECT DISTINCT quarter FROM account_usage),
         y AS (SELECT left(quarter, 4) AS year FROM q GROUP BY 1 HAVING count(*) = 4)
    SELECT quarter, quarter AS period, 'quarter' AS period_type FROM q
    UNION ALL SELECT q.quarter, y.year, 'year' FROM q JOIN y ON left(q.quarter, 4) = y.year
    """)
    cube = con.sql("""
    WITH per_account AS (
        SELECT p.period, p.period_type, a.metric, m.geo_level, m.entity AS geo_code, a.industry, a.account_id,
               sum(a.amount) AS amount
        FROM account_usage a JOIN periods p USING (quarter) JOIN members m USING (geo_code)
        GROUP BY GROUPING SETS ((p.period, p.period_type, a.metric, m.geo_level, m.entity, a.industry, a.account_id),
                                (p.period, p.period_type, a.metric, m.geo_level, m.entity, a.account_id))
    )
    SELECT metric, period, period_type, geo_level, geo_code, coalesce(industry, 'all') AS industry,
           sum(amount)::DOUBLE AS amount, count(*) FILTER (WHERE amount > 0) AS accounts
    FROM per_account GROUP BY ALL
    """).pl()
    now = time.perf_counter()
    timings["cube"], t = round(now - t, 3), now
    quarters = sorted(cube.filter(pl.col("period_type") == "quarter")["period"].unique().to_list())
    base = (cube.filter((pl.col("period") == quarters[0]) & (pl.col("geo_level") == "national")
                        & (pl.col("industry") == "all"))
            .select("metric", pl.col("amount").alias("base_amount")))
    indices = (cube.join(base, on="metric")
               .with_columns((pl.col("amount") / pl.col("base_amount") * 100.0).alias("value"))
               .drop("base_amount"))
    indices.write_parquet(work / "indices.parquet")
    timings["indices"] = round(time.perf_counter() - t, 3)
    con.close()
    return {"stages": timings, "quarters": quarters, "rows_out": indices.height}


def compare_indices(project: "pl.DataFrame", duck: "pl.DataFrame") -> dict:
    """Every cell with usage agrees (amount, value to 1e-9 relative; accounts exactly); the rest are zeros."""
    import polars as pl

    proj = project.select(*KEYS, "value", "amount", "accounts")
    used = proj.filter((pl.col("amount") != 0) | (pl.col("accounts") != 0))
    both = used.join(duck.select(*KEYS, pl.col("value").alias("value_d"), pl.col("amount").alias("amount_d"),
                                 pl.col("accounts").cast(pl.Int64).alias("accounts_d")), on=KEYS, how="full",
                     coalesce=True)

    def rel(a, b):
        return ((pl.col(a) - pl.col(b)).abs() / pl.max_horizontal(pl.col(a).abs(), pl.col(b).abs(), pl.lit(1e-300)))

    bad = both.filter(pl.col("value").is_null() | pl.col("value_d").is_null() | (rel("value", "value_d") > RTOL)
                      | (rel("amount", "amount_d") > RTOL) | (pl.col("accounts") != pl.col("accounts_d")))
    return {"cells_compared": both.height, "cells_with_usage": used.height, "mismatches": bad.height,
            "max_rel_diff_value": float(both.select(rel("value", "value_d").max()).item() or 0.0),
            "example": bad.head(3).to_dicts() if bad.height else []}


def one_quarter(raw: str, work: str) -> dict:
    """Materialise the newest quarter only: inventory, then its account usage, quarantine and cube."""
    from assets.transforms.cube import cube_quarter
    from assets.transforms.ingest.inventory import data_quarters, take_inventory
    from assets.transforms.reference import load_reference
    from assets.transforms.validate import validate_quarter

    t0 = time.perf_counter()
    ref, inventory = load_reference(), take_inventory(raw)
    quarter = data_quarters(inventory)[-1]
    t1 = time.perf_counter()
    account, quarantine = validate_quarter(inventory, quarter, ref)
    cube = cube_quarter(account.lazy(), ref)
    t2 = time.perf_counter()
    return {"quarter": quarter, "stages": {"inventory": round(t1 - t0, 3), "quarter": round(t2 - t1, 3)},
            "cells": cube.height, "quarantined": quarantine.height}
