"""Privacy: the index table as it may be published, sensitive cells protected against an attacker who solves
every published equation at once."""
import dagster as dg
import polars as pl

from assets.support.checks import check_results, specs
from assets.support.settings import Settings
from assets.transforms.cube import geo_membership
from assets.transforms.privacy import KEY, audit, blank, combine_periods, earlier_versions, suppression_flags
from assets.transforms.protection import Stats
from expectations.adapter import submit_suite
from expectations.outcomes import predicate
from expectations.suites import PUBLISHED_INDICES

DISCLOSED_SUITE = "disclosed_indices_meet_expectations"
NATIONAL_NEVER_SUPPRESSED = "national_totals_are_never_suppressed"
PRIMARY_SUPPRESSED = "sensitive_cells_are_suppressed"
NO_VALUE = "suppressed_cells_have_no_value"
PROTECTED = "every_sensitive_cell_keeps_its_interval_against_the_lp_attacker"
STAYS_SUPPRESSED = "cells_suppressed_in_earlier_versions_stay_suppressed"
CHECKS = {
    DISCLOSED_SUITE: ("Great Expectations on the published cells: keys present and unique, labels known, values "
                      "and accounts not negative", True),
    NATIONAL_NEVER_SUPPRESSED: ("No national x all cell is suppressed", True),
    PRIMARY_SUPPRESSED: ("Every cell with usage and fewer than k contributors, or failing the p% rule, is "
                         "suppressed", True),
    NO_VALUE: ("A suppressed cell publishes neither value nor accounts", True),
    PROTECTED: ("The attacker: for every sensitive cell, the LP min and max of its value from every published "
                "equation at once, the published values and earlier versions' values reach q% below and above it",
                True),
    STAYS_SUPPRESSED: ("A cell suppressed in any published version of the release is suppressed in this one (unless "
                       "it has no usage left: a replaced file withdrew it, and a cell without usage is published as 0)",
                       True),
}


@dg.asset(kinds={"polars", "parquet", "great_expectations", "scipy"}, code_version="3", metadata={"preview": True},
          check_specs=specs("disclosed_indices", CHECKS))
def disclosed_indices(context: dg.AssetExecutionContext, settings: Settings, quarterly_indices: dict,
                      annual_indices: pl.LazyFrame):
    """Every published index cell (quarters and complete years), status `ok` or `suppressed` (value null).

    Primary suppression (fewer than k contributors, or the p% rule) and complementary suppression chosen by linear
    programming so that every sensitive cell keeps a q% interval under every published equation at once
    (CONTRACT.md "Privacy")."""
    rules = settings.release.settings
    k, p, q = rules.privacy_k, rules.privacy_p, rules.protection_percent
    membership = geo_membership(settings.reference())
    combined = combine_periods([quarterly_indices[key].collect() for key in sorted(quarterly_indices)],
                               annual_indices.collect())
    previous = earlier_versions(*_published(settings.directory), combined["base_period"][0])
    protection, attack = Stats(), Stats()
    flags = suppression_flags(combined, k, p, q, membership, previous, protection)
    table = blank(flags)
    # GX works while the attacker runs and Dagster stores the table
    suite = submit_suite(DISCLOSED_SUITE, PUBLISHED_INDICES, table.filter(pl.col("status") == "ok"))
    found = audit(flags, membership, attack)
    hidden = table.filter(pl.col("status") == "suppressed")
    n_primary, n_carried = int(flags["primary"].sum()), int((flags["was_suppressed"] & ~flags["primary"]).sum())
    yield dg.Output(table, metadata={
        "suppressed_cells": hidden.height, "primary_suppressions": n_primary,
        "complementary_suppressions": hidden.height - n_primary, "kept_from_earlier_versions": n_carried,
        "privacy_k": k, "privacy_p": p, "protection_percent": q,
        "protection_lps": protection.lps, "protection_witnessed": protection.witnessed,
        "protection_limited": protection.limited, "attacker_lps": attack.lps,
        "protection_seconds": round(sum(protection.seconds.values()), 2)})
    national = table.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    missed = flags.filter(pl.col("primary") & ~pl.col("suppressed")).height
    # a cell whose usage a replaced file withdrew entirely is 0 now, and a cell without usage is published as 0
    lifted = flags.filter(pl.col("was_suppressed") & ~pl.col("suppressed") & (pl.col("value") > 0)).height
    short = found.filter("short")
    limited = found.filter((pl.col("protect_down") < q / 100 * pl.col("value") * (1 - 1e-9))
                           | (pl.col("protect_up") < q / 100 * pl.col("value") * (1 - 1e-9))).height
    outcomes = [suite.result(),
                predicate(NATIONAL_NEVER_SUPPRESSED, bool((national["status"] == "ok").all()),
                          suppressed_cells=hidden.height),
                predicate(PRIMARY_SUPPRESSED, missed == 0, sensitive_cells=n_primary, not_suppressed=missed,
                          privacy_k=k, privacy_p=p),
                predicate(NO_VALUE, hidden.filter(pl.col("value").is_not_null() | pl.col("accounts").is_not_null())
                          .height == 0, suppressed_cells=hidden.height),
                predicate(PROTECTED, short.height == 0, sensitive_cells=found.height, short=short.height,
                          limited_by_the_table=limited, protection_percent=q, attacker_lps=attack.lps,
                          first=_describe(short)),
                predicate(STAYS_SUPPRESSED, lifted == 0, suppressed_before=int(flags["was_suppressed"].sum()),
                          published_now=lifted)]
    yield from check_results(context, settings.state, "privacy", "disclosed_indices", {None: outcomes},
                             {None: table.height})


def _published(directory) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """The release as last published: its indices and its revisions log (None before the first publication)."""
    files = [directory / name for name in ("indices.parquet", "revisions.parquet")]
    return tuple(pl.read_parquet(f) if f.exists() else None for f in files)


def _describe(cells: pl.DataFrame) -> str:
    """The first cell's key (never a value)."""
    if not cells.height:
        return "none"
    return " ".join(str(v) for v in cells.select(KEY).row(0))
