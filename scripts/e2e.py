"""End-to-end browser test of the Dagster UI: `make e2e` (also run by `make test` through tests/e2e).

1. finds Chromium (installs it with apt-get if missing; skips, saying why, only if apt is impossible);
2. builds a tiny release (tests/e2e/fixture.py + `python -m pipelines run`) under build/e2e/work;
3. starts `dagster dev` (webserver + daemon) on 127.0.0.1 with a free port on that release's instance;
4. launches a materialisation of one partition of `quarterly_release` through the GraphQL API, waits for success;
5. opens the asset graph and the check results in headless Chromium (Chrome DevTools protocol), waits until
   the assets and the passing checks are on the page, saves screenshots under build/e2e/, asserts on the text;
6. stops everything it started (its own process groups only).

    python scripts/e2e.py [--out build/e2e] [--keep]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from ui import dev_command, ensure_instance, ui_env  # noqa: E402

PARTITION = "2020Q2"
PARTITIONED = ["raw_usage_profile", "account_usage", "quarantined_rows", "usage_cube", "quarterly_indices"]
GRAPH_ASSETS = ["raw_inventory", "raw_usage_profile", "account_usage", "usage_cube", "quarterly_indices",
                "published_release"]
GROUPS = ["ingest", "validate", "cube", "base", "indices", "annual", "privacy", "publish"]
CHECK_ASSET = "usage_cube"
CHECKS = ["usage_cube_meets_expectations", "cube_levels_add_up_to_national", "cube_national_equals_account_usage"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class Skip(Exception):
    """The test cannot run here (no browser and no way to install one)."""


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------------------------- browser
def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def ensure_chromium() -> str:
    """A Chromium binary; installs Debian's `chromium` with apt-get when missing (as root or with sudo -n)."""
    found = find_browser()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise Skip("Chromium is not installed and apt-get is not available to install it")
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        raise Skip("Chromium is not installed and installing it needs root (no sudo)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log("Chromium missing: apt-get install -y chromium")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise Skip(f"could not install Chromium ({' '.join(command)}: {done.stderr.strip()[-300:]})")
    found = find_browser()
    if not found:
        raise Skip("apt-get installed chromium but no browser binary was found")
    return found


SKIP_NUX = """(() => { for (const b of document.querySelectorAll('[role="dialog"] button, .bp5-dialog button')) {
  if (b.innerText.trim() === 'Skip') { b.click(); return true; } } return false; })()"""


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page), with the `websockets` package."""

    def __init__(self, binary: str, profile: Path, width: int = 1600, height: int = 1000):
        self.binary, self.profile, self.size = binary, profile, (width, height)
        self.process: subprocess.Popen | None = None
        self.ws = None
        self._id = 0

    async def start(self) -> None:
        import websockets

        self.profile.mkdir(parents=True, exist_ok=True)
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--disable-breakpad", "--disable-crash-reporter", f"--window-size={self.size[0]},{self.size[1]}",
             f"--user-data-dir={self.profile}", "--remote-debugging-address=127.0.0.1",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            await asyncio.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = await websockets.connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024)
        await self.call("Page.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=self.size[0], height=self.size[1],
                        deviceScaleFactor=1, mobile=False)

    async def call(self, method: str, **params):
        self._id += 1
        my_id = self._id
        await self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout=60))
            if message.get("id") == my_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def text(self) -> str:
        result = await self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                                 returnByValue=True)
        return result.get("result", {}).get("value") or ""

    async def visit(self, url: str, expect: list[str], timeout: float = 60, settle: float = 1.5) -> str:
        """Open `url` and wait until every string of `expect` is in the page's text; returns the text."""
        await self.call("Page.navigate", url=url)
        deadline, text = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            await self.call("Runtime.evaluate", expression=SKIP_NUX)  # the "join the community" dialog
            text = await self.text()
            if all(s in text for s in expect):
                await asyncio.sleep(settle)  # let the layout and live status (node colours) settle
                if (await self.call("Runtime.evaluate", expression=SKIP_NUX, returnByValue=True)
                        ).get("result", {}).get("value"):
                    await asyncio.sleep(1)  # the dialog opened late: let it close before the screenshot
                return await self.text()
            await asyncio.sleep(0.5)
        missing = [s for s in expect if s not in text]
        raise AssertionError(f"{url}: not shown after {timeout:.0f}s: {missing}")

    async def screenshot(self, path: Path) -> Path:
        data = (await self.call("Page.captureScreenshot", format="png"))["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        stop_group(self.process, signal.SIGTERM, 10)


# ------------------------------------------------------------------------------------------------- processes
def _default_signals() -> None:
    """Children start with SIGINT/SIGTERM at their defaults, even if our parent ignores them (background jobs)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def stop_group(process: subprocess.Popen | None, first: int, grace: float) -> None:
    """Stop a process we started and its process group: `first` signal, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None and not _group_alive(process.pid):
        return
    try:
        os.killpg(process.pid, first) if first != signal.SIGINT else process.send_signal(first)
    except ProcessLookupError:
        return
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


@contextmanager
def dagster_dev(release: Path, port: int, log_path: Path):
    """`dagster dev` on the release's instance in its own process group; stopped (SIGINT, then SIGKILL) on exit."""
    ensure_instance(release)
    env = ui_env(release)
    env.pop("YUNZHI_LANDING", None)
    with open(log_path, "w", encoding="utf-8") as out:
        process = subprocess.Popen(dev_command("127.0.0.1", port), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_signals)
    try:
        yield process
    finally:
        stop_group(process, signal.SIGINT, 20)


# ------------------------------------------------------------------------------------------------- GraphQL
def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL: {body['errors']}")
    return body["data"]


WORKSPACE = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
LAUNCH = """mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } ... on InvalidSubsetError { message } } }"""
RUN = """query Run($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"""
CHECKS_OF = """query Checks($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }"""


def wait_for_ui(process: subprocess.Popen, port: int, log_path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited ({process.returncode}); see {log_path}")
        try:
            entries = graphql(port, WORKSPACE, timeout=10)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e["locationOrLoadError"] for e in entries
                          if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    raise RuntimeError(f"code location failed to load: {errors[0]['message'][:500]}")
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
            pass
        time.sleep(1)
    raise RuntimeError(f"the UI did not come up within {timeout:.0f}s; see {log_path}")


def launch_partition(port: int, partition: str, assets: list[str]) -> str:
    params = {"selector": {"repositoryLocationName": "yunzhi", "repositoryName": "__repository__",
                           "jobName": "quarterly_release", "assetSelection": [{"path": [a]} for a in assets]},
              "mode": "default", "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition},
                                             {"key": "yunzhi/trigger", "value": "e2e"}]}}
    result = graphql(port, LAUNCH, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launchRun: {result}")
    return result["run"]["runId"]


def wait_for_run(port: int, run_id: str, timeout: float = 240) -> str:
    deadline, status = time.monotonic() + timeout, "?"
    while time.monotonic() < deadline:
        status = graphql(port, RUN, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(1)
    raise RuntimeError(f"run {run_id} still {status} after {timeout:.0f}s")


# ------------------------------------------------------------------------------------------------- the test
def build_release(work: Path) -> tuple[Path, Path]:
    from tests.e2e.fixture import write_tiny_raw

    if work.exists():
        shutil.rmtree(work)
    raw, release = write_tiny_raw(work / "raw"), work / "release"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "YUNZHI_PROGRESS": "0"}
    # the pages visited show the stages up to the published release, not the report
    done = subprocess.run([sys.executable, "-m", "pipelines", "run", "--raw", str(raw), "--out", str(release),
                           "--no-report"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"building the tiny release failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return raw, release


async def browse(binary: str, port: int, out: Path, run_id: str) -> dict:
    base, shots, texts = f"http://127.0.0.1:{port}", {}, {}
    browser = Browser(binary, Path(tempfile.mkdtemp(prefix="e2e-chromium-")))
    try:
        await browser.start()
        pages = {  # every stage's assets upstream of the release, in their groups; then the checks
            "asset_graph": (f"{base}/assets/published_release?view=lineage&lineageScope=upstream&lineageDepth=20",
                            GRAPH_ASSETS + GROUPS),
            "cube_group": (f"{base}/locations/yunzhi/asset-groups/cube",
                           [CHECK_ASSET, f"{len(CHECKS)} / {len(CHECKS)} Passed"]),
            "cube_checks": (f"{base}/assets/{CHECK_ASSET}?view=checks", CHECKS + ["Succeeded", "Passed"]),
            "run": (f"{base}/runs/{run_id}", ["Success", PARTITION]),
        }
        for name, (url, expect) in pages.items():
            texts[name] = await browser.visit(url, expect, settle=5 if name == "asset_graph" else 1.5)
            shots[name] = str(await browser.screenshot(out / f"{name}.png"))
            log(f"screenshot {shots[name]}")
    finally:
        await browser.close()
        shutil.rmtree(browser.profile, ignore_errors=True)
    return {"screenshots": shots, "texts": texts}


def run(out: Path, keep: bool = False) -> dict:
    """The whole test; returns what it saw (timings, run status, check statuses, page texts, screenshots)."""
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
    _, release = build_release(out / "work")
    t = lap("build_release", t)
    port, log_path = free_port(), out / "dagster.log"
    result: dict = {"port": port, "release": str(release), "timings": timings}
    with dagster_dev(release, port, log_path) as process:
        wait_for_ui(process, port, log_path)
        t = lap("ui_start", t)
        run_id = launch_partition(port, PARTITION, PARTITIONED)
        result.update(run_id=run_id, status=wait_for_run(port, run_id))
        t = lap("run", t)
        if result["status"] != "SUCCESS":
            raise AssertionError(f"run {run_id} of {PARTITION} ended {result['status']}; see {log_path}")
        node = graphql(port, CHECKS_OF, {"key": {"path": [CHECK_ASSET]}})["assetNodeOrError"]
        result["checks"] = {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
                            for c in node["assetChecksOrError"]["checks"]}
        result.update(asyncio.run(browse(ensure_chromium(), port, out, run_id)))
        t = lap("browser_pages", t)
    lap("stop", t)
    timings["total"] = round(time.monotonic() - started, 1)
    if not keep:
        shutil.rmtree(out / "work", ignore_errors=True)
    (out / "result.json").write_text(json.dumps({k: v for k, v in result.items() if k != "texts"}, indent=2))
    return result


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
    failed = [c for c in CHECKS if result["checks"].get(c) != "SUCCEEDED"]
    if failed:
        print(f"e2e FAILED: checks not passing on {CHECK_ASSET}: {failed} ({result['checks']})", file=sys.stderr)
        return 1
    print(f"e2e passed in {result['timings']['total']}s ({result['timings']}); screenshots: "
          f"{', '.join(result['screenshots'].values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
