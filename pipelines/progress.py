"""A progress bar on stderr across the stages and quarters of one in-process run (the CLI's)."""
from __future__ import annotations

import sys
import time

import dagster as dg

QUARTER_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


class Progress:
    """A progress bar on stderr (a terminal only) across the stages and quarters of one in-process run.

    A thread polls the run's event log (found by a tag) for materialisations and step starts; the run itself is
    untouched. Set YUNZHI_PROGRESS=0 to turn it off, =1 to force it on (one line per update when not a terminal).
    """

    TAG = "yunzhi/progress"

    def __init__(self, instance: dg.DagsterInstance, assets, selection, tags: dict | None):
        import os
        import threading
        import uuid

        self.instance, self.tags = instance, {**(tags or {}), self.TAG: uuid.uuid4().hex}
        mode = os.environ.get("YUNZHI_PROGRESS", "")
        self.enabled = mode == "1" or (mode != "0" and sys.stderr.isatty())
        self.tty = sys.stderr.isatty()
        self.total, self.done, self.stage, self.started = 0, 0, "starting", time.perf_counter()
        self._printed = -1
        self._stop, self._thread = threading.Event(), threading.Thread(target=self._poll, daemon=True)
        if self.enabled:
            from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
            from assets.transforms.ingest import quarters_between

            graph = AssetGraph.from_assets(assets)
            keys = dg.AssetSelection.from_coercible(selection).resolve(graph)
            start, end = (self.tags.get(t) for t in QUARTER_RANGE_TAGS)
            quarters = len(quarters_between(start, end)) if start and end else 1
            self.total = sum(quarters if graph.get(k).partitions_def else 1 for k in keys)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self._render(final=True)
        return False

    def _render(self, final: bool = False) -> None:
        width, total = 30, max(self.total, 1)
        filled = min(width, round(width * self.done / total))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} outputs  "
                f"{self.stage[:40]:<40} {time.perf_counter() - self.started:5.0f}s")
        if self.tty:
            print("\r" + line, end="\n" if final else "", file=sys.stderr, flush=True)
        elif not final or self._printed != self.done:
            print(line, file=sys.stderr, flush=True)
        self._printed = self.done

    def _poll(self) -> None:
        from dagster import DagsterEventType
        from dagster._core.storage.dagster_run import RunsFilter

        run_id, cursor, shown = None, None, None
        while not self._stop.wait(0.5):
            try:
                if run_id is None:
                    runs = self.instance.get_runs(RunsFilter(tags={self.TAG: self.tags[self.TAG]}), limit=1)
                    run_id = runs[0].run_id if runs else None
                    continue
                page = self.instance.get_records_for_run(run_id, cursor, of_type={
                    DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.STEP_START})
                cursor = page.cursor
                for record in page.records:
                    event = record.event_log_entry.dagster_event
                    if event.event_type == DagsterEventType.STEP_START:
                        self.stage = event.step_key
                    else:
                        self.done += 1
                        materialised = event.event_specific_data.materialization
                        self.stage = materialised.asset_key.to_user_string() + (
                            f" {materialised.partition}" if materialised.partition else "")
            except Exception:  # the display must never break a run
                continue
            if (self.done, self.stage) != shown and (self.tty or self.done != (shown or (0,))[0]):
                shown = (self.done, self.stage)
                self._render()
