"""The quarterly schedule (off by default): early on the first day of a quarter, materialise the quarter just ended.

It inventories the landing folder with the project's own functions, so the quarter's partition is added from the
data (never invented): a quarter without rows yet is skipped with a reason rather than published empty. The run
covers every quarter that needs computing, the one just ended included.
"""
from __future__ import annotations

import datetime as dt

import dagster as dg

from assets.support.partitions import quarterly_partitions
from assets.support.settings import RANGE_TAGS
from assets.transforms.errors import InputError
from pipelines.sensors import delivery_config, landing_folder, plan, release_dir

CRON = "0 6 1 1,4,7,10 *"  # 06:00 China Standard Time on the first day of each quarter
TIMEZONE = "Asia/Shanghai"


def quarter_before(moment: dt.datetime | dt.date) -> str:
    """The quarter that ended before `moment`: 2021-04-01 -> 2021Q1, 2021-01-01 -> 2020Q4."""
    year, quarter = moment.year, (moment.month - 1) // 3 + 1
    return f"{year - 1}Q4" if quarter == 1 else f"{year}Q{quarter - 1}"


@dg.schedule(job_name="quarterly_release", cron_schedule=CRON, execution_timezone=TIMEZONE,
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="On the first day of a quarter (06:00 CST), materialise the quarter just ended from the "
                         "landing folder (and any other quarter that needs computing); skipped while that quarter "
                         "has no rows.")
def quarterly_schedule(context: dg.ScheduleEvaluationContext):
    quarter = quarter_before(context.scheduled_execution_time or dt.datetime.now(dt.timezone.utc))
    release = release_dir()
    landing = landing_folder(release)
    if release is None or not landing:
        return dg.SkipReason(f"{quarter}: no release with a landing folder (YUNZHI_RELEASE)")
    try:
        quarters, todo = plan(release, landing)
    except InputError as exc:
        return dg.SkipReason(f"{quarter}: {exc}")
    if quarter not in quarters:
        return dg.SkipReason(f"{quarter}: no rows yet in {landing} (data holds {quarters[0]}..{quarters[-1]})")
    missing = [q for q in quarters if not context.instance.has_dynamic_partition(quarterly_partitions.name, q)]
    if missing:
        context.instance.add_dynamic_partitions(quarterly_partitions.name, missing)
    covered = sorted({*todo, quarter})
    return dg.RunRequest(run_key=f"quarterly-{quarter}", run_config=delivery_config(release, landing),
                         tags={RANGE_TAGS[0]: covered[0], RANGE_TAGS[1]: covered[-1],
                               "yunzhi/trigger": "quarterly_schedule"})


SCHEDULES = [quarterly_schedule]
