"""A thread pool that an interrupted run can walk away from.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so a
run stopped with Ctrl-C would still wait for every request in flight, up to the request
timeout. This pool's threads are daemons: ``shutdown(wait=False)`` drops the queued work at
once and leaves the running calls to finish, or to die with the process. A request's answer
that arrives before then is still stored in the response cache by the call itself.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Task = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """``submit(fn, *args) -> Future`` on up to ``max_workers`` daemon threads."""

    def __init__(self, max_workers: int, *, name: str) -> None:
        self.max_workers = max(1, max_workers)
        self.name = name
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # released by a thread each time it is free for more work
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put((future, fn, args))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return future

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            future, fn, args = task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as exc:  # the caller of result() sees it
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del task, future
            self._idle.release()

    def shutdown(self, *, wait: bool = True, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``cancel_futures`` drop what has not started; with
        ``wait`` wait for the running calls, else leave them behind."""
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                while True:
                    try:
                        task = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if task is not None:
                        task[0].cancel()
            for _ in self._threads:
                self._queue.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()
