"""Great Expectations in a process of its own, beside the run: `submit(name, expectations, frame).result()`.

Importing GX (with pandas) is a few seconds of single-threaded Python, and a run needs its
first suite only after it has imported Dagster, opened its instance and read the raw inventory. Started first
(`start()`, which `python -m pipelines run` calls before anything else), the validator imports GX on the other core
meanwhile. Each suite is then one round trip of a small frame (a sample, a cube, totals) over a pipe, and a stage
stores its output while GX validates. The run's process never imports GX or pandas. One validator per process,
started on first use and closed at exit; if the parent dies, the validator reads end-of-file and exits.
"""
from __future__ import annotations

import atexit
import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


class ValidatorError(RuntimeError):
    """The validator process failed: a suite raised (the message names it, then GX's traceback) or it died."""


class _Validator:
    def __init__(self):
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen([sys.executable, "-m", "expectations.validator"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
        self.owner = os.getpid()  # a forked child must not share these pipes
        self.lock = threading.Lock()
        self.sent, self.received, self.replies = 0, 0, {}
        # requests are written by a thread of their own: a frame larger than the pipe's buffer would otherwise hold
        # the stage until the validator, busy with an earlier suite or with importing GX, reads it
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="gx-validator-writer", daemon=True)
        self.writer.start()

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def _write(self) -> None:
        while (message := self.outbox.get()) is not None:
            try:
                self.process.stdin.write(message)
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError):  # it died (`result` reads end-of-file and says so) or was closed
                return

    def submit(self, request: tuple) -> int:
        """Send a request; its reply is read by `result(ticket)`, so the caller works on meanwhile."""
        message = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)  # whole, before sending: no half requests
        with self.lock:
            self.outbox.put(message)
            self.sent += 1
            return self.sent

    def result(self, ticket: int):
        with self.lock:
            while ticket not in self.replies:  # replies come in the order of the requests
                try:
                    self.replies[self.received + 1] = pickle.load(self.process.stdout)
                except EOFError:
                    self._died()
                self.received += 1
            status, value = self.replies.pop(ticket)
        if status == "error":
            raise ValidatorError(value)
        return value

    def _died(self):
        code = self.process.wait()
        raise ValidatorError(f"the Great Expectations validator (pid {self.process.pid}) exited with code {code}; "
                             "its error, if any, is on stderr") from None

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        if not self.sent:  # never used (a run that stopped early): do not wait for GX to finish loading
            self.process.kill()
        self.outbox.put(None)  # the requests still queued are sent first
        self.writer.join(timeout=10)
        try:
            self.process.stdin.close()  # end-of-file: the validator exits at once
        except BrokenPipeError:  # it had died already
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


_current: _Validator | None = None
_starting = threading.Lock()


def start() -> _Validator:
    """This process's validator, started if there is none yet (returns at once: GX loads in the background)."""
    global _current
    with _starting:
        if _current is None or not _current.alive():
            _current = _Validator()
            atexit.register(_current.close)
        return _current


class Pending:
    """A result the validator is working on: `result()` waits for it (the first time)."""

    def __init__(self, fetch: Callable[[], Any]):
        self._fetch, self._done, self._value = fetch, False, None

    def result(self):
        if not self._done:
            self._value, self._done = self._fetch(), True
        return self._value


def submit(name: str, expectations: tuple, frame) -> Pending:
    """Start validating the polars `frame` with the suite `name` (a tuple of `Expect`); `.result()` is its
    Outcome."""
    validator = start()
    ticket = validator.submit((name, expectations, frame))
    return Pending(lambda: validator.result(ticket))


def serve(requests, replies) -> None:
    """The validator's loop: one (name, expectations, frame) request in, one ("ok", Outcome) or ("error", message
    naming the suite, then GX's traceback) reply out, until end-of-file."""
    from expectations.gx import validate_here

    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        try:
            reply = ("ok", validate_here(*request))
        except Exception as exc:  # reported to the caller, which raises it in the stage that asked
            reply = ("error", f"Great Expectations failed on suite {request[0]!r}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}\nin the validator process:\n"
                              f"{traceback.format_exc()}")
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


def _main() -> None:
    os.nice(19)  # the run's own work comes first: GX loads on whatever CPU the run leaves idle
    requests, replies = os.fdopen(0, "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the replies
    from expectations.gx import prepare_gx

    # GX's ~400k objects live as long as the process: import them with the collector paused, then freeze them
    gc.disable()
    prepare_gx()
    gc.freeze()
    gc.enable()
    try:  # back to normal priority for the suites, which the run waits for (allowed where the user may renice)
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except PermissionError:
        pass
    serve(requests, replies)
    replies.close()
    os._exit(0)  # no final collection of those objects at exit (over a second)


if __name__ == "__main__":
    _main()
