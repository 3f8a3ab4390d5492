"""The request pool an interrupted run walks away from."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_evalindex.run.threads import DaemonPool


def test_results_errors_and_the_thread_limit() -> None:
    pool = DaemonPool(2, name="limit")
    futures = [pool.submit(lambda x: x * 2, k) for k in range(20)]
    assert [f.result(timeout=5) for f in futures] == [2 * k for k in range(20)]
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=5)
    assert len([t for t in threading.enumerate() if t.name.startswith("limit-")]) <= 2
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_shutdown_without_waiting_leaves_running_calls_and_drops_queued_ones() -> None:
    release = threading.Event()
    pool = DaemonPool(1, name="abandon")
    running = pool.submit(release.wait, 30)
    queued = pool.submit(lambda: "never")
    time.sleep(0.1)
    started = time.monotonic()
    pool.shutdown(wait=False, cancel_futures=True)
    assert time.monotonic() - started < 1.0
    assert queued.cancelled()
    assert not running.done()
    # daemon threads: the interpreter does not wait for them at exit
    threads = [t for t in threading.enumerate() if t.name.startswith("abandon-")]
    assert threads and all(t.daemon for t in threads)
    release.set()
    assert running.result(timeout=5) is True
