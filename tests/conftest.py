"""Shared helpers for the acceptance tests: run the project's CLI as a subprocess, several at once."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 300
SCRATCH_IN_MEMORY = Path("/dev/shm")
SCRATCH_NEEDS_BYTES = 4 << 30


def pytest_configure(config):
    """Temporary files in memory when a large tmpfs is there and no --basetemp was given: every release a test builds
    has its own Dagster instance, whose SQLite storage commits (and syncs to disk) once per stored event, which on a
    disk costs a small release about as much as all its computing. pytest keeps its usual rotation of session
    folders (pytest-of-USER/pytest-N, the last three kept); pytest-xdist's workers and the CLI's subprocesses
    inherit the place. A small tmpfs (Docker's 64 MB /dev/shm) is left alone."""
    import shutil
    import tempfile

    if config.option.basetemp or hasattr(config, "workerinput") or not SCRATCH_IN_MEMORY.is_dir():
        return
    try:
        roomy = shutil.disk_usage(SCRATCH_IN_MEMORY).free >= SCRATCH_NEEDS_BYTES
    except OSError:
        return
    if roomy and os.access(SCRATCH_IN_MEMORY, os.W_OK):
        os.environ["TMPDIR"] = tempfile.tempdir = str(SCRATCH_IN_MEMORY)


def run_cli(args: list[str], quiet_warnings: bool = False) -> subprocess.CompletedProcess:
    """`python -m pipelines ARGS` in the project root, with output captured.

    quiet_warnings: silence Python warnings of third-party imports (PYTHONWARNINGS=ignore), so that stderr holds only
    what the CLI itself prints.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if quiet_warnings:
        env["PYTHONWARNINGS"] = "ignore"
    return subprocess.run([sys.executable, "-m", "pipelines", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT)


def run_cli_many(arg_lists: list[list[str]], workers: int | None = None,
                 quiet_warnings: bool = False) -> list[subprocess.CompletedProcess]:
    """Several independent pipeline runs in parallel (each is a separate release), results in order."""
    workers = workers or max(1, min(len(arg_lists), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda a: run_cli(a, quiet_warnings), arg_lists))


def skip_unless_ci(reason: str) -> None:
    """Skip a test that needs a system part this machine lacks and cannot install (the browser); on CI (CI set) the
    same is a failure, so that CI never passes without the browser tests."""
    import pytest

    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason}: CI must run this test")
    pytest.skip(reason)


# ---- the demo release, built once per test session (figures and report tests) ----------------------------------
DEMO_ROWS = 2_000_000  # the default dataset: figures are asserted on what `make demo` publishes
DEMO_SEED = 2021

import pytest  # noqa: E402


def built_once(tmp_path_factory, worker_id: str, name: str, done: str, build) -> Path:
    """`build(root)` run once per test session in ROOT = the session's folder `name` (with pytest-xdist, by the first
    worker that needs it, under a lock the others wait on) unless ROOT/`done` exists; returns ROOT."""
    import fcntl

    if worker_id == "master":
        root = tmp_path_factory.getbasetemp() / name
    else:
        root = tmp_path_factory.getbasetemp().parent / name  # the parent is this session's, shared by its workers
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / done).exists():
            build(root)
    return root


@pytest.fixture(scope="session")
def demo_release(tmp_path_factory, worker_id) -> Path:
    """A release of the calibrated demo dataset (DEMO_ROWS rows), generated and published once per session."""
    from pipelines.demo.data import write_demo_raw

    def build(root: Path) -> None:
        write_demo_raw(root / "raw", rows=DEMO_ROWS, seed=DEMO_SEED)
        done = run_cli(["run", "--raw", root / "raw", "--out", root / "release"], quiet_warnings=True)
        assert done.returncode == 0, done.stderr[-2000:]

    return built_once(tmp_path_factory, worker_id, "demo", "release/indices.parquet", build) / "release"


_DRIVER = r"""
import json, os, sys, tempfile, traceback
from pipelines.cli import main
cases = json.loads(sys.argv[1])
results = {}
for name, args in cases:
    sys.stdout.flush(); sys.stderr.flush()
    err = tempfile.TemporaryFile()
    saved = os.dup(2)
    os.dup2(err.fileno(), 2)
    try:
        try:
            rc = main(args)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            rc = 1
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    err.seek(0)
    results[name] = [rc, err.read().decode("utf-8", "replace")]
print("RESULTS " + json.dumps(results))
"""


def run_main_many(cases: dict[str, list[str]], quiet_warnings: bool = True) -> dict[str, tuple[int, str]]:
    """Call `pipelines.cli.main(args)` for each case, one after the other in ONE fresh process (imports paid once),
    capturing each call's exit code and everything written to file descriptor 2 during it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if quiet_warnings:
        env["PYTHONWARNINGS"] = "ignore"
    import json
    payload = json.dumps([[name, [str(a) for a in args]] for name, args in cases.items()])
    proc = subprocess.run([sys.executable, "-c", _DRIVER, payload], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT)
    line = next((s for s in proc.stdout.splitlines() if s.startswith("RESULTS ")), None)
    assert line, f"driver failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return {name: (rc, err) for name, (rc, err) in json.loads(line[len("RESULTS "):]).items()}
