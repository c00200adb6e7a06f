"""Screenshot a release's report in headless Chromium, to check that the maps, charts and Chinese labels render.

    python scripts/report_check.py [RELEASE_DIR] [--out DIR]

Writes RELEASE_DIR/report/screenshots/full.png (the whole page, 1400 CSS px wide) and page-NN.png (slices of it,
2000 px high). Exits non-zero if Chromium is missing, the report is missing, or a
screenshot could not be written. Look at the PNGs: the labels must be Chinese characters, not boxes.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--force-device-scale-factor=1"]
WIDTH, SLICE = 1400, 2000


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("error: no chromium found (apt-get install -y chromium)")


def screenshot(browser: str, url: str, out: Path, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="report-check-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
               f"--screenshot={out}", url]
        subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    if not out.exists() or out.stat().st_size == 0:
        sys.exit(f"error: chromium wrote no screenshot for {url}")


def page_height(html: str) -> int:
    """A generous estimate of the page height (CSS px) from the embedded images' pixel sizes."""
    import base64
    import struct

    height = 600
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        head = base64.b64decode(data[:64])
        w, h = struct.unpack(">II", head[16:24])
        height += int(h * min(1.0, 1280 / max(w, 1))) + 60
    return height + 40 * html.count("<tr>")


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("release", nargs="?", default="data/demo/release")
    args.add_argument("--out", help="screenshot folder (default RELEASE/report/screenshots)")
    opts = args.parse_args(argv)
    report = Path(opts.release).resolve() / "report"
    index = report / "index.html"
    if not index.exists():
        sys.exit(f"error: {index} missing: run `python -m pipelines report --out {opts.release}` first")
    out = Path(opts.out).resolve() if opts.out else report / "screenshots"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    browser = chromium()
    full = out / "full.png"
    screenshot(browser, index.as_uri(), full, page_height(index.read_text(encoding="utf-8")))
    written = [full]
    try:  # cut the full page into readable slices when Pillow is around (matplotlib depends on it)
        from PIL import Image

        image = Image.open(full)
        for n, top in enumerate(range(0, image.height, SLICE)):
            part = out / f"page-{n:02d}.png"
            image.crop((0, top, image.width, min(image.height, top + SLICE))).save(part)
            written.append(part)
    except ImportError:
        pass
    print(f"{len(written)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
