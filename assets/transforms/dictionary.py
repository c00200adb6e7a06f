"""The data dictionary: what each column of each stored and published table holds, with its unit.

One description per column name, and per table where a name means something else there. Dagster shows them in each
asset's column schema (`assets.support.io`); a test requires a description for every column of every table.
"""
from __future__ import annotations

from collections.abc import Iterable

COLUMNS = {
    # keys of the index tables
    "metric": "cloud (用云量, all cloud products) or ai (赋智量, AI products)",
    "period": "2020Q1 for a quarter, 2020 for a complete year",
    "period_type": "quarter, or year (a year's value is the sum of its four quarters)",
    "geo_level": "national, province, city, tier or cluster",
    "geo_code": "CN; a province or city code (GB/T 2260); <province code>U for a province's usage no city holds; a "
                "tier code or unallocated; a cluster code. A municipality (110000, 120000, 310000, 500000) is both a "
                "province and a city with the same code: filter on geo_level too",
    "geo_name": "Chinese name of the entity, from seeds/",
    "geo_name_en": "English name of the entity, from seeds/",
    "geo_name_short": "short Chinese name (上海 for 上海市, 宁夏 for 宁夏回族自治区), for filtering and labels",
    "industry": "all, or an industry code of seeds/industries.csv",
    "value": "index points: 100 x consumption / consumption of the base quarter, national, all industries (per "
             "metric); null when suppressed",
    "accounts": "exact number of distinct accounts with consumption > 0 behind the cell (never a sum of lower "
                "levels); null when suppressed",
    "status": "whether the cell is published",
    "base_period": "the base quarter: its national, all-industry value is 100",
    "amount": "consumption in yuan (internal: never published)",
    "contributors": "customers with usage behind the cell (an account without customer_id is its own; internal, "
                    "for privacy)",
    "top_contributor_amount": "consumption in yuan of the cell's largest customer (internal, for privacy)",
    "second_contributor_amount": "consumption in yuan of the cell's second largest customer (internal, for privacy)",
    # raw rows and their quarantine
    "quarter": "quarter of usage_date, 2020Q1 (null when the date is invalid)",
    "source_file": "raw file the row came from, relative to the delivered path",
    "source_row": "row number in its file (1 = the first data row)",
    "reason": "why the row was rejected: the first rule it breaks (CONTRACT.md order)",
    "usage_date": "usage_date as read (text)",
    "account_id": "account id as read (operator-only: never published)",
    "region_code": "region_code as read (text)",
    "product": "product as read (text)",
    # the inventory and profiles
    "path": "absolute path of the file when it was delivered",
    "sha256": "SHA-256 of the file's bytes (byte-identical files are one delivery)",
    "format": "parquet or csv",
    "bytes": "file size in bytes",
    "mtime_ns": "modification time (ns since the epoch) when inventoried",
    "rows": "raw rows",
    "undated_rows": "rows whose usage_date is not a valid date",
    "quarters": "quarters the file has rows in",
    "quarter_rows": "rows in each of those quarters",
    "profile": "per quarter: rows, nulls per column, date and amount ranges, amount sum",
    "min_date": "earliest usage_date", "max_date": "latest usage_date",
    "min_amount": "smallest amount (yuan)", "max_amount": "largest amount (yuan)", "sum_amount": "sum of amounts (yuan)",
    **{f"null_{c}": f"rows with no {c}" for c in ("usage_date", "account_id", "region_code", "industry", "product",
                                                  "metric", "amount", "customer_id")},
    # account-level usage, base totals
    "province_code": "province of the city-level geo_code",
    "base_amount": "national, all-industry consumption of the base quarter in yuan: the index denominator",
    # derived measures
    "measure": "growth, rank, rank_change, growth_rank, share_of_national, top3_share, top5_share, top10_share, "
               "industry_multiple, share_within_geo, cluster_mean, contribution_geo, contribution_industry, "
               "per_million_residents, usage_ratio, hhi, gini, theil, theil_between or theil_within",
    "comparison": "what a growth, contribution or rank change compares with: qoq, yoy, since_base, vs_prev_year; "
                  "for theil_between / theil_within the grouping of the cities: by_province, by_tier (null "
                  "otherwise)",
    "reference_period": "the period compared with (null where none)",
    # shift-share
    "change": "index points: value in period - value in reference_period (summed over the industries)",
    "national_effect": "index points: the change had the entity grown at the national rate, sum over industries of "
                       "reference value x national growth",
    "industry_mix_effect": "index points: what the entity's industry mix adds, sum over industries of reference "
                           "value x (the industry's national growth - national growth)",
    "competitive_effect": "index points: what the entity's own industries' growth adds beyond their national "
                          "growth, sum over industries of (change - reference value x the industry's national "
                          "growth); national + mix + competitive = change",
    # revisions
    "old_value": "published value before this revision", "new_value": "value after it",
    "old_status": "published status before", "new_status": "status after",
    "old_accounts": "published accounts before", "new_accounts": "accounts after",
    "run_id": "Dagster run that published the revision",
    "revised_at": "time of the publication (UTC, ISO 8601)",
}

BY_TABLE = {
    "account_usage": {"amount": "consumption in yuan, summed exactly per account and cell",
                      "rows": "raw rows summed into this row", "account_id": "account id (operator-only)",
                      "customer_id": "customer the account belongs to, privacy's contributor (operator-only; null: "
                                     "the account is its own customer)",
                      "geo_code": "city-level entity: a city code or <province code>U",
                      "industry": "industry code (other when the raw value was empty)",
                      "metric": "cloud or ai, from the row's metric or its product"},
    "raw_usage_profile": {"source_file": "raw file profiled", "rows": "raw rows of the quarter in that file"},
    "usage_cube": {"amount": "consumption in yuan", "accounts": "distinct accounts with consumption > 0"},
    "derived": {"value": "the measure: growth as a fraction (0.57 = +57%), shares as fractions of 1, ranks from 1, "
                         "multiples and cluster means in index points",
                "status": "ok; new (a zero denominator: growth or contribution from a zero reference, "
                          "concentration of all zeros); suppressed (from a suppressed cell)"},
    "revisions": {"reason": "why the value changed: late data (new files for the period), replaced file (a file "
                            "overwritten in place held rows of the period) or rebase (the base moved)"},
    "shift_share": {"geo_level": "province or city (cities with their <province>U rows)",
                    "reference_period": "the same quarter a year earlier, or the previous complete year",
                    "status": "ok; new (no national usage in reference_period: no growth to split); suppressed "
                              "(any input cell, of the entity or the nation, any industry, either period, is "
                              "suppressed)"},
}
BY_TABLE["shift_share"]["period"] = COLUMNS["period"]
BY_TABLE["derived_measures"] = BY_TABLE["derived"]


# The values some columns take, each with its meaning and unit.
MEASURES = {
    "growth": "index[period] / index[reference_period] - 1, a fraction (0.57 = +57%); status new where the reference "
              "is 0",
    "rank": "rank by value among the level's allocated entities (1 = largest; ties share the best rank: 1, 2, 2, 4); "
            "among published cells only",
    "rank_change": "rank in reference_period - rank in period (positive = moved up); among published cells only",
    "growth_rank": "rank by growth (comparison since_base or yoy) among the level's allocated entities with a "
                   "published growth and a reference value of at least growth_rank_min_reference index points (a "
                   "release setting, default 0.001; smaller bases take no part, no row); among published cells only",
    "share_of_national": "value / the national value of the same metric, period and industry, a fraction",
    "top3_share": "sum of the 3 largest allocated entities of the level / national, a fraction (on geo_code CN of the "
                  "level: province, city or cluster; clusters overlap, so theirs may exceed 1)",
    "top5_share": "the same with the 5 largest",
    "top10_share": "the same with the 10 largest",
    "industry_multiple": "the industry's value / the unweighted mean of the 18 industries of the same entity (x times)",
    "share_within_geo": "the industry's value / its entity's all-industry value, a fraction (tier and cluster "
                        "structure)",
    "cluster_mean": "the mean index of a cluster's member cities, in index points",
    "contribution_geo": "percentage points: (value - value in reference_period) / the national value of the same "
                        "industry in reference_period x 100 (qoq, yoy); provinces, cities (with <province>U) and "
                        "tiers (with unallocated) each add up to the national growth x 100",
    "contribution_industry": "percentage points: (the industry's value - its value in reference_period) / the "
                             "entity's all-industry value in reference_period x 100 (qoq, yoy); the industries add "
                             "up to the entity's all-industry growth x 100",
    "per_million_residents": "index points per million resident population (seeds/population.csv; the latest "
                             "census year not after the period's). Provinces, national (population = the sum of "
                             "the provinces), cities with a figure, tiers and clusters whose member cities all have "
                             "one; others have no row",
    "usage_ratio": "(value / national value) / (population / national population): 1 = usage in proportion to "
                   "residents (as the Anthropic Economic Index's usage per capita); the same entities as "
                   "per_million_residents, national excepted",
    "hhi": "Herfindahl-Hirschman index, sum of squared shares (a fraction, 1/n to 1), on geo_code CN with geo_level "
           "the level it runs across (province or city); allocated entities only (<province>U take no part), shares "
           "of their total",
    "gini": "Gini coefficient of the entities' values (0 = equal, towards 1 = one holds all); as hhi",
    "theil": "Theil T index, sum of s ln(n s) over the shares s (0 = equal, ln n = one holds all); as hhi",
    "theil_between": "the part of theil between groups of cities, sum S_g ln(S_g n / n_g); comparison names the "
                     "grouping (by_province, by_tier); between + within = theil",
    "theil_within": "the part of theil within groups of cities, sum S_g x theil inside the group; as theil_between",
}
COMPARISONS = {
    "qoq": "the previous quarter", "yoy": "the same quarter (or the year) one year earlier",
    "since_base": "the base quarter", "vs_prev_year": "the previous complete year's annual ranking",
    "by_province": "theil_between / theil_within with cities grouped by their province",
    "by_tier": "theil_between / theil_within with cities grouped by their tier (unallocated: cities no tier list "
               "ranks)",
}
STATUSES = {
    "ok": "published", "suppressed": "withheld for privacy (value null)",
    "new": "a zero denominator (growth from a zero reference, concentration of all zeros): no value "
           "(derived.parquet and shift_share.parquet only)",
}
FILES = {
    "indices": "The index table: one row per metric x period x geo entity x industry (quarters and complete years)",
    "derived": "Derived measures of the published indices: one row per cell x measure x comparison",
    "shift_share": "Shift-share of each province's and city's change against a year earlier: national, "
                   "industry-mix and competitive effects in index points, adding up to the change",
    "quarantine": "Rejected raw rows with their values as read and one reason (operator-only: holds account ids)",
    "revisions": "Every change to a published value: old and new value, status and accounts, run, time, reason",
}


def describe(table: str, columns: Iterable[str]) -> dict[str, str]:
    """Each column's description in `table` (asset or published file stem); a column with none is left out."""
    specific = BY_TABLE.get(table, {})
    return {c: specific.get(c) or COLUMNS[c] for c in columns if c in specific or c in COLUMNS}
