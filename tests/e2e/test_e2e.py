"""The UI end to end in a real browser (scripts/e2e.py), as an operator lives it: the CLI builds a four-quarter
release, `make ui` serves it, a quarter is rematerialised from the browser by clicks (no config), the CLI delivers a
late file for another quarter, and the published tables keep every quarter without new data as first published.

The asserts read GraphQL state, the published Parquet and locators by role, title and ARIA label, never Dagster's
wording; the screenshots under build/e2e/ are for humans."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import skip_unless_ci
from tests.e2e.fixture import load_e2e_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    e2e = load_e2e_script("yunzhi_e2e")
    try:  # screenshots for humans under build/e2e; the release in the test session's scratch
        return e2e, e2e.run(ROOT / "build" / "e2e", work=tmp_path_factory.mktemp("e2e_work"))
    except e2e.Skip as exc:
        skip_unless_ci(f"browser test skipped: {exc}")


def test_a_quarter_rematerialised_from_the_browser_then_a_late_file_from_the_cli(story):
    e2e, result = story
    launch, ui_run, facts = result["launch"], result["ui_run"], result["facts"]

    # c. launched by clicks: the UI's own mutation, one run of the partition, no config
    assert launch["clicked"] and launch["operation"] == "LaunchPipelineExecution", launch
    assert launch["tags"]["dagster/partition"] == e2e.UI_PARTITION and not launch["run_config"], launch
    assert e2e.CHECK_ASSET in launch["assets"] and e2e.GRAPH_ASSET in launch["assets"], launch["assets"]

    # d. the run succeeded, materialised the quarter and passed every check it planned
    assert ui_run["status"] == "SUCCESS", ui_run["run_id"]
    assert ui_run["tags"]["dagster/partition"] == e2e.UI_PARTITION
    assert [e2e.CHECK_ASSET, e2e.UI_PARTITION] in [list(m) for m in ui_run["materialized"]], ui_run["materialized"]
    assert ui_run["checks"] and sorted(ui_run["checks"]) == ui_run["checks_planned"]
    assert all(ui_run["checks"].values()), [c for c, ok in ui_run["checks"].items() if not ok]
    # ... and changed nothing published: the quarter had no new data
    assert facts["ui_run_unchanged"] and facts["ui_run_revisions"] == 0

    # e. the late file's runs (the CLI's) succeeded and show in the UI
    assert result["late_runs"] and all(r["status"] == "SUCCESS" for r in result["late_runs"]), result["late_runs"]

    # f. the published tables
    assert facts["base_periods"] == [e2e.BASE]
    assert facts["tiers"] == e2e.TIERS  # six tiers (new_tier1 among them) and unallocated
    assert facts["national_base_value"] == {"ai": 100.0, "cloud": 100.0}
    assert facts["unchanged"] == {q: True for q in e2e.UNTOUCHED}, facts["unchanged"]
    assert facts["late_quarter_changed"]
    accounts = facts["national_accounts"]
    assert all(accounts["final"][m] > accounts["first"][m] for m in ("ai", "cloud")), accounts
    revisions = facts["revisions"]
    assert revisions["rows"] > 0 and set(revisions["periods"]) == {e2e.LATE_QUARTER, e2e.YEAR}, revisions
    assert revisions["reasons"] == ["late data"], revisions
    assert ui_run["run_id"] not in revisions["run_ids"]
    assert set(revisions["run_ids"]) <= {r["run_id"] for r in result["late_runs"]}, revisions

    assert e2e.problems(result) == []  # the same verdict `make e2e` gives


def test_the_asset_graph_and_the_checks_are_shown(story):
    e2e, result = story
    graph = result["pages"]["graph"]
    assert set(e2e.GROUPS) <= set(graph) and len(graph) > len(e2e.GROUPS), graph  # every stage group and asset
    assert [name for name, shown in graph.items() if not shown] == []
    assert result["pages"]["check_icons"] == {c: e2e.PASSED_ICON for c in e2e.CHECKS}
    assert all(result["cube_checks"][c] == "SUCCEEDED" for c in e2e.CHECKS), result["cube_checks"]
    for name in ("launch_dialog", "run", "asset_graph", "cube_checks", "runs_after_late_file"):
        assert Path(result["screenshots"][name]).stat().st_size > 10_000, name  # a rendered page, not a blank one
