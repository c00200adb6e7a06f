"""Derived: growth, ranks, shares, multiples, cluster means, contributions, per-capita measures, concentration and
shift-share of the disclosed indices."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.settings import Settings
from assets.transforms.analytics import contributions_off, theil_off
from assets.transforms.derived import DERIVED_COLUMNS, MEASURES, derive_measures, sudden_national_moves
from assets.transforms.shift_share import effects_off, shift_share_table
from expectations.adapter import submit_suite
from expectations.outcomes import predicate
from expectations.suites import DERIVED, SHIFT_SHARE

DERIVED_KEYS_UNIQUE = "derived_keys_are_unique"
DERIVED_VALUES_VALID = "derived_values_are_valid"
SUPPRESSED_STAY_HIDDEN = "measures_of_suppressed_cells_are_suppressed"
DERIVED_SUITE = "derived_measures_meet_expectations"
NATIONAL_STEADY = "national_series_moves_within_the_set_factor"
CONTRIBUTIONS_ADD_UP = "contributions_add_up_to_growth"
THEIL_ADDS_UP = "theil_between_plus_within_is_theil"
EFFECTS_ADD_UP = "effects_add_up_to_the_change"
SHIFT_SHARE_HIDDEN = "shift_share_of_suppressed_cells_is_suppressed"
CHECKS = {
    DERIVED_SUITE: ("Great Expectations: keys present, measure, comparison, status and level from their lists", True),
    DERIVED_KEYS_UNIQUE: ("One row per metric x period x entity x industry x measure x comparison", True),
    DERIVED_VALUES_VALID: ("Known measures and statuses, ok rows have a value, shares within [0, 1] (clusters "
                           "overlap and are left out), ranks from 1", True),
    SUPPRESSED_STAY_HIDDEN: ("No measure of a suppressed cell is published", True),
    NATIONAL_STEADY: ("A warning: no national series moves by more than national_change_factor (default 3) from one "
                      "quarter to the next, which would more likely be a missing or doubled feed than the economy",
                      False),
    CONTRIBUTIONS_ADD_UP: ("Each level's contribution_geo (provinces, cities with <province>U, tiers with "
                           "unallocated) adds up to the national growth x 100, and each entity's "
                           "contribution_industry to its all-industry growth x 100 (to 1e-9)", True),
    THEIL_ADDS_UP: ("theil_between + theil_within = theil for each grouping (to 1e-9)", True),
}
KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry", "measure", "comparison"]


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="2", metadata={"preview": True},
          check_specs=specs("derived_measures", CHECKS))
def derived_measures(context: dg.AssetExecutionContext, settings: Settings, disclosed_indices: pl.LazyFrame):
    """Per metric x period x entity x industry x measure x comparison: one derived value (ratio, rank or index)."""
    disclosed = disclosed_indices.collect()
    reference, values = settings.reference(), settings.release.settings
    table = derive_measures(disclosed, reference.clusters, reference.city_tier(), reference.entity_population(),
                            values.growth_rank_min_reference)
    suite = submit_suite(DERIVED_SUITE, DERIVED, table)  # GX works while Dagster stores the measures
    yield dg.Output(table, metadata={"measures": ", ".join(sorted(set(table["measure"]))),
                                     "new_cells": table.filter(pl.col("status") == "new").height})
    # the checks of our own first, while GX still works; then its outcome, first in the list
    outcomes = [*check_derived(table, disclosed),
                national_moves(disclosed, settings.release.settings.national_change_factor)]
    yield from check_results(context, settings.state, "derived", "derived_measures",
                             {None: [suite.result(), *outcomes]}, {None: table.height})


def national_moves(disclosed: pl.DataFrame, factor: float):
    moves = sudden_national_moves(disclosed, factor)
    return predicate(NATIONAL_STEADY, moves.height == 0, factor=factor, moves=", ".join(
        f"{m} {p}: {prev:.2f} -> {v:.2f}" for m, p, v, prev in moves.iter_rows()) or "none")


def check_derived(table: pl.DataFrame, disclosed: pl.DataFrame) -> list:
    duplicates = table.height - table.select(KEY).unique().height
    ok = table.filter(pl.col("status") == "ok")
    bad = table.filter(~pl.col("measure").is_in(MEASURES) | ~pl.col("status").is_in(["ok", "new", "suppressed"])
                       | ((pl.col("status") == "ok") != pl.col("value").is_not_null()))
    shares = ok.filter(pl.col("measure").str.contains("share") & ~pl.col("geo_level").is_in(["cluster"])
                       & ((pl.col("value") < -1e-9) | (pl.col("value") > 1 + 1e-9)))
    ranks = ok.filter(pl.col("measure").is_in(["rank", "growth_rank"]) & (pl.col("value") < 1))
    hidden = disclosed.filter(pl.col("status") == "suppressed").select(
        "metric", "period", "period_type", "geo_level", "geo_code", "industry")
    leaked = ok.join(hidden, on=hidden.columns, how="semi").height
    return [predicate(DERIVED_KEYS_UNIQUE, duplicates == 0, duplicate_rows=duplicates),
            predicate(DERIVED_VALUES_VALID, bad.height + shares.height + ranks.height == 0, invalid_rows=bad.height,
                      shares_out_of_range=shares.height, ranks_below_one=ranks.height, columns=len(DERIVED_COLUMNS)),
            predicate(SUPPRESSED_STAY_HIDDEN, leaked == 0, published_from_suppressed=leaked),
            predicate(CONTRIBUTIONS_ADD_UP, (off := contributions_off(table)).height == 0, groups_off=off.height,
                      first=", ".join(f"{r[0]} {r[1]} {r[2]}" for r in off.head(3).iter_rows()) or "none"),
            predicate(THEIL_ADDS_UP, (gap := theil_off(table)).height == 0, groups_off=gap.height)]


SHIFT_SHARE_SUITE = "shift_share_meets_expectations"
SHIFT_SHARE_CHECKS = {
    SHIFT_SHARE_SUITE: ("Great Expectations: keys present and unique, metric, period type, level and status from "
                        "their lists", True),
    EFFECTS_ADD_UP: ("National, industry-mix and competitive effects add up to the change (to 1e-9)", True),
    SHIFT_SHARE_HIDDEN: ("No shift-share row of a suppressed province or city is published", True),
}


@dg.asset(kinds={"polars", "parquet", "great_expectations"}, code_version="1", metadata={"preview": True},
          check_specs=specs("shift_share", SHIFT_SHARE_CHECKS))
def shift_share(context: dg.AssetExecutionContext, settings: Settings, disclosed_indices: pl.LazyFrame):
    """Per metric x period x province or city: the change in index points against a year earlier, split into
    national, industry-mix and competitive effects."""
    disclosed = disclosed_indices.collect()
    table = shift_share_table(disclosed)
    suite = submit_suite(SHIFT_SHARE_SUITE, SHIFT_SHARE, table)  # GX works while Dagster stores the table
    yield dg.Output(table, metadata={"rows_ok": table.filter(pl.col("status") == "ok").height})
    hidden = disclosed.filter((pl.col("status") == "suppressed") & (pl.col("industry") == "all")).select(
        "metric", "period", "period_type", "geo_level", "geo_code")
    leaked = table.filter(pl.col("status") == "ok").join(hidden, on=hidden.columns, how="semi").height
    off = effects_off(table)
    outcomes = [predicate(EFFECTS_ADD_UP, off.height == 0, rows_off=off.height),
                predicate(SHIFT_SHARE_HIDDEN, leaked == 0, published_from_suppressed=leaked)]
    yield from check_results(context, settings.state, "derived", "shift_share", {None: [suite.result(), *outcomes]},
                             {None: table.height})
