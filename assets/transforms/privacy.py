"""Privacy: which published cells must be hidden (CONTRACT.md "Privacy").

Primary suppression (k accounts, p% dominance) and complementary suppression across the geo, industry and time
hierarchies are applied here; until then every cell is published as `ok`.
"""
from __future__ import annotations

import polars as pl

from assets.transforms.indices import INDEX_COLUMNS, sort_index_rows


def combine_periods(quarterly: list[pl.DataFrame], annual: pl.DataFrame | None) -> pl.DataFrame:
    """Quarters and complete years in one table, with the internal amount columns privacy needs."""
    frames = quarterly + ([annual] if annual is not None and annual.height else [])
    return sort_index_rows(pl.concat(frames))


def disclose(indices: pl.DataFrame, k: int = 5, dominance: float = 0.85) -> pl.DataFrame:
    """The published cells: suppressed ones get status `suppressed` and null value and accounts."""
    return indices.select(INDEX_COLUMNS)
