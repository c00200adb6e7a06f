"""Start the Dagster UI (webserver + daemon) for workspace.yaml on one release's own instance.

    python scripts/ui.py [--release DIR] [--port 3000] [--host 127.0.0.1]

`make ui` runs this for the demo release (`make ui RELEASE=DIR` for another). The release's Dagster instance is
DIR/.dagster, so runs, check history, sensor cursors and backfills stay with the release. The code location reads
YUNZHI_RELEASE (the release); every run then reads the release's own settings (DIR/state/settings.json).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_RELEASE = ROOT / "data" / "demo" / "release"


def ui_env(release: str | Path, base: dict | None = None) -> dict:
    """The environment `dagster dev` needs for this release (YUNZHI_LANDING kept if already set)."""
    release = Path(release).resolve()
    env = dict(os.environ if base is None else base)
    env.update(DAGSTER_HOME=str(release / ".dagster"), YUNZHI_RELEASE=str(release))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def ensure_instance(release: Path) -> None:
    from pipelines.release import instance_home  # imports Dagster: only when the UI starts

    instance_home(release)


def dev_command(host: str = "127.0.0.1", port: int = 3000) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    return [str(dagster) if dagster.exists() else "dagster", "dev", "-w", str(ROOT / "workspace.yaml"),
            "-h", host, "-p", str(port)]


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python scripts/ui.py", description=__doc__.split("\n\n")[0])
    top.add_argument("--release", default=str(DEMO_RELEASE), help="release directory (default: the demo release)")
    top.add_argument("--host", default="127.0.0.1")
    top.add_argument("--port", type=int, default=3000)
    args = top.parse_args(argv)
    release = Path(args.release).resolve()
    if not (release / "state").exists():
        print(f"no release at {release}: run 'make demo' (or 'python -m pipelines run --raw PATH --out DIR') first",
              file=sys.stderr)
        return 1
    ensure_instance(release)
    env = ui_env(release)
    print(f"Dagster UI for {release} on http://{args.host}:{args.port} (instance {env['DAGSTER_HOME']})", flush=True)
    os.chdir(ROOT)
    command = dev_command(args.host, args.port)
    os.execvpe(command[0], command, env)  # dagster dev stops its webserver and daemon on Ctrl-C


if __name__ == "__main__":
    sys.exit(main())
