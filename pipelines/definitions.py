"""The code location: the stages in flow order, each its own group, with the settings and IO resources."""
from __future__ import annotations

import dagster as dg

from assets import annual, base, cube, indices, ingest, privacy, publish, validate
from pipelines.io import ParquetIOManager
from pipelines.resources import Settings

STAGES = (ingest, validate, cube, base, indices, annual, privacy, publish)  # flow order


def stage_assets() -> list:
    """Every asset, grouped by the stage module it lives in."""
    out = []
    for stage in STAGES:
        group = stage.__name__.rsplit(".", 1)[-1]
        found = dg.load_assets_from_modules([stage], group_name=group)
        out.extend(found)
    return out


def resources(release_dir, raw_path="", **settings) -> dict:
    return {"settings": Settings(release_dir=release_dir, raw_path=raw_path, **settings),
            "io_manager": ParquetIOManager(release_dir=release_dir)}


ALL_ASSETS = stage_assets()

defs = dg.Definitions(
    assets=ALL_ASSETS,
    resources=resources(dg.EnvVar("YUNZHI_RELEASE"), dg.EnvVar("YUNZHI_RAW")),
)
