"""The code location: the stages in flow order, each its own group, with the settings and IO resources."""
from __future__ import annotations

import sys
import warnings
from importlib.machinery import ModuleSpec

import dagster as dg


def _name_bare_main() -> None:
    """Runs launched from the UI execute in spawned processes whose __main__ has neither __spec__ nor __file__;
    pyspark (imported by Great Expectations whenever it is installed) takes that for a doctest session and calls
    sys.exit(0), so the run dies silently. A spec named "__main__" avoids that (multiprocessing skips such a name)."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and not hasattr(main, "__file__"):
        main.__spec__ = ModuleSpec("__main__", None)


_name_bare_main()  # before the asset modules import Great Expectations
# backfill_policy (one run per range of quarters) is beta in Dagster 1.13 and used on purpose: its warning at every
# load would only be noise on the CLI's stderr and in the UI's logs
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r"Parameter `backfill_policy`")

from assets import annual, base, cube, derived, indices, ingest, privacy, publish, report, validate
from pipelines.io import ParquetIOManager
from pipelines.notify import Notifier
from pipelines.resources import Settings
from pipelines.schedules import SCHEDULES
from pipelines.sensors import SENSORS

STAGES = (ingest, validate, cube, base, indices, annual, privacy, derived, publish, report)  # flow order


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

# --- operating from the UI (issue 7): owners, jobs, sensors, schedules, notifications --------------------------
OWNERS = {"ingest": ["team:data-platform"], "validate": ["team:data-platform"], "privacy": ["team:privacy"]}
DEFAULT_OWNERS = ["team:index"]


def with_owners(assets) -> list:
    """Each asset's owners by its stage (group), set on the definitions only (the asset modules stay as they are)."""
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(owners=spec.owners or OWNERS.get(spec.group_name, DEFAULT_OWNERS)),
        assets))


# One run for a quarter or a range of quarters (partitioned stages are single-run backfills): raw_inventory first,
# so the partitioned stages see new files, then every stage down to the published release. The sensor, the
# schedule and a backfill of every quarter from the UI all run this job.
quarterly_release = dg.define_asset_job(
    "quarterly_release", selection=dg.AssetSelection.all(),  # partitioned by quarter (inferred)
    description="Materialise the release for the selected quarters: inventory the raw files, then every stage.",
    executor_def=dg.in_process_executor)

defs = dg.Definitions(
    assets=with_owners(ALL_ASSETS),
    jobs=[quarterly_release],
    sensors=SENSORS,
    schedules=SCHEDULES,
    resources={**resources(dg.EnvVar("YUNZHI_RELEASE"), dg.EnvVar("YUNZHI_RAW")), "notifier": Notifier()},
    executor=dg.in_process_executor,  # stages run one after another; a process per step only adds start-up time
)
