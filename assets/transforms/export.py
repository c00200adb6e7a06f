"""Exports of a published release for spreadsheet users: CSV (UTF-8 with a byte-order mark, so Excel shows the
Chinese names) or one Excel workbook, from the published Parquet only."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from assets.transforms.errors import InputError

TABLES = ("indices", "derived", "revisions")  # quarantine.parquet holds account ids: operator-only, never exported
EXCEL_ROWS = 1_048_575  # a sheet's rows under its header


def export_release(release_dir: str | Path, fmt: str, target: str | Path | None = None) -> list[Path]:
    """Write the release's published tables as `fmt` (csv or xlsx) into `target` (default DIR/export/)."""
    release = Path(release_dir)
    missing = [t for t in TABLES if not (release / f"{t}.parquet").exists()]
    if missing:
        raise InputError(f"{release / (missing[0] + '.parquet')}: not published; run `python -m pipelines run` first")
    folder = Path(target) if target else release / "export"
    folder.mkdir(parents=True, exist_ok=True)
    tables = {name: pl.read_parquet(release / f"{name}.parquet") for name in TABLES}
    if fmt == "csv":
        written = []
        for name, table in tables.items():
            tmp = folder / f".{name}.csv.tmp"
            table.write_csv(tmp, include_bom=True)
            written.append(tmp.replace(folder / f"{name}.csv"))
        return written
    if fmt == "xlsx":
        path, tmp = folder / "release.xlsx", folder / ".release.xlsx.tmp"
        import xlsxwriter

        with xlsxwriter.Workbook(tmp) as workbook:
            for name, table in tables.items():
                parts = max(1, -(-table.height // EXCEL_ROWS))  # a table longer than a sheet goes on several
                for i in range(parts):
                    table.slice(i * EXCEL_ROWS, EXCEL_ROWS).write_excel(
                        workbook, worksheet=name if parts == 1 else f"{name}_{i + 1}", autofit=False)
        return [tmp.replace(path)]
    raise InputError(f"export format must be csv or xlsx, not {fmt!r}")

