"""Pure helpers that turn frames and figures into Dagster metadata values."""
from __future__ import annotations

import base64

import dagster as dg
import polars as pl


def table_schema(schema: pl.Schema, descriptions: dict | None = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype), description=descriptions.get(name))
                                   for name, dtype in schema.items()])


def markdown_preview(frame: pl.DataFrame, rows: int = 5) -> dg.MetadataValue:
    head = frame.head(rows)
    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join(lines))


def markdown_image(png: bytes, alt: str = "chart") -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")
