"""The release contract: checks a published release directory against CONTRACT.md.

Written from the interface description in CONTRACT.md (sections "Reference data", "Raw input" / Quarantine,
"Published release" and "Privacy" as far as the published files show it), not from the pipeline's code, so that
it can catch the pipeline disagreeing with its contract. It needs only polars and the standard library.

    check_release(release_dir, seeds_dir, require_report=True) -> list[str]

returns one human-readable line per problem; an empty list means the release meets the contract. It checks shape
and arithmetic that any correct release must satisfy (columns, types, keys, labels, base = 100, a complete grid of
entities x industries x periods, levels adding up to national, industries to `all`, clusters to their members,
years to their quarters, suppression rules, quarantine reasons, manifest keys and row counts). It cannot tell
whether the numbers are the right ones for the input: the project's other tests do that.

Command line:  python tests/release_contract.py RELEASE_DIR [SEEDS_DIR]
prints the problems and exits 1, or prints one summary line and exits 0. SEEDS_DIR defaults to the repo's seeds/.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import polars as pl

# --- The contract's vocabulary -------------------------------------------------------------------------------------

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
INDEX_COLUMNS = ["metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "geo_name_en", "industry",
                 "value", "accounts", "status", "base_period"]
OPTIONAL_INDEX_COLUMNS = ["geo_name_short"]  # in CONTRACT.md's table, not required yet
DERIVED_COLUMNS = ["metric", "period", "period_type", "geo_level", "geo_code", "geo_name", "industry", "measure",
                   "comparison", "reference_period", "value", "status"]

METRICS = {"cloud", "ai"}
PERIOD_TYPES = {"quarter": r"\d{4}Q[1-4]", "year": r"\d{4}"}
GEO_LEVELS = {"national", "province", "city", "tier", "cluster"}
INDEX_STATUSES = {"ok", "suppressed"}
DERIVED_STATUSES = {"ok", "new", "suppressed"}
MEASURES = {"growth", "rank", "rank_change", "growth_rank", "share_of_national", "top3_share", "top5_share",
            "top10_share", "industry_multiple", "share_within_geo", "cluster_mean",
            # the analytics issue's measures
            "contribution_geo", "contribution_industry", "per_million_residents", "usage_ratio",
            "hhi", "gini", "theil", "theil_between", "theil_within"}
COMPARISONS = {"qoq", "yoy", "since_base", "vs_prev_year"}
GROUPING_COMPARISONS = {"by_province", "by_tier"}  # only for theil_between / theil_within
GROUPED_MEASURES = {"theil_between", "theil_within"}

QUARANTINE_REASONS = {"invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
                      "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount"}
RAW_COLUMNS = ["usage_date", "account_id", "region_code", "industry", "product", "metric", "amount", "customer_id"]
MANIFEST_KEYS = ["schema_version", "code_version", "inputs", "seed_vintages", "settings", "row_counts", "created_at"]
QUALITY_STAGE_KEYS = ["checks_run", "passed", "failed"]

MUNICIPALITIES = {"110000", "120000", "310000", "500000"}
NATIONAL = "CN"
ALL = "all"
UNALLOCATED_TIER = "unallocated"
SIX_TIER_ONLY = "new_tier1"  # folded into tier2 in the default five-tier publication
BASE_VALUE = 100.0
TOLERANCE = 1e-9  # relative, with an absolute floor of 1.0 * TOLERANCE
EXAMPLES = 3  # how many offending items a problem line quotes


# --- Small helpers -------------------------------------------------------------------------------------------------

def _examples(items) -> str:
    """The first few of items, for a problem line."""
    items = sorted(items, key=str)
    shown = ", ".join(str(i) for i in items[:EXAMPLES])
    return shown + (", ..." if len(items) > EXAMPLES else "")


def _rows(frame: pl.DataFrame, columns: list[str]) -> str:
    """The first few rows of frame (as tuples of columns), for a problem line."""
    shown = ", ".join(str(r) for r in frame.select(columns).head(EXAMPLES).rows())
    return shown + (", ..." if frame.height > EXAMPLES else "")


def _close(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return (a - b).abs() <= TOLERANCE * pl.max_horizontal(pl.lit(1.0), b.abs())


def _unexpected(frame: pl.DataFrame, column: str, allowed: set, file: str) -> list[str]:
    found = set(frame[column].unique().to_list()) - allowed
    return [f"{file}: unexpected {column} values {_examples(found)}"] if found else []


def _read_parquet(path: Path, problems: list[str]) -> pl.DataFrame | None:
    if not path.is_file():
        problems.append(f"{path.name} is missing")
        return None
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one problem line
        problems.append(f"{path.name} is not readable Parquet: {exc}")
        return None


def _read_json_object(path: Path, problems: list[str]) -> dict | None:
    if not path.is_file():
        problems.append(f"{path.name} is missing")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name} is not readable JSON: {exc}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return data


def _labels_ok(frame: pl.DataFrame, file: str) -> list[str]:
    """metric, period / period_type and geo_level labels as CONTRACT.md spells them."""
    problems = _unexpected(frame, "metric", METRICS, file)
    problems += _unexpected(frame, "period_type", set(PERIOD_TYPES), file)
    problems += _unexpected(frame, "geo_level", GEO_LEVELS, file)
    for period_type, pattern in PERIOD_TYPES.items():
        periods = frame.filter(pl.col("period_type") == period_type)["period"].unique()
        bad = [p for p in periods.to_list() if p is None or not re.fullmatch(pattern, p)]
        if bad:
            problems.append(f"{file}: {period_type} periods not labelled like "
                            f"{'2020Q1' if period_type == 'quarter' else '2020'}: {_examples(bad)}")
    return problems


# --- Reference data ------------------------------------------------------------------------------------------------

class Reference:
    """What the seeds say must be published: the entities of each level and the industry codes."""

    def __init__(self, seeds_dir: Path):
        regions = pl.read_csv(seeds_dir / "regions.csv", infer_schema=False)
        clusters = pl.read_csv(seeds_dir / "city_clusters.csv", infer_schema=False)
        tiers = pl.read_csv(seeds_dir / "city_tiers.csv", infer_schema=False)
        industries = pl.read_csv(seeds_dir / "industries.csv", infer_schema=False)

        self.regions = regions
        provinces = regions.filter(pl.col("level") == "province")["code"].to_list()
        self.provinces = set(provinces)
        self.city_province = dict(regions.filter(pl.col("level") == "city").select("code", "province_code").rows())
        for province in self.provinces - MUNICIPALITIES:
            self.city_province[f"{province}U"] = province
        self.cities = set(self.city_province)
        self.cluster_members = clusters.select("cluster_code", pl.col("city_code").alias("geo_code")).unique()
        self.clusters = set(clusters["cluster_code"].to_list())
        seed_tiers = set(tiers["tier"].to_list())
        self.tiers_required = (seed_tiers - {SIX_TIER_ONLY}) | {UNALLOCATED_TIER}
        self.tiers_allowed = seed_tiers | {UNALLOCATED_TIER}
        self.industries = set(industries["code"].to_list()) | {ALL}

    def required_entities(self) -> dict[str, set[str]]:
        return {"national": {NATIONAL}, "province": self.provinces, "city": self.cities,
                "tier": self.tiers_required, "cluster": self.clusters}

    def allowed_entities(self) -> dict[str, set[str]]:
        return {**self.required_entities(), "tier": self.tiers_allowed}


# --- indices.parquet -----------------------------------------------------------------------------------------------

def _index_schema(d: pl.DataFrame) -> list[str]:
    problems = []
    missing = [c for c in INDEX_COLUMNS if c not in d.columns]
    extra = [c for c in d.columns if c not in INDEX_COLUMNS + OPTIONAL_INDEX_COLUMNS]
    if missing:
        problems.append(f"indices.parquet lacks columns {missing}")
    if extra:
        problems.append(f"indices.parquet has columns the contract does not list: {extra}")
    if "value" in d.columns and d.schema["value"] != pl.Float64:
        problems.append(f"indices.parquet: value is {d.schema['value']}, not Float64")
    if "accounts" in d.columns and not d.schema["accounts"].is_integer():
        problems.append(f"indices.parquet: accounts is {d.schema['accounts']}, not an integer type")
    return problems


def _index_keys(d: pl.DataFrame) -> list[str]:
    dup = d.group_by(KEY).len().filter(pl.col("len") > 1)
    return [f"indices.parquet: {dup.height} key(s) occur more than once, e.g. {_rows(dup, KEY)}"] if dup.height else []


def _index_status(d: pl.DataFrame) -> list[str]:
    """Suppressed cells hide value and accounts; ok cells show both; national x all is never suppressed."""
    problems = _unexpected(d, "status", INDEX_STATUSES, "indices.parquet")
    rules = {
        "suppressed cells carry a value or accounts":
            (pl.col("status") == "suppressed") & (pl.col("value").is_not_null() | pl.col("accounts").is_not_null()),
        "ok cells lack a value or accounts":
            (pl.col("status") == "ok") & (pl.col("value").is_null() | pl.col("accounts").is_null()),
        "national x all cells are not ok (they are never suppressed)":
            (pl.col("geo_level") == "national") & (pl.col("industry") == ALL) & (pl.col("status") != "ok"),
        "accounts are negative": pl.col("accounts") < 0,
        "values are negative": pl.col("value") < -TOLERANCE,
        "ok cells have accounts 0 with a non-zero value, or accounts with a zero value":
            (pl.col("status") == "ok") & ((pl.col("accounts") == 0) != (pl.col("value") == 0)),
    }
    for text, rule in rules.items():
        bad = d.filter(rule.fill_null(False))
        if bad.height:
            problems.append(f"indices.parquet: {bad.height} {text}, e.g. {_rows(bad, KEY)}")
    return problems


def _index_base(d: pl.DataFrame) -> list[str]:
    """One base quarter, published, where every metric's national x all index is 100."""
    bases = d["base_period"].unique().to_list()
    if len(bases) != 1 or bases[0] is None:
        return [f"indices.parquet: base_period should be one quarter, found {_examples(bases)}"]
    base = bases[0]
    if not re.fullmatch(PERIOD_TYPES["quarter"], base):
        return [f"indices.parquet: base_period {base!r} is not a quarter label"]
    problems = []
    national = d.filter((pl.col("geo_level") == "national") & (pl.col("geo_code") == NATIONAL)
                        & (pl.col("industry") == ALL) & (pl.col("period_type") == "quarter")
                        & (pl.col("period") == base))
    for metric in sorted(set(d["metric"].drop_nulls().to_list())):
        values = national.filter(pl.col("metric") == metric)["value"].to_list()
        if len(values) != 1 or values[0] is None or abs(values[0] - BASE_VALUE) > TOLERANCE:
            problems.append(f"indices.parquet: {metric} national x all in base quarter {base} is {values}, not 100")
    return problems


def _index_entities(d: pl.DataFrame, ref: Reference) -> list[str]:
    """Every entity of every level the seeds define is published, and nothing else."""
    problems = []
    required, allowed = ref.required_entities(), ref.allowed_entities()
    for level in sorted(GEO_LEVELS):
        present = set(d.filter(pl.col("geo_level") == level)["geo_code"].to_list())
        missing, extra = required[level] - present, present - allowed[level]
        if missing:
            problems.append(f"indices.parquet: {len(missing)} {level} entities missing: {_examples(missing)}")
        if extra:
            problems.append(f"indices.parquet: {len(extra)} {level} codes not in the seeds: {_examples(extra)}")
    problems += _unexpected(d, "industry", ref.industries, "indices.parquet")
    return problems


def _index_names(d: pl.DataFrame, ref: Reference) -> list[str]:
    """Every cell is named; provinces and cities carry the names of regions.csv."""
    problems = []
    unnamed = d.filter(pl.col("geo_name").is_null() | pl.col("geo_name_en").is_null())
    if unnamed.height:
        problems.append(f"indices.parquet: {unnamed.height} cells without geo_name or geo_name_en, "
                        f"e.g. {_rows(unnamed, KEY)}")
    seeds = ref.regions.select(pl.col("level").alias("geo_level"), pl.col("code").alias("geo_code"),
                               "name_zh", "name_en")
    wrong = (d.select("geo_level", "geo_code", "geo_name", "geo_name_en").unique()
             .join(seeds, on=["geo_level", "geo_code"])
             .filter((pl.col("geo_name") != pl.col("name_zh")) | (pl.col("geo_name_en") != pl.col("name_en"))))
    if wrong.height:
        problems.append(f"indices.parquet: {wrong.height} province/city names differ from regions.csv, "
                        f"e.g. {_rows(wrong, ['geo_code', 'geo_name', 'name_zh'])}")
    return problems


def _index_periods(d: pl.DataFrame) -> list[str]:
    """Quarters are contiguous; a year is published exactly when its four quarters are."""
    quarters = sorted(set(d.filter(pl.col("period_type") == "quarter")["period"].drop_nulls().to_list()))
    years = set(d.filter(pl.col("period_type") == "year")["period"].drop_nulls().to_list())
    valid = [q for q in quarters if re.fullmatch(PERIOD_TYPES["quarter"], q)]
    if not valid:
        return ["indices.parquet: no quarters published"]
    ordinal = [int(q[:4]) * 4 + int(q[5]) - 1 for q in valid]
    expected = [f"{o // 4}Q{o % 4 + 1}" for o in range(min(ordinal), max(ordinal) + 1)]
    problems = []
    gaps = set(expected) - set(valid)
    if gaps:
        problems.append(f"indices.parquet: quarters are not contiguous, missing {_examples(gaps)}")
    complete = {y for y in {q[:4] for q in valid} if all(f"{y}Q{i}" in valid for i in range(1, 5))}
    if years - complete:
        problems.append(f"indices.parquet: years published without all four quarters: {_examples(years - complete)}")
    if complete - years:
        problems.append(f"indices.parquet: complete years not published: {_examples(complete - years)}")
    return problems


def _index_grid(d: pl.DataFrame, ref: Reference) -> list[str]:
    """Every entity x industry x period x metric is present (zero cells are published, not left out)."""
    entities = pl.DataFrame([(level, code) for level, codes in ref.required_entities().items() for code in codes]
                            + [("tier", t) for t in set(d.filter(pl.col("geo_level") == "tier")["geo_code"].to_list())
                               & ref.tiers_allowed - ref.tiers_required],
                            schema=["geo_level", "geo_code"], orient="row")
    grid = (d.select("metric").unique()
            .join(d.select("period", "period_type").unique(), how="cross")
            .join(pl.DataFrame({"industry": sorted(ref.industries)}), how="cross")
            .join(entities, how="cross"))
    missing = grid.join(d.select(KEY), on=KEY, how="anti")
    if missing.height:
        return [(f"indices.parquet: the grid of metric x period x entity x industry lacks {missing.height} of "
                 f"{grid.height} cells, e.g. {_rows(missing, KEY)}")]
    return []


def _additivity(parts: pl.DataFrame, totals: pl.DataFrame, on: list[str], what: str) -> list[str]:
    """Where every part and the total are ok, the parts add up to the total."""
    summed = parts.group_by(on).agg(pl.col("value").sum().alias("parts"),
                                    (pl.col("status") == "ok").fill_null(False).all().alias("parts_ok"))
    checked = (totals.select(*on, pl.col("value").alias("total"), (pl.col("status") == "ok").alias("total_ok"))
               .join(summed, on=on)
               .filter(pl.col("parts_ok") & pl.col("total_ok").fill_null(False)))
    bad = checked.filter(~_close(pl.col("parts"), pl.col("total")))
    if bad.height:
        return [(f"indices.parquet: {what} in {bad.height} of {checked.height} fully published cells, "
                 f"e.g. {_rows(bad, on + ['parts', 'total'])}")]
    return []


def _index_sums(d: pl.DataFrame, ref: Reference) -> list[str]:
    """The published equations: levels -> national, cities -> province, industries -> all, clusters, years."""
    cols = KEY + ["value", "status"]
    cell = ["metric", "period", "period_type", "industry"]
    level = {name: d.filter(pl.col("geo_level") == name).select(cols) for name in GEO_LEVELS}
    problems = []
    for name in ("province", "city", "tier"):
        problems += _additivity(level[name], level["national"], cell, f"the {name} level does not add up to national")

    city_province = pl.DataFrame(list(ref.city_province.items()), schema=["geo_code", "province"], orient="row")
    cities = level["city"].join(city_province, on="geo_code").drop("geo_code").rename({"province": "geo_code"})
    problems += _additivity(cities, level["province"], cell + ["geo_code"],
                            "cities (with <province>U) do not add up to their province")

    members = level["city"].join(ref.cluster_members, on="geo_code").drop("geo_code")
    problems += _additivity(members.rename({"cluster_code": "geo_code"}), level["cluster"], cell + ["geo_code"],
                            "clusters differ from the sum of their member cities")

    entity = ["metric", "period", "period_type", "geo_level", "geo_code"]
    problems += _additivity(d.filter(pl.col("industry") != ALL).select(cols), d.filter(pl.col("industry") == ALL),
                            entity, "industries do not add up to all")

    quarters = (d.filter(pl.col("period_type") == "quarter").select(cols)
                .with_columns(pl.col("period").str.slice(0, 4), pl.lit("year").alias("period_type")))
    problems += _additivity(quarters, d.filter(pl.col("period_type") == "year"), KEY,
                            "years differ from the sum of their quarters")
    return problems


def check_indices(d: pl.DataFrame, ref: Reference) -> list[str]:
    problems = _index_schema(d)
    if any(c not in d.columns for c in INDEX_COLUMNS):
        return problems  # the remaining checks need every column
    problems += _index_keys(d) + _labels_ok(d, "indices.parquet") + _index_status(d) + _index_base(d)
    problems += _index_entities(d, ref) + _index_names(d, ref) + _index_periods(d) + _index_grid(d, ref)
    problems += _index_sums(d, ref)
    return problems


# --- derived.parquet -----------------------------------------------------------------------------------------------

def _derived_vocabulary(x: pl.DataFrame) -> list[str]:
    problems = _unexpected(x, "status", DERIVED_STATUSES, "derived.parquet")
    problems += _unexpected(x, "measure", MEASURES, "derived.parquet")
    plain = x.filter(~pl.col("measure").is_in(GROUPED_MEASURES))
    grouped = x.filter(pl.col("measure").is_in(GROUPED_MEASURES))
    problems += _unexpected(plain.drop_nulls("comparison"), "comparison", COMPARISONS, "derived.parquet")
    problems += _unexpected(grouped, "comparison", GROUPING_COMPARISONS, "derived.parquet (theil_between/within)")
    bad_ref = [p for p in x["reference_period"].drop_nulls().unique().to_list()
               if not any(re.fullmatch(pattern, p) for pattern in PERIOD_TYPES.values())]
    if bad_ref:
        problems.append(f"derived.parquet: reference_period labels not like 2020Q1 / 2020: {_examples(bad_ref)}")
    return problems


def _derived_values(x: pl.DataFrame) -> list[str]:
    problems = []
    key = KEY + ["measure", "comparison", "reference_period"]
    dup = x.group_by(key).len().filter(pl.col("len") > 1)
    if dup.height:
        problems.append(f"derived.parquet: {dup.height} rows repeat a key, e.g. {_rows(dup, key)}")
    for status, rule, text in (("ok", pl.col("value").is_null(), "ok rows without a value"),
                               ("suppressed", pl.col("value").is_not_null(), "suppressed rows with a value")):
        bad = x.filter((pl.col("status") == status) & rule)
        if bad.height:
            problems.append(f"derived.parquet: {bad.height} {text}, e.g. {_rows(bad, key)}")
    return problems


def _derived_disclosure(x: pl.DataFrame, d: pl.DataFrame) -> list[str]:
    """A measure whose own cell, or whose reference cell, is suppressed in indices.parquet is itself suppressed."""
    suppressed = d.filter(pl.col("status") == "suppressed")
    own_cell = suppressed.select(KEY).with_columns(pl.lit(True).alias("own_suppressed"))
    reference_key = ["metric", "reference_period", "geo_level", "geo_code", "industry"]
    reference_cell = (suppressed.rename({"period": "reference_period"}).select(reference_key).unique()
                      .with_columns(pl.lit(True).alias("reference_suppressed")))
    bad = (x.join(own_cell, on=KEY, how="left")
           .join(reference_cell, on=reference_key, how="left")
           .filter((pl.col("own_suppressed") | pl.col("reference_suppressed")).fill_null(False)
                   & (pl.col("status") != "suppressed")))
    if bad.height:
        return [(f"derived.parquet: {bad.height} measures published from a suppressed cell, "
                 f"e.g. {_rows(bad, KEY + ['measure', 'comparison'])}")]
    return []


def check_derived(x: pl.DataFrame, indices: pl.DataFrame | None) -> list[str]:
    missing = [c for c in DERIVED_COLUMNS if c not in x.columns]
    extra = [c for c in x.columns if c not in DERIVED_COLUMNS]
    if missing or extra:
        return [f"derived.parquet: columns should be {DERIVED_COLUMNS}; missing {missing}, extra {extra}"]
    problems = _labels_ok(x, "derived.parquet") + _derived_vocabulary(x) + _derived_values(x) + _derived_identities(x)
    if indices is not None and all(c in indices.columns for c in KEY + ["status"]):
        problems += _derived_disclosure(x, indices)
    return problems


def _derived_identities(x: pl.DataFrame) -> list[str]:
    """Concentration rows sit on CN of the level they run across; theil_between + theil_within = theil."""
    problems = []
    conc = x.filter(pl.col("measure").is_in(["hhi", "gini", "theil", "theil_between", "theil_within"]))
    misplaced = conc.filter((pl.col("geo_code") != NATIONAL) | ~pl.col("geo_level").is_in(["province", "city"]))
    if misplaced.height:
        problems.append(f"derived.parquet: {misplaced.height} concentration rows not on CN of province or city, "
                        f"e.g. {_rows(misplaced, KEY + ['measure'])}")
    keys = ["metric", "period", "period_type", "geo_level", "industry"]
    theil = conc.filter((pl.col("measure") == "theil") & (pl.col("status") == "ok")).select(
        *keys, pl.col("value").alias("theil"))
    parts = (conc.filter(pl.col("measure").is_in(list(GROUPED_MEASURES)) & (pl.col("status") == "ok"))
             .group_by(*keys, "comparison").agg(pl.col("value").sum().alias("parts"), pl.len().alias("n"))
             .filter(pl.col("n") == 2).join(theil, on=keys).filter(~_close(pl.col("parts"), pl.col("theil"))))
    if parts.height:
        problems.append(f"derived.parquet: theil_between + theil_within != theil in {parts.height} groups, "
                        f"e.g. {_rows(parts, keys + ['comparison'])}")
    return problems


# --- shift_share.parquet -------------------------------------------------------------------------------------------

SHIFT_SHARE_COLUMNS = ["metric", "period", "period_type", "reference_period", "geo_level", "geo_code", "geo_name",
                       "change", "national_effect", "industry_mix_effect", "competitive_effect", "status"]
EFFECTS = ["change", "national_effect", "industry_mix_effect", "competitive_effect"]


def check_shift_share(s: pl.DataFrame, indices: pl.DataFrame | None) -> list[str]:
    """Columns and types; province and city rows; the reference a year earlier; ok rows with values that add up
    (national + mix + competitive = change, and change = the published change of the entity's cell); suppressed
    rows empty, and every entity whose cell is suppressed in either period suppressed."""
    missing = [c for c in SHIFT_SHARE_COLUMNS if c not in s.columns]
    if missing:
        return [f"shift_share.parquet: missing columns {missing}"]
    problems = _unexpected(s, "status", DERIVED_STATUSES, "shift_share.parquet")
    problems += _unexpected(s, "geo_level", {"province", "city"}, "shift_share.parquet")
    not_float = [c for c in EFFECTS if s.schema[c] != pl.Float64]
    if not_float:
        problems.append(f"shift_share.parquet: {not_float} are not float64")
    key = ["metric", "period", "period_type", "geo_level", "geo_code"]
    dup = s.group_by(key).len().filter(pl.col("len") > 1)
    if dup.height:
        problems.append(f"shift_share.parquet: {dup.height} rows repeat a key, e.g. {_rows(dup, key)}")
    earlier = pl.when(pl.col("period_type") == "quarter").then(
        (pl.col("period").str.slice(0, 4).cast(pl.Int64) - 1).cast(pl.String) + pl.col("period").str.slice(4)
    ).otherwise((pl.col("period").cast(pl.Int64, strict=False) - 1).cast(pl.String))
    wrong_ref = s.filter(pl.col("reference_period") != earlier)
    if wrong_ref.height:
        problems.append(f"shift_share.parquet: {wrong_ref.height} reference periods not a year earlier, "
                        f"e.g. {_rows(wrong_ref, key + ['reference_period'])}")
    ok = s.filter(pl.col("status") == "ok")
    empty = ok.filter(pl.any_horizontal([pl.col(c).is_null() for c in EFFECTS]))
    full = s.filter((pl.col("status") != "ok") & pl.any_horizontal([pl.col(c).is_not_null() for c in EFFECTS]))
    for frame, text in ((empty, "ok rows without a value"), (full, "rows not ok with a value")):
        if frame.height:
            problems.append(f"shift_share.parquet: {frame.height} {text}, e.g. {_rows(frame, key)}")
    off = ok.filter(~_close(pl.col("national_effect") + pl.col("industry_mix_effect") + pl.col("competitive_effect"),
                            pl.col("change")))
    if off.height:
        problems.append(f"shift_share.parquet: {off.height} rows whose effects do not add up to the change, "
                        f"e.g. {_rows(off, key)}")
    if indices is not None and all(c in indices.columns for c in KEY + ["status", "value"]):
        whole = indices.filter(pl.col("industry") == ALL).select("metric", "period", "period_type", "geo_level",
                                                                 "geo_code", "value", "status")
        joined = (s.join(whole.rename({"value": "now", "status": "now_status"}), on=key, how="left")
                  .join(whole.rename({"period": "reference_period", "value": "then", "status": "then_status"}),
                        on=["metric", "reference_period", "period_type", "geo_level", "geo_code"], how="left"))
        leaked = joined.filter((pl.col("status") == "ok") & ((pl.col("now_status") != "ok")
                                                             | (pl.col("then_status") != "ok")))
        if leaked.height:
            problems.append(f"shift_share.parquet: {leaked.height} rows published from a suppressed cell, "
                            f"e.g. {_rows(leaked, key)}")
        wrong = joined.filter((pl.col("status") == "ok") & (pl.col("now_status") == "ok")
                              & (pl.col("then_status") == "ok")
                              & ~_close(pl.col("change"), pl.col("now") - pl.col("then")))
        if wrong.height:
            problems.append(f"shift_share.parquet: {wrong.height} changes differ from the indices' change, "
                            f"e.g. {_rows(wrong, key)}")
    return problems


# --- quarantine.parquet --------------------------------------------------------------------------------------------

def check_quarantine(q: pl.DataFrame) -> list[str]:
    missing = [c for c in ("source_file", "source_row", "reason") if c not in q.columns]
    if missing:
        return [f"quarantine.parquet lacks columns {missing}"]
    problems = []
    reasons = set(q["reason"].unique().to_list()) - QUARANTINE_REASONS
    if reasons:
        problems.append(f"quarantine.parquet: reasons not in CONTRACT.md: {_examples(reasons)}")
    unlocated = q.filter(pl.col("source_file").is_null() | pl.col("source_row").is_null()).height
    if unlocated:
        problems.append(f"quarantine.parquet: {unlocated} rows without source_file or source_row")
    not_text = [c for c in RAW_COLUMNS if c in q.columns and q.schema[c] != pl.String]
    if not_text:
        problems.append(f"quarantine.parquet: raw values not kept as read (text) in {not_text}")
    return problems


def _leaked_accounts(q: pl.DataFrame, release: Path, files: list[str]) -> list[str]:
    """No account id of the (operator-only) quarantine shows in a published text file.

    Only ids that cannot be mistaken for ordinary text are looked for: at least 5 characters, not all digits
    (region codes are digits), matched as whole tokens.
    """
    if "account_id" not in q.columns:
        return []
    ids = [i for i in q["account_id"].drop_nulls().unique().to_list()
           if len(i) >= 5 and not i.isdigit()]
    problems = []
    for name in files:
        path = release / name
        if not ids or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = [i for i in ids if re.search(rf"(?<![\w-]){re.escape(i)}(?![\w-])", text)]
        if found:
            problems.append(f"{name} shows account ids: {_examples(found)}")
    return problems


# --- manifest.json, quality.json, revisions.parquet, report --------------------------------------------------------

def check_manifest(m: dict) -> list[str]:
    missing = [k for k in MANIFEST_KEYS if k not in m]
    if missing:
        return [f"manifest.json lacks keys {missing}"]
    problems = []
    counts = m["row_counts"]
    names = ("rows_in", "rows_used", "rows_quarantined")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(n), int) for n in names):
        problems.append(f"manifest.json: row_counts should hold integers {list(names)}")
    elif counts["rows_in"] != counts["rows_used"] + counts["rows_quarantined"]:
        problems.append(f"manifest.json: rows_in {counts['rows_in']} != rows_used {counts['rows_used']} + "
                        f"rows_quarantined {counts['rows_quarantined']}")
    inputs = m["inputs"]
    if not isinstance(inputs, list) or not all(isinstance(i, dict) and re.fullmatch(r"[0-9a-f]{64}",
                                                                                     str(i.get("sha256")))
                                               for i in inputs):
        problems.append("manifest.json: inputs should be a list of files, each with its sha256")
    if not isinstance(m["settings"], dict):
        problems.append("manifest.json: settings is not an object")
    try:
        dt.datetime.fromisoformat(str(m["created_at"]))
    except ValueError:
        problems.append(f"manifest.json: created_at {m['created_at']!r} is not an ISO time")
    return problems


def check_quality(quality: dict) -> list[str]:
    """Per stage: checks run, passed, failed."""
    bad = [stage for stage, entry in quality.items()
           if not isinstance(entry, dict) or any(k not in entry for k in QUALITY_STAGE_KEYS)]
    return [f"quality.json: stages without {QUALITY_STAGE_KEYS}: {_examples(bad)}"] if bad else []


# --- The whole release ---------------------------------------------------------------------------------------------

def check_release(release_dir: str | Path, seeds_dir: str | Path, require_report: bool = True) -> list[str]:
    """One line per way the release in release_dir breaks CONTRACT.md; [] if it meets it."""
    release, seeds = Path(release_dir), Path(seeds_dir)
    if not release.is_dir():
        return [f"{release} is not a directory"]
    try:
        ref = Reference(seeds)
    except Exception as exc:  # noqa: BLE001 - a broken seeds dir is reported, not raised
        return [f"cannot read the reference data in {seeds}: {exc}"]
    problems: list[str] = []

    indices = _read_parquet(release / "indices.parquet", problems)
    if indices is not None:
        problems += check_indices(indices, ref)
    derived = _read_parquet(release / "derived.parquet", problems)
    if derived is not None:
        problems += check_derived(derived, indices)
    shift_share = _read_parquet(release / "shift_share.parquet", problems)
    if shift_share is not None:
        problems += check_shift_share(shift_share, indices)
    quarantine = _read_parquet(release / "quarantine.parquet", problems)
    if quarantine is not None:
        problems += check_quarantine(quarantine)
    _read_parquet(release / "revisions.parquet", problems)
    quality = _read_json_object(release / "quality.json", problems)
    if quality is not None:
        problems += check_quality(quality)
    manifest = _read_json_object(release / "manifest.json", problems)
    if manifest is not None:
        problems += check_manifest(manifest)
    if require_report and not (release / "report" / "index.html").is_file():
        problems.append("report/index.html is missing")
    if quarantine is not None:
        problems += _leaked_accounts(quarantine, release, ["report/index.html", "quality.json", "manifest.json"])
    return problems


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    release = Path(argv[0])
    seeds = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "seeds"
    problems = check_release(release, seeds)
    for line in problems:
        print(line)
    if problems:
        return 1
    rows = pl.scan_parquet(release / "indices.parquet").select(pl.len()).collect().item()
    print(f"{release}: meets CONTRACT.md ({rows} index rows checked against {seeds})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
