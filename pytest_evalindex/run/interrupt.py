"""Ctrl-C and SIGTERM during an index run: stop at once and keep what finished.

pytest turns Ctrl-C (SIGINT) into ``KeyboardInterrupt`` and still runs the end of the
session; SIGTERM it leaves to Python, which dies without a word. While an index run is
active, SIGTERM raises the same ``KeyboardInterrupt`` in the main thread, so a CI timeout or
``kill`` ends like Ctrl-C: requests in flight are abandoned, what finished is summarised and
written (marked partial) and the exit status is pytest's INTERRUPTED (2). Every answer
received is already in the response cache, so running the same command again resumes.

Under xdist the controller forwards the interruption to its workers at once; left alone,
execnet would interrupt a busy worker only after five seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_evalindex.testset.records import Record


class StopSignals:
    """Turns SIGTERM (and, on an xdist worker, SIGINT too) into ``KeyboardInterrupt`` while
    the run is active; the previous handlers come back with :meth:`restore`.

    Once the run is finishing, a further signal is ignored rather than cutting the writing of
    the results short. Handlers can only be set from the main thread; elsewhere (pytest run
    from a thread) nothing is installed.
    """

    def __init__(self, *, worker: bool) -> None:
        # a worker also gets SIGINT twice when Ctrl-C reaches its process group and the
        # controller forwards it; the controller keeps Python's own SIGINT handling
        self.signals = (signal.SIGTERM, signal.SIGINT) if worker else (signal.SIGTERM,)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._finishing = False

    def install(self) -> None:
        if self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._interrupt)

    def finishing(self) -> None:
        self._finishing = True

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            # None: a handler set outside Python; the default is the closest we can restore
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self._finishing:
            return
        self.received = signum
        raise KeyboardInterrupt(signal.Signals(signum).name)


class WorkerProcesses:
    """On the xdist controller: the workers' process ids, to forward an interruption.

    xdist does not publish them; execnet keeps each gateway's remote info (with the pid)
    once asked, and xdist asks while setting a worker up. Without it (another execnet),
    nothing is forwarded and execnet's own slower interruption applies.
    """

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}

    def pytest_testnodeready(self, node: Any) -> None:
        rinfo = getattr(node.gateway, "_cache_rinfo", None)
        pid = getattr(rinfo, "pid", None)
        if isinstance(pid, int) and pid != os.getpid():
            self.pids[str(node.gateway.id)] = pid

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self.pids.pop(str(node.gateway.id), None)

    def interrupt(self) -> None:
        for pid in self.pids.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)


def kept_answers(
    cache_dir: Path | None,
    records: Iterable[Record],
    *,
    repeats: int,
    base_url: str | None,
    model: str,
    generation: dict[str, Any],
) -> int | None:
    """How many answers to these records (each repeat counted) the response cache holds,
    so a rerun will not ask for them; None when the cache is off."""
    if cache_dir is None:
        return None
    from pytest_evalindex.run.cache import ResponseCache, cache_key

    if not base_url or not (cache_dir / "responses.sqlite3").exists():
        return 0
    keys = [
        cache_key(
            base_url=base_url,
            model=model,
            messages=[m.model_dump() for m in record.input],
            generation=generation,
            repeat=repeat,
        )
        for record in records
        for repeat in range(repeats)
    ]
    cache = ResponseCache(cache_dir)
    try:
        return cache.count_present(keys)
    finally:
        cache.close()


def shown_path(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it, for a message."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def keep_last_frame(excinfo: Any) -> None:
    """Cut an interruption's traceback to its last shown frame.

    Without ``--full-trace`` pytest prints only that frame's location, but it first renders
    the whole traceback with the source of every frame: over a second on a busy machine, in
    every xdist worker too, before the run can end."""
    traceback = excinfo.traceback
    for i in range(len(traceback) - 1, -1, -1):
        if not traceback[i].ishidden(excinfo):
            excinfo.traceback = traceback[i : i + 1]
            return
