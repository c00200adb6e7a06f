"""A progress bar (tqdm, on stderr) across the stages and quarters of one in-process run (the CLI's).

A thread polls the run's event log, found by a tag, for step starts and materialisations; the run itself is
untouched. YUNZHI_PROGRESS=0 turns it off, =1 forces it on when stderr is not a terminal.
"""
from __future__ import annotations

import os
import sys
import threading
import uuid

import dagster as dg


class Progress:
    TAG = "yunzhi/progress"

    def __init__(self, instance: dg.DagsterInstance, selection: list[dg.AssetKey], quarters: list[str] | None):
        self.instance, self.tags = instance, {self.TAG: uuid.uuid4().hex}
        mode = os.environ.get("YUNZHI_PROGRESS", "")
        self.enabled = mode == "1" or (mode != "0" and sys.stderr.isatty())
        self._stop, self._thread, self._bar = threading.Event(), threading.Thread(target=self._poll, daemon=True), None
        if self.enabled:
            from pipelines.definitions import ALL_ASSETS

            partitioned = {key for a in ALL_ASSETS if a.partitions_def is not None for key in a.keys}
            self.total = sum(len(quarters or [None]) if key in partitioned else 1 for key in selection)

    def __enter__(self):
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="output", file=sys.stderr, dynamic_ncols=True, leave=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} outputs [{elapsed}] {postfix}")
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self._bar.close()
        return False

    def _poll(self) -> None:
        run_id, cursor = None, None
        while not self._stop.wait(0.5):
            try:
                if run_id is None:
                    runs = self.instance.get_runs(dg.RunsFilter(tags={self.TAG: self.tags[self.TAG]}), limit=1)
                    run_id = runs[0].run_id if runs else None
                    continue
                page = self.instance.get_records_for_run(run_id, cursor, of_type={
                    dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_START})
                cursor = page.cursor
                for record in page.records:
                    event = record.event_log_entry.dagster_event
                    if event.event_type == dg.DagsterEventType.STEP_START:
                        self._bar.set_postfix_str(event.step_key, refresh=False)
                    else:
                        self._bar.update(1)
                self._bar.refresh()
            except Exception:  # the display must never break a run
                continue
