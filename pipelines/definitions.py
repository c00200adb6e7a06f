"""The code location: the stages in flow order, each its own group, with the jobs, sensors, schedule and resources."""
from __future__ import annotations

import warnings

import dagster as dg

# backfill_policy (one run per range of quarters) is beta in Dagster 1.13 and used on purpose: its warning at every
# load would only be noise on the CLI's stderr and in the UI's logs
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=r"Parameter `backfill_policy`")

from assets import annual, base, cube, derived, indices, ingest, privacy, publish, report, validate  # noqa: E402
from assets.support.io import ParquetIOManager  # noqa: E402
from assets.support.settings import Settings  # noqa: E402
from pipelines.jobs import JOBS  # noqa: E402
from pipelines.notify import Notifier  # noqa: E402
from pipelines.schedules import SCHEDULES  # noqa: E402
from pipelines.sensors import SENSORS  # noqa: E402

STAGES = (ingest, validate, cube, base, indices, annual, privacy, derived, publish, report)  # flow order
OWNERS = {"ingest": ["team:data-platform"], "validate": ["team:data-platform"], "privacy": ["team:privacy"]}
DEFAULT_OWNERS = ["team:index"]


def stage_assets() -> list:
    """Every asset, grouped by the stage module it lives in, with its owners by stage."""
    found = [a for stage in STAGES
             for a in dg.load_assets_from_modules([stage], group_name=stage.__name__.rsplit(".", 1)[-1])]
    return list(dg.map_asset_specs(
        lambda spec: spec.replace_attributes(owners=spec.owners or OWNERS.get(spec.group_name, DEFAULT_OWNERS)),
        found))


ALL_ASSETS = stage_assets()

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=JOBS,
    sensors=SENSORS,
    schedules=SCHEDULES,
    # the release comes from each run's config or YUNZHI_RELEASE, read when the run starts; every other setting
    # from the release itself (assets.support.settings)
    resources={"settings": Settings(), "io_manager": ParquetIOManager(), "notifier": Notifier()},
    executor=dg.in_process_executor,  # stages run one after another; a process per step only adds start-up time
)
