"""End-to-end test of the Dagster UI in a real browser: `make e2e` (also run by `make test` through tests/e2e).

The story, as an operator would live it:
1. the CLI builds a release of four quarters (2020Q1..2020Q4, base 2020Q2, six tiers) from a tiny fixture
   (tests/e2e/fixture.py): `python -m pipelines run --raw RAW --out DIR --base 2020Q2 --tiers six`;
2. the UI starts on that release as `make ui RELEASE=DIR` starts it (scripts/ui.py: `dagster dev` on DIR/.dagster),
   on a free port, and the test waits until GraphQL answers and the code location is loaded;
3. in headless Chromium (Playwright driving the system Chromium), the job `quarterly_release` is opened, its
   materialise control clicked, the partition 2020Q3 picked and the run launched, with no config; the launch is the
   UI's own GraphQL mutation, read from the browser's traffic;
4. the run is followed through GraphQL to its end (status, materialisations, check evaluations);
5. the asset graph (stage groups and assets) and the check results of `usage_cube` are read in the browser;
6. the CLI delivers a late file for 2020Q4 into the same release while the UI is up:
   `python -m pipelines run --raw LATE_FILE --out DIR`; its runs show in the UI (GraphQL);
7. the published tables are compared with the first publication (facts collected for the asserts).

Screenshots go to build/e2e/ for humans; the asserts are on GraphQL state, on the published Parquet and on
locators by role, title and ARIA label (the shipped Dagster UI renders no data-testid attributes: its testId()
returns null outside Jest). Every process started here (the CLI, `dagster dev`, Chromium) is stopped, with its
process group, even on failure.

    python scripts/e2e.py [--out build/e2e] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.fixture import LATE_QUARTER, STORY_QUARTERS, write_late_file, write_story_raw  # noqa: E402

BASE = "2020Q2"
UI_PARTITION = "2020Q3"  # rematerialised from the UI: no new data, so nothing published may change
UNTOUCHED = tuple(q for q in STORY_QUARTERS if q != LATE_QUARTER)  # quarters the late file does not touch
YEAR = STORY_QUARTERS[0][:4]  # complete in the fixture, so the late file revises the year too
JOB = "quarterly_release"
LOCATION = "yunzhi"
TIERS = ["new_tier1", "tier1", "tier2", "tier3", "tier4", "tier5", "unallocated"]
GROUPS = ["ingest", "validate", "cube", "base", "indices", "annual", "privacy", "derived", "publish", "report"]
GRAPH_ASSET = "published_release"  # its upstream lineage is every stage
CHECK_ASSET = "usage_cube"
CHECKS = ["usage_cube_meets_expectations", "cube_levels_add_up_to_national", "cube_national_equals_account_usage"]
PASSED_ICON = "check_circle"  # the ARIA label of the icon Dagster draws beside a passing check
KEYS = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
CELL = ["value", "accounts", "status"]
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-breakpad",
                 "--disable-crash-reporter", "--disable-quic", "--hide-scrollbars"]
VIEWPORT = {"width": 1600, "height": 1000}
# Dagster's "join the community" dialog, dismissed in this browser only (the instance is left as it is)
NO_NUX = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"
CLI_TIMEOUT, UI_TIMEOUT, RUN_TIMEOUT, PAGE_TIMEOUT = 600, 150, 300, 60_000  # seconds; page: milliseconds


class Skip(Exception):
    """The test cannot run here (no browser and no way to install one)."""


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------- browser
def find_browser() -> str | None:
    for name in BROWSERS:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> str:
    """The system Chromium; when it is missing, scripts/system_packages.sh installs it (as `make test` does: Debian's
    `chromium` with apt-get, as root or with sudo -n). One install at a time: the browser tests may start together
    on two pytest workers, and a second apt-get would stop at apt's lock while the first still works."""
    import fcntl
    import tempfile

    found = find_browser()
    if found:
        return found
    with open(Path(tempfile.gettempdir()) / "yunzhi-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find_browser()  # installed meanwhile by whoever held the lock
        if found:
            return found
        log("Chromium missing: scripts/system_packages.sh --browser")
        done = subprocess.run(["sh", str(ROOT / "scripts" / "system_packages.sh"), "--browser"], capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise Skip(f"could not install Chromium: {(done.stderr or done.stdout).strip()[-300:]}")
    found = find_browser()
    if not found:
        raise Skip("apt-get installed chromium but no browser binary was found")
    return found


@contextmanager
def browser_page(binary: str):
    """One page of the system Chromium driven by Playwright (never `playwright install`: no browser download)."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        raise RuntimeError("the Python package playwright is missing: run make install "
                           "(or .venv/bin/pip install 'playwright>=1.65,<2')") from exc
    expect.set_options(timeout=PAGE_TIMEOUT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.add_init_script(NO_NUX)
            context.set_default_timeout(PAGE_TIMEOUT)
            page = context.new_page()
            # should the dialog open anyway (a renamed storage key), close it whenever it gets in the way
            nux = page.get_by_role("dialog").filter(has=page.get_by_role("button", name="Skip", exact=True))
            page.add_locator_handler(nux, lambda dialog: dialog.get_by_role("button", name="Skip", exact=True).click())
            yield page
        finally:
            browser.close()


def shoot(page, out: Path, name: str, shots: dict) -> None:
    from playwright.sync_api import TimeoutError as PageTimeout

    # let the page's queries (live status, run logs) finish for the human eye (the asserts do not need it); a page
    # that keeps polling is screenshotted as it is
    with suppress(PageTimeout):
        page.wait_for_load_state("networkidle", timeout=5_000)
    page.wait_for_timeout(300)
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    shots[name] = str(path)
    log(f"screenshot {path}")


def _launch_mutation(response) -> bool:
    request = response.request
    return (request.method == "POST" and "/graphql" in response.url
            and any(f'"{op}"' in (request.post_data or "") for op in ("LaunchPipelineExecution",
                                                                     "LaunchPartitionBackfill")))


def launch_by_clicks(page, base: str, partition: str, out: Path, shots: dict) -> dict:
    """Open the job, click its materialise control, pick `partition` in the dialog and launch, as a user would;
    returns what the UI sent (operation, tags, run config, assets) and the run it launched."""
    from playwright.sync_api import expect

    page.goto(f"{base}/locations/{LOCATION}/jobs/{JOB}")
    materialize = page.get_by_role("button", name=re.compile(r"\bMaterialize all"))
    expect(materialize).to_be_enabled()
    materialize.click()
    dialog = page.get_by_role("dialog").filter(has=page.locator("[aria-haspopup=dialog]"))
    expect(dialog).to_be_visible()
    dialog.locator("[aria-haspopup=dialog]").click()  # the partition picker
    page.get_by_role("menuitem", name=partition).click()
    page.keyboard.press("Escape")  # close the picker, keep the dialog
    launch = dialog.get_by_role("button", name=re.compile(r"^Launch"))
    expect(launch).to_be_enabled()
    shoot(page, out, "launch_dialog", shots)
    with page.expect_response(_launch_mutation) as sent:
        launch.click()
    response = sent.value
    request = json.loads(response.request.post_data)
    body = response.json()
    operation = request.get("operationName", "")
    params = request["variables"].get("executionParams") or request["variables"].get("backfillParams") or {}
    config = params.get("runConfigData", {})
    launched = {
        "clicked": True, "operation": operation,
        "tags": {t["key"]: t["value"] for t in (params.get("executionMetadata") or {}).get("tags", [])
                 or params.get("tags", [])},
        "run_config": yaml.safe_load(config) if isinstance(config, str) else config,
        "assets": sorted(a["path"][-1] for a in (params.get("selector") or {}).get("assetSelection") or []),
    }
    result = (body.get("data") or {}).get("launchPipelineExecution") or {}
    if result.get("__typename") != "LaunchRunSuccess":
        raise AssertionError(f"the UI did not launch one run: {operation} answered {json.dumps(body)[:1500]}")
    launched["run_id"] = result["run"].get("runId") or result["run"]["id"]  # the UI asks for the id only
    return launched


def browse_after_run(page, base: str, run_id: str, out: Path, shots: dict) -> dict:
    """The run page, the asset graph (groups and assets) and the checks of CHECK_ASSET, read by stable locators."""
    from playwright.sync_api import expect

    seen: dict = {}
    page.goto(f"{base}/runs/{run_id}")
    expect(page.get_by_text(run_id[:8]).first).to_be_visible()
    shoot(page, out, "run", shots)

    page.goto(f"{base}/assets/{GRAPH_ASSET}?view=lineage&lineageScope=upstream&lineageDepth=20")
    graph = page.locator("svg foreignObject")  # the asset graph's nodes and group boxes
    expect(graph.get_by_text(GRAPH_ASSET, exact=True).first).to_be_attached()
    seen["graph"] = {name: shown(graph.get_by_text(name, exact=True)) for name in GROUPS + all_assets(base)}
    shoot(page, out, "asset_graph", shots)

    page.goto(f"{base}/assets/{CHECK_ASSET}?view=checks")
    icons = {}
    for check in CHECKS:
        title = page.get_by_title(check, exact=True).first  # each check of the list, by its full name
        expect(title).to_be_visible()
        # the status icon of the check's own row: the nearest ancestor holding an icon
        icon = title.locator("xpath=ancestor::*[.//*[@role='img']][1]").get_by_role("img").first
        icons[check] = icon.get_attribute("aria-label")
    seen["check_icons"] = icons
    shoot(page, out, "cube_checks", shots)
    return seen


def shown(locator, timeout: float = 10_000) -> bool:
    """Whether `locator` is (or comes) on the page within `timeout` ms (drawn: the graph may be scrolled past it)."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        locator.first.wait_for(state="attached", timeout=timeout)
        return True
    except PageTimeout:
        return False


def all_assets(base: str) -> list[str]:
    """Every asset of the code location (from GraphQL, not from the page): all are upstream of GRAPH_ASSET."""
    nodes = graphql_url(base, ASSET_NODES)["assetNodes"]
    return sorted(n["assetKey"]["path"][-1] for n in nodes)


# ------------------------------------------------------------------------------------------------- processes
# Runs a command with SIGINT and SIGTERM at their defaults, even if our parent ignores them (a background job), so
# that it stops on SIGINT as on Ctrl-C; an exec wrapper rather than preexec_fn, which is unsafe once Playwright runs
# a thread. The process id is kept through the exec, so its process group is still the one we stop.
DEFAULT_SIGNALS = ("import os, signal, sys\n"
                   "for s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.SIG_DFL)\n"
                   "os.execv(sys.argv[1], sys.argv[1:])")


def stop_group(process: subprocess.Popen | None, first: int, grace: float) -> None:
    """Stop a process we started and its process group: `first` signal, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None and not _group_alive(process.pid):
        return
    try:
        os.killpg(process.pid, first) if first != signal.SIGINT else process.send_signal(first)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + grace
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    if _group_alive(process.pid):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = CLI_TIMEOUT) -> str:
    """`python -m pipelines ARGS` in its own process group (stopped with it, whatever happens); its output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "YUNZHI_PROGRESS": "0"}
    command = [sys.executable, "-m", "pipelines", *args]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(args[:1])} did not finish within {timeout:.0f}s: {' '.join(command)}")
    finally:
        stop_group(process, signal.SIGTERM, 10)
    if process.returncode != 0:
        raise RuntimeError(f"python -m pipelines {' '.join(args)} failed ({process.returncode}): "
                           f"{(stderr or stdout).strip()[-1500:]}")
    return (stdout + stderr).strip()


@contextmanager
def ui(release: Path, port: int, log_path: Path):
    """The UI as `make ui RELEASE=DIR PORT=PORT` starts it (scripts/ui.py, which becomes `dagster dev`), in its own
    process group; stopped on exit (SIGINT, as Ctrl-C, then SIGKILL for whatever is left)."""
    env = {k: v for k, v in os.environ.items() if k != "YUNZHI_LANDING"}  # the landing folder is the release's
    command = [sys.executable, str(ROOT / "scripts" / "ui.py"), "--release", str(release), "--port", str(port)]
    with open(log_path, "w", encoding="utf-8") as out:
        process = subprocess.Popen([sys.executable, "-c", DEFAULT_SIGNALS, *command], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop_group(process, signal.SIGINT, 20)


# ------------------------------------------------------------------------------------------------- GraphQL
def graphql_url(base: str, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(f"{base}/graphql", method="POST",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL: {body['errors']}")
    return body["data"]


WORKSPACE = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
ASSET_NODES = """{ assetNodes { assetKey { path } groupName } }"""
RUN_STATUS = """query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
RUN_DETAIL = """query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status jobName
  tags { key value } assetMaterializations { assetKey { path } partition }
  eventConnection(limit: 10000) { hasMore events { __typename
    ... on AssetCheckEvaluationPlannedEvent { assetKey { path } checkName }
    ... on AssetCheckEvaluationEvent { evaluation { assetKey { path } checkName success } } } } } } }"""
RUNS = """{ runsOrError(limit: 100) { __typename ... on Runs { results { runId status creationTime
  tags { key value } } } } }"""
CHECKS_OF = """query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }"""


def wait_for_ui(process: subprocess.Popen, base: str, log_path: Path, timeout: float = UI_TIMEOUT) -> None:
    """Until GraphQL answers and every code location is loaded (a load error fails at once, with its message)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the UI exited ({process.returncode}); see {log_path}")
        try:
            entries = graphql_url(base, WORKSPACE, timeout=10)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
            entries = []
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries
                      if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
            if errors:
                raise RuntimeError(f"code location failed to load: {errors[0]['message'][:800]}")
            return
        time.sleep(1)
    raise RuntimeError(f"the UI did not come up within {timeout:.0f}s; see {log_path}")


def wait_for_run(base: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    deadline, status = time.monotonic() + timeout, "?"
    while time.monotonic() < deadline:
        status = graphql_url(base, RUN_STATUS, {"id": run_id})["runOrError"].get("status", "?")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise RuntimeError(f"run {run_id} still {status} after {timeout:.0f}s")


def run_detail(base: str, run_id: str) -> dict:
    """A run's status, tags, materialisations (asset, partition) and check evaluations, from GraphQL."""
    run = graphql_url(base, RUN_DETAIL, {"id": run_id})["runOrError"]
    events = run["eventConnection"]["events"]
    return {
        "run_id": run["runId"], "status": run["status"], "job": run["jobName"],
        "tags": {t["key"]: t["value"] for t in run["tags"]},
        "materialized": sorted({(m["assetKey"]["path"][-1], m["partition"]) for m in run["assetMaterializations"]},
                               key=lambda m: (m[0], m[1] or "")),
        "checks_planned": sorted(f"{e['assetKey']['path'][-1]}:{e['checkName']}" for e in events
                                 if e["__typename"] == "AssetCheckEvaluationPlannedEvent"),
        "checks": {f"{e['evaluation']['assetKey']['path'][-1]}:{e['evaluation']['checkName']}":
                   e["evaluation"]["success"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"},
    }


def run_ids(base: str) -> list[str]:
    return [r["runId"] for r in graphql_url(base, RUNS)["runsOrError"]["results"]]


def latest_checks(base: str, asset: str) -> dict:
    node = graphql_url(base, CHECKS_OF, {"key": {"path": [asset]}})["assetNodeOrError"]
    return {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
            for c in node["assetChecksOrError"]["checks"]}


# ------------------------------------------------------------------------------------------------- the release
def read_release(release: Path):
    import polars as pl

    indices = pl.read_parquet(release / "indices.parquet")
    revisions = (pl.read_parquet(release / "revisions.parquet") if (release / "revisions.parquet").exists()
                 else pl.DataFrame())
    return indices, revisions


def cells(indices, period: str):
    import polars as pl

    return indices.filter(pl.col("period") == period).select(KEYS + CELL).sort(KEYS)


def release_facts(first, after_ui, ui_revisions, final, revisions) -> dict:
    """What the story's asserts need from the published tables (first publication, after the UI run, at the end)."""
    import polars as pl

    national = final.filter(pl.col("geo_level") == "national", pl.col("industry") == "all")
    return {
        "base_periods": sorted(final["base_period"].unique().to_list()),
        "tiers": sorted(final.filter(pl.col("geo_level") == "tier")["geo_code"].unique().to_list()),
        "national_base_value": {r["metric"]: r["value"] for r in
                                national.filter(pl.col("period") == BASE).iter_rows(named=True)},
        "periods": sorted(final["period"].unique().to_list()),
        # the UI rematerialisation of a quarter without new data changes nothing
        "ui_run_unchanged": after_ui.select(KEYS + CELL).sort(KEYS).equals(first.select(KEYS + CELL).sort(KEYS)),
        "ui_run_revisions": ui_revisions.height,
        # quarters without new data are as first published, cell for cell
        "unchanged": {q: cells(final, q).equals(cells(first, q)) for q in UNTOUCHED},
        "late_quarter_changed": not cells(final, LATE_QUARTER).equals(cells(first, LATE_QUARTER)),
        "national_accounts": {when: {r["metric"]: r["accounts"] for r in frame.filter(
            pl.col("geo_level") == "national", pl.col("industry") == "all", pl.col("period") == LATE_QUARTER
        ).iter_rows(named=True)} for when, frame in (("first", first), ("final", final))},
        "revisions": {
            "rows": revisions.height,
            "periods": sorted(revisions["period"].unique().to_list()) if revisions.height else [],
            "reasons": sorted(revisions["reason"].unique().to_list()) if revisions.height else [],
            "run_ids": sorted(revisions["run_id"].unique().to_list()) if revisions.height else [],
        },
    }


# ------------------------------------------------------------------------------------------------- the test
def run(out: Path, keep: bool = False, work: Path | None = None) -> dict:
    """The whole story; returns what it saw (timings, the launch, runs, pages, release facts, screenshots). The tiny
    release and its raw files go to `work` (default OUT/work)."""
    started, timings = time.monotonic(), {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.monotonic() - since, 1)
        log(f"{name}: {timings[name]}s")
        return time.monotonic()

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    t = time.monotonic()
    binary = ensure_chromium()
    t = lap("browser", t)

    work = work or out / "work"
    shutil.rmtree(work, ignore_errors=True)
    raw, release = write_story_raw(work / "raw"), work / "release"
    late = write_late_file(work / "late" / f"usage_{LATE_QUARTER}_late.csv")
    result: dict = {"release": str(release), "timings": timings, "screenshots": {}}
    try:
        _story(result, raw, late, release, out, binary, lap, t)
    finally:  # what was seen, for a human, also when a step failed (the work folder is then kept too)
        timings["total"] = round(time.monotonic() - started, 1)
        (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _story(result: dict, raw: Path, late: Path, release: Path, out: Path, binary: str, lap, t: float) -> None:
    with browser_page(binary) as page:  # opened first: it idles while the CLI works
        # the CLI's runs skip the report (4-6 s each); the run launched from the UI draws it
        result["first_cli"] = cli("run", "--raw", str(raw), "--out", str(release), "--base", BASE, "--tiers", "six",
                                  "--no-report")
        first, _ = read_release(release)
        t = lap("cli_first_release", t)

        port, log_path = free_port(), out / "dagster.log"
        base = f"http://127.0.0.1:{port}"
        result["port"] = port
        with ui(release, port, log_path) as process:
            wait_for_ui(process, base, log_path)
            t = lap("ui_start", t)
            result["launch"] = launch_by_clicks(page, base, UI_PARTITION, out, result["screenshots"])
            ui_run = result["launch"]["run_id"]
            t = lap("ui_launch", t)
            wait_for_run(base, ui_run)
            result["ui_run"] = run_detail(base, ui_run)
            after_ui, ui_revisions = read_release(release)
            t = lap("ui_run", t)
            result["pages"] = browse_after_run(page, base, ui_run, out, result["screenshots"])
            result["cube_checks"] = latest_checks(base, CHECK_ASSET)
            t = lap("ui_pages", t)

            page.goto("about:blank")  # no live polling of the UI while the CLI works
            before = set(run_ids(base))
            result["late_cli"] = cli("run", "--raw", str(late), "--out", str(release), "--no-report")
            t = lap("cli_late_file", t)
            result["late_runs"] = [run_detail(base, r) for r in run_ids(base) if r not in before]
            page.goto(f"{base}/runs")  # the CLI's runs, in the UI's run list
            for late_run in result["late_runs"]:
                page.get_by_text(late_run["run_id"][:8]).first.wait_for()
            shoot(page, out, "runs_after_late_file", result["screenshots"])
            t = lap("ui_after_late_file", t)
    lap("ui_stop", t)
    final, revisions = read_release(release)
    result["facts"] = release_facts(first, after_ui, ui_revisions, final, revisions)


def problems(result: dict) -> list[str]:
    """Every way the story went wrong (empty when it went as it should); `make e2e` and the test both use it."""
    found = []
    launch, ui_run, facts = result["launch"], result["ui_run"], result["facts"]

    def need(ok, what):
        if not ok:
            found.append(what)

    need(launch["operation"] == "LaunchPipelineExecution", f"the UI launched {launch['operation']}, not one run")
    need(launch["tags"].get("dagster/partition") == UI_PARTITION, f"launched with tags {launch['tags']}")
    need(not launch["run_config"], f"launched with config {launch['run_config']}")
    need(ui_run["status"] == "SUCCESS", f"the UI run {ui_run['run_id']} ended {ui_run['status']}")
    need(ui_run["tags"].get("dagster/partition") == UI_PARTITION, f"the UI run's tags: {ui_run['tags']}")
    need((CHECK_ASSET, UI_PARTITION) in [tuple(m) for m in ui_run["materialized"]],
         f"the UI run did not materialise {CHECK_ASSET} {UI_PARTITION}: {ui_run['materialized']}")
    need(ui_run["checks"] and sorted(ui_run["checks"]) == ui_run["checks_planned"],
         f"checks planned {ui_run['checks_planned']} but evaluated {sorted(ui_run['checks'])}")
    need(all(ui_run["checks"].values()), f"checks failed in the UI run: "
                                         f"{[c for c, ok in ui_run['checks'].items() if not ok]}")
    graph = result["pages"]["graph"]
    need(all(graph.values()), f"not on the asset graph: {[n for n, shown in graph.items() if not shown]}")
    icons = result["pages"]["check_icons"]
    need(all(icons.get(c) == PASSED_ICON for c in CHECKS), f"check icons of {CHECK_ASSET}: {icons}")
    need(all(result["cube_checks"].get(c) == "SUCCEEDED" for c in CHECKS), f"{CHECK_ASSET}: {result['cube_checks']}")
    late_runs = result["late_runs"]
    need(late_runs and all(r["status"] == "SUCCESS" for r in late_runs),
         f"the late file's runs: {[(r['run_id'], r['status']) for r in late_runs]}")
    need(facts["base_periods"] == [BASE], f"base periods {facts['base_periods']}")
    need(facts["tiers"] == TIERS, f"tiers {facts['tiers']}")
    need(facts["national_base_value"] and all(v == 100.0 for v in facts["national_base_value"].values()),
         f"national {BASE}: {facts['national_base_value']}")
    need(facts["ui_run_unchanged"], f"the UI rematerialisation of {UI_PARTITION} changed published cells")
    need(facts["ui_run_revisions"] == 0, f"the UI rematerialisation logged {facts['ui_run_revisions']} revisions")
    need(all(facts["unchanged"].values()), f"quarters without new data changed: {facts['unchanged']}")
    need(facts["late_quarter_changed"], f"the late file did not change {LATE_QUARTER}")
    accounts = facts["national_accounts"]
    need(accounts["final"] and all(accounts["final"][m] > accounts["first"][m] for m in accounts["final"]),
         f"national accounts of {LATE_QUARTER} before and after the late file: {accounts}")
    revisions = facts["revisions"]
    need(revisions["rows"] > 0 and set(revisions["periods"]) <= {LATE_QUARTER, YEAR},
         f"revised periods {revisions['periods']} ({revisions['rows']} rows)")
    need(revisions["reasons"] == ["late data"], f"revision reasons {revisions['reasons']}")
    need(ui_run["run_id"] not in revisions["run_ids"]
         and set(revisions["run_ids"]) <= {r["run_id"] for r in late_runs},
         f"revisions by runs {revisions['run_ids']} (UI run {ui_run['run_id']})")
    return found


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python scripts/e2e.py", description=__doc__.split("\n\n")[0])
    top.add_argument("--out", default=str(ROOT / "build" / "e2e"), help="screenshots and logs (default build/e2e)")
    top.add_argument("--keep", action="store_true", help="keep the tiny release under OUT/work")
    args = top.parse_args(argv)
    try:
        result = run(Path(args.out), keep=args.keep)
    except Skip as exc:
        print(f"e2e SKIPPED: {exc}", file=sys.stderr)
        return 0  # a clean skip: nothing here can run a browser
    failed = problems(result)
    if failed:
        print("e2e FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print(f"e2e passed in {result['timings']['total']}s ({result['timings']}); screenshots: "
          f"{', '.join(result['screenshots'].values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
