"""The process's one event loop, in a background thread, where every request runs.

pytest runs items on the main thread; a request is a coroutine on this loop, so hundreds
can be in flight while the main thread waits only on the answer its item needs. Measured on
2 cores, 64 threads of a synchronous client cost pytest's main thread a third of its time
waiting for the GIL; one loop thread sends the same requests for a fraction of the CPU.
The thread is a daemon: an interrupted run can leave without waiting for a request.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Coroutine
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self, name: str = "evalindex-requests") -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start ``coroutine`` on the loop; its result arrives on the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def start_all(
        self, coroutines: list[Coroutine[Any, Any, T]], tasks: set[asyncio.Task[T]]
    ) -> list[Future[T]]:
        """Start many coroutines with one wake-up of the loop (each wake-up hands the GIL
        between threads, and on 2 cores between cores too); each running task is in
        ``tasks`` until it ends."""
        futures: list[Future[T]] = [Future() for _ in coroutines]

        def start() -> None:
            for coroutine, future in zip(coroutines, futures, strict=True):
                if not future.set_running_or_notify_cancel():
                    coroutine.close()
                    continue
                task = self.loop.create_task(coroutine)
                tasks.add(task)
                task.add_done_callback(functools.partial(_settle, future, tasks))

        self.loop.call_soon_threadsafe(start)
        return futures

    def cancel_all(self, tasks: set[asyncio.Task[Any]]) -> None:
        """Cancel the running tasks of ``tasks`` (from any thread)."""
        self.loop.call_soon_threadsafe(lambda: [task.cancel() for task in list(tasks)])

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for it (never call from the loop)."""
        return self.submit(coroutine).result()


def _settle(future: Future[T], tasks: set[asyncio.Task[T]], task: asyncio.Task[T]) -> None:
    tasks.discard(task)
    if task.cancelled():
        future.set_exception(CancelledError())  # a running Future cannot be cancelled
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


_shared: BackgroundLoop | None = None
_shared_lock = threading.Lock()


def shared_loop() -> BackgroundLoop:
    """The process's loop, started on first use and kept for the life of the process
    (pytester runs many sessions in one process: they share it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = BackgroundLoop()
        return _shared
