"""An independent reference implementation of the index method, for acceptance tests.

Written only from `shared/CONTRACT.md` ("Raw input", "Quarantine", "Published release") and `shared/METHOD.md`
("Definitions"), over the seeds in `seeds/`. It imports nothing from the project's `assets` or `pipelines` packages
and uses plain Python (dicts, `csv`, `datetime`) so that an error in the project cannot be copied into it.

Input: raw rows as Python dicts, each holding the values exactly as they sit in the raw file (text for CSV; typed
values for Parquet: `datetime.date`, `datetime.datetime` with or without a zone, `int`, `float`, `str`, `None`), a
column missing from a file simply missing from the dict, plus `source_file` and `source_row`.

Output: `compute(...)` returns the published grid keyed by
`(metric, period, period_type, geo_level, geo_code, industry) -> (value, accounts)` and the quarantine.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CST = dt.timezone(dt.timedelta(hours=8))  # China Standard Time: UTC+8, no daylight saving since 1991
MUNICIPALITIES = ("110000", "120000", "310000", "500000")
MUNICIPAL_PLACEHOLDERS = ("0100", "0200")  # 市辖区, 县 under a municipality
PROVINCIAL_PLACEHOLDER = "9000"  # 省直辖县级行政区划
METRICS = ("cloud", "ai")
REASONS = ("invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
           "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount")
LEVELS = ("national", "province", "city", "tier", "cluster")
TIERS_FIVE = ("tier1", "tier2", "tier3", "tier4", "tier5", "unallocated")
TIERS_SIX = ("tier1", "new_tier1", "tier2", "tier3", "tier4", "tier5", "unallocated")


class WholeInputError(Exception):
    """The run must stop (CONTRACT.md "Whole-input errors")."""


def _csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class Seeds:
    provinces: dict[str, dict]  # code -> row
    cities: dict[str, dict]  # code -> row (level city)
    region_map: dict[str, str]  # any accepted raw code -> city-level entity (city code or '<province>U')
    entity_province: dict[str, str]  # city-level entity -> province code
    industries: list[str]  # the 18 codes, seed order
    industry_spelling: dict[str, str]  # trimmed, lower-cased code / name_zh / alias -> code
    products: dict[str, str]  # product -> metric
    tiers: dict[str, str]  # city code -> CBN tier (six-tier scheme), one vintage
    clusters: dict[str, set]  # cluster code -> member city codes
    cluster_names: dict[str, str] = field(default_factory=dict)

    @property
    def city_entities(self) -> list[str]:
        return sorted(self.entity_province)

    def tier_of(self, entity: str, scheme: str = "five") -> str:
        tier = self.tiers.get(entity, "unallocated")
        if scheme == "five" and tier == "new_tier1":
            return "tier2"
        return tier

    def entities(self, level: str, scheme: str = "five") -> list[str]:
        if level == "national":
            return ["CN"]
        if level == "province":
            return sorted(self.provinces)
        if level == "city":
            return self.city_entities
        if level == "tier":
            return list(TIERS_SIX if scheme == "six" else TIERS_FIVE)
        if level == "cluster":
            return sorted(self.clusters)
        raise ValueError(level)


def load_seeds(seeds_dir: Path = SEEDS, products_path: Path | None = None, tier_vintage: str = "2020") -> Seeds:
    regions = _csv(seeds_dir / "regions.csv")
    provinces = {r["code"]: r for r in regions if r["level"] == "province"}
    cities = {r["code"]: r for r in regions if r["level"] == "city"}
    entity_province = {c: r["province_code"] for c, r in cities.items()}
    for p in provinces:
        if p not in MUNICIPALITIES:
            entity_province[p + "U"] = p

    current: dict[str, str] = {}
    for c in cities:  # a city (municipalities included) is itself
        current[c] = c
    for r in _csv(seeds_dir / "counties.csv"):  # a county rolls up to its city
        current.setdefault(r["code"], r["city_code"])
    for p in provinces:  # a municipality's code is the municipality; any other province code is unallocated
        current.setdefault(p, p if p in MUNICIPALITIES else p + "U")
    for m in MUNICIPALITIES:
        for suffix in MUNICIPAL_PLACEHOLDERS:
            current.setdefault(m[:2] + suffix, m)
    for p in provinces:
        if p not in MUNICIPALITIES:
            current.setdefault(p[:2] + PROVINCIAL_PLACEHOLDER, p + "U")
    region_map = dict(current)
    crosswalk = {r["old_code"]: r["new_code"] for r in _csv(seeds_dir / "region_crosswalk.csv")}
    for old in crosswalk:
        if old in region_map:
            continue  # a current code is never retired
        code, seen = old, set()
        while code not in current and code in crosswalk and code not in seen:
            seen.add(code)
            code = crosswalk[code]
        if code in current:
            region_map[old] = current[code]

    industries, spelling = [], {}
    for r in _csv(seeds_dir / "industries.csv"):
        industries.append(r["code"])
        for s in [r["code"], r["name_zh"], *(r.get("aliases") or "").split("|")]:
            s = s.strip().lower()
            if s:
                spelling[s] = r["code"]

    products = {r["product"].strip(): r["metric"].strip() for r in _csv(products_path or seeds_dir / "products.csv")}
    tiers = {r["city_code"]: r["tier"] for r in _csv(seeds_dir / "city_tiers.csv") if r["vintage"] == tier_vintage}
    clusters: dict[str, set] = defaultdict(set)
    cluster_names = {}
    for r in _csv(seeds_dir / "city_clusters.csv"):
        clusters[r["cluster_code"]].add(r["city_code"])
        cluster_names[r["cluster_code"]] = r["cluster_name_zh"]
    return Seeds(provinces, cities, region_map, entity_province, industries, spelling, products, tiers,
                 dict(clusters), cluster_names)


# ---------------------------------------------------------------------------------------------------- parsing
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_date(value) -> dt.date | None:
    """A calendar date in China Standard Time: a date, a timestamp (a zoned one converted to CST), or ISO text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if _ISO_DATE.match(text):
            return dt.date.fromisoformat(text)
        if _ISO_DATETIME.match(text):
            return parse_date(dt.datetime.fromisoformat(text))
    except ValueError:
        return None
    return None


def parse_amount(value) -> float | None:
    """The amount if it is a finite number >= 0, else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", text, re.I):
            return None
        number = float(text)
    if not math.isfinite(number) or number < 0:
        return None
    return number


def text(value) -> str | None:
    """A text field, trimmed; None for null or empty."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    s = str(value).strip()
    return s or None


def quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def quarters_between(first: str, last: str) -> list[str]:
    y, q = int(first[:4]), int(first[5])
    out = []
    while f"{y}Q{q}" <= last:
        out.append(f"{y}Q{q}")
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)
    return out


# ---------------------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class Good:
    quarter: str
    metric: str
    entity: str  # city-level entity
    industry: str
    account: str
    amount: float
    customer: str  # the contributor of the privacy rules: customer_id, or the account itself


def classify(row: dict, seeds: Seeds) -> tuple[str | None, Good | None]:
    """(reason, None) for a bad row, the first reason in CONTRACT.md's order; (None, Good) otherwise."""
    day = parse_date(row.get("usage_date"))
    if day is None:
        return "invalid_date", None
    account = text(row.get("account_id"))
    if account is None:
        return "missing_account", None
    region = text(row.get("region_code"))
    if region is None:
        return "missing_region", None
    entity = seeds.region_map.get(region)
    if entity is None:
        return "unknown_region", None
    industry_text = text(row.get("industry"))
    if industry_text is None:
        industry = "other"
    else:
        industry = seeds.industry_spelling.get(industry_text.lower())
        if industry is None:
            return "unknown_industry", None
    metric = text(row.get("metric"))
    product = text(row.get("product"))
    if metric is not None:
        if metric not in METRICS:
            return "invalid_metric", None
        if product is not None and product in seeds.products and seeds.products[product] != metric:
            return "metric_conflict", None
    else:
        metric = seeds.products.get(product) if product is not None else None
        if metric is None:
            return "unknown_product", None
    amount = parse_amount(row.get("amount"))
    if amount is None:
        return "invalid_amount", None
    customer = text(row.get("customer_id"))
    return None, Good(quarter_of(day), metric, entity, industry, account, amount,
                      f"customer:{customer}" if customer is not None else f"account:{account}")


def unique_deliveries(paths: list[Path]) -> list[Path]:
    """Byte-identical files are one delivery: keep the first of each content hash."""
    seen, out = set(), []
    for p in paths:
        digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------------- method
@dataclass
class Result:
    cells: dict  # (metric, period, period_type, geo_level, geo_code, industry) -> (value, accounts)
    sensitive: dict  # same key -> whether the primary rules (k = 5 customers, p = 10%) hold (None: no usage)
    quarantine: list  # (source_file, source_row, reason)
    rows_in: int
    rows_used: int
    quarters: list
    years: list
    base: str
    metrics: list


def geo_cells(seeds: Seeds, entity: str, scheme: str) -> list[tuple[str, str]]:
    """Every (geo_level, geo_code) a city-level entity's usage counts towards."""
    out = [("national", "CN"), ("province", seeds.entity_province[entity]), ("city", entity),
           ("tier", seeds.tier_of(entity, scheme))]
    out += [("cluster", c) for c, members in seeds.clusters.items() if entity in members]
    return out


def _sensitive(amounts: dict | None, k: int = 5, p: float = 10.0) -> bool | None:
    """Fewer than k customers with usage, or total - the two largest < p% of the largest; None without usage."""
    total = sum(amounts.values()) if amounts else 0.0
    if total <= 0:
        return None
    ranked = sorted((v for v in amounts.values() if v > 0), reverse=True) + [0.0]
    return len(ranked) - 1 < k or total - ranked[0] - ranked[1] < p / 100 * ranked[0]


def compute(rows: list[dict], seeds: Seeds, base: str | None = None, tier_scheme: str = "five") -> Result:
    quarantine, good = [], []
    for row in rows:
        reason, g = classify(row, seeds)
        if reason:
            quarantine.append((row.get("source_file"), row.get("source_row"), reason))
        else:
            good.append(g)
    # The quarters: contiguous from the earliest to the latest quarter with a valid date (bad rows included).
    dated = {quarter_of(d) for d in (parse_date(r.get("usage_date")) for r in rows) if d is not None}
    if not dated:
        raise WholeInputError("no rows with a valid usage_date")
    quarters = quarters_between(min(dated), max(dated))
    for q in quarters:
        if q not in dated:
            raise WholeInputError(f"no rows in quarter {q}")
    base = base or quarters[0]
    if base not in dated:
        raise WholeInputError(f"no rows in the base quarter {base}")
    years = [str(y) for y in sorted({int(q[:4]) for q in quarters})
             if all(f"{y}Q{i}" in quarters for i in range(1, 5))]

    sums = defaultdict(float)  # (metric, period, level, code, industry) -> raw
    by_account = defaultdict(lambda: defaultdict(float))  # same key -> account -> raw
    by_customer = defaultdict(lambda: defaultdict(float))  # same key -> customer -> raw
    geo_memo: dict[str, list] = {}
    for g in good:
        geos = geo_memo.get(g.entity) or geo_memo.setdefault(g.entity, geo_cells(seeds, g.entity, tier_scheme))
        periods = [g.quarter] + ([g.quarter[:4]] if g.quarter[:4] in years else [])
        for period in periods:
            for level, code in geos:
                for industry in (g.industry, "all"):
                    key = (g.metric, period, level, code, industry)
                    if period == g.quarter:
                        sums[key] += g.amount
                    by_account[key][g.account] += g.amount
                    by_customer[key][g.customer] += g.amount

    metrics = [m for m in METRICS if any(g.metric == m for g in good)]
    base_total = {m: sums.get((m, base, "national", "CN", "all"), 0.0) for m in metrics}
    for m, total in base_total.items():
        if total <= 0:
            raise WholeInputError(f"metric {m}: base total is 0")

    cells, sensitive = {}, {}
    industries = ["all", *seeds.industries]
    for m in metrics:
        for level in LEVELS:
            for code in seeds.entities(level, tier_scheme):
                for ind in industries:
                    for q in quarters:
                        key = (m, q, level, code, ind)
                        accts = sum(1 for v in by_account.get(key, {}).values() if v > 0)
                        cells[(m, q, "quarter", level, code, ind)] = (100.0 * sums.get(key, 0.0) / base_total[m], accts)
                        sensitive[(m, q, "quarter", level, code, ind)] = _sensitive(by_customer.get(key))
                    for y in years:
                        value = sum(cells[(m, f"{y}Q{i}", "quarter", level, code, ind)][0] for i in range(1, 5))
                        accts = sum(1 for v in by_account.get((m, y, level, code, ind), {}).values() if v > 0)
                        cells[(m, y, "year", level, code, ind)] = (value, accts)
                        sensitive[(m, y, "year", level, code, ind)] = _sensitive(
                            by_customer.get((m, y, level, code, ind)))
    return Result(cells, sensitive, quarantine, len(rows), len(good), quarters, years, base, metrics)
