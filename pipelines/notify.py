"""Tell someone when a run fails or a check fails: a one-paragraph summary posted to a webhook (off by default).

The summary names the job, the quarters, the failed steps with the first line of their error, the failed checks,
and where to look (the run's page in the UI and the release's quality.json); never an account id.
"""
from __future__ import annotations

import json
import os
import urllib.request

import dagster as dg
from dagster import DagsterEventType
from pydantic import Field

RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


class Notifier(dg.ConfigurableResource):
    """Where failure summaries go. Empty URL (the default) = notifications off."""

    webhook_url: str = Field(default="", description="Webhook to POST failure summaries to (JSON {\"text\": ...}); "
                                                      "empty = read the environment variable below; both empty = off")
    webhook_url_env: str = Field(default="YUNZHI_WEBHOOK_URL",
                                 description="Environment variable holding the webhook URL (keeps it out of the UI)")
    ui_url: str = Field(default="http://127.0.0.1:3000", description="Base URL of the Dagster UI, for links")
    timeout_seconds: float = Field(default=10.0, description="HTTP timeout for one POST")

    @property
    def url(self) -> str:
        return self.webhook_url or os.environ.get(self.webhook_url_env, "")

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def post(self, text: str, **extra) -> int:
        """POST {"text": text, ...} as JSON; returns the HTTP status. Raises on a network error."""
        body = json.dumps({"text": text, **extra}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:  # noqa: S310 (operator's URL)
            return response.status


def _first_line(text: str | None, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`asset: check` for each check that failed in the run."""
    out = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if not evaluation.passed:
            out.append(f"{evaluation.asset_key.to_user_string()}: {evaluation.check_name}")
    return out


def failed_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`step (error's first line)` for each step that failed in the run."""
    out = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:  # the user's exception, not Dagster's wrapper
            error = error.cause
        message = _first_line(error.message if error else record.message)
        out.append(f"{event.step_key} ({message})" if message else event.step_key)
    return out


def quarters_of(run: dg.DagsterRun) -> str:
    tags = run.tags or {}
    start, end = (tags.get(t) for t in RANGE_TAGS)
    if start and end:
        return start if start == end else f"{start}..{end}"
    return tags.get("dagster/partition", "")


def summary(instance: dg.DagsterInstance, run: dg.DagsterRun, ui_url: str, run_error: str | None = None) -> str:
    """One paragraph: what failed, in which run and quarters, and where to look."""
    steps, checks = failed_steps(instance, run.run_id), failed_checks(instance, run.run_id)
    quarters = quarters_of(run)
    status = "failed" if run.status == dg.DagsterRunStatus.FAILURE or steps else "finished with failed checks"
    parts = [f"yunzhi: run {run.run_id[:8]} of job {run.job_name}"
             + (f" for {quarters}" if quarters else "") + f" {status}."]
    if steps:
        parts.append(f"Failed step{'s' if len(steps) > 1 else ''}: {'; '.join(steps[:5])}"
                     + (f" and {len(steps) - 5} more" if len(steps) > 5 else "") + ".")
    elif run_error and status == "failed":
        parts.append(f"Error: {_first_line(run_error)}.")
    if checks:
        parts.append(f"Failed check{'s' if len(checks) > 1 else ''}: {'; '.join(checks[:10])}"
                     + (f" and {len(checks) - 10} more" if len(checks) > 10 else "") + ".")
    release = (run.tags or {}).get("yunzhi/release") or os.environ.get("YUNZHI_RELEASE", "")
    where = f"{ui_url.rstrip('/')}/runs/{run.run_id}"
    parts.append(f"Look at the run's logs at {where}"
                 + (f" and the check results in {release}/quality.json and {release}/state/quality/" if release else "")
                 + ".")
    return " ".join(parts)
