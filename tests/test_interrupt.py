"""Ctrl-C and SIGTERM on a real ``pytest --index`` process against a slow fake server.

The first ten records are answered at once, the rest only after a long delay. Once the ten
are in the response cache the test signals the process and checks that it ends promptly
(it does not wait for the requests in flight), says how many answers are kept, writes the
partial results, exits with pytest's INTERRUPTED status, and that running the same command
again asks only for the records that were not answered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

RECORDS = 30
FAST = 10  # records q0..q9 are answered at once
SLOW_S = 30.0  # the others, while the server is slow: far beyond the bound below
# from the signal to the process's end; generous for a busy 2-core machine, far below the
# wait for a request in flight
PROMPT_EXIT_S = 6.0
WORKTREE = Path(__file__).resolve().parents[1]

SPEC = f"""
name: slow_index
count: {RECORDS}
seed: 1
datasets:
  - name: qs
    weight: 1
    task_type: qa
    adapter: general_qa
    source: qs.jsonl
    fields: {{id: id, input: question, target: answer}}
    scorer: includes
"""


def number_in(body: dict[str, Any]) -> int:
    return int(re.findall(r"\d+", body["messages"][-1]["content"])[0])


class SlowServer:
    """FakeOpenAI that is slow for every record but the first ten until ``slow`` is off."""

    def __init__(self) -> None:
        self.slow = threading.Event()
        self.slow.set()
        self.fake = FakeOpenAI(
            responder=lambda messages, body: str(number_in(body)),
            latency=lambda body: SLOW_S if self.slow.is_set() and number_in(body) >= FAST else 0,
        )

    def asked(self) -> list[int]:
        """The record numbers of the chat requests received, in order."""
        return [number_in(r.json) for r in self.fake.requests if r.path.endswith("/completions")]


@pytest.fixture
def server() -> Iterator[SlowServer]:
    slow = SlowServer()
    with slow.fake:
        yield slow


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", slow=SPEC)
    rows = [{"id": f"q{k}", "question": f"Question {k}?", "answer": str(k)} for k in range(RECORDS)]
    (pytester.path / "qs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pytester


def command(server: SlowServer, mode: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "--index", "slow.yaml",
        "--index-base-url", server.fake.base_url, "--index-model", "m",
        "--index-json", "out.json", "-p", "no:cacheprovider",
        # hypothesis's plugin imports hypothesis at the end of every run: seconds here
        "-p", "no:hypothesispytest", *mode,
    ]  # fmt: skip


def cached_answers(root: Path) -> int:
    path = root / ".evalindex" / "cache" / "responses.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:  # created, not yet initialised
        return 0


def start(project: pytest.Pytester, args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKTREE), str(project.path)])}
    return subprocess.Popen(
        args, cwd=project.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interruption_keeps_answers_writes_partial_results_and_resumes(
    project: pytest.Pytester, server: SlowServer, run_mode: list[str], signum: int
) -> None:
    args = command(server, run_mode)
    process = start(project, args)
    try:
        deadline = time.monotonic() + 120
        while cached_answers(project.path) < FAST:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the fast answers never arrived"
            time.sleep(0.05)
        # the fast items finish scoring and report; the slow requests stay in flight
        time.sleep(1.5)
        in_flight = len(server.asked()) - FAST
        assert in_flight > 0
        signalled = time.monotonic()
        process.send_signal(signum)
        output, _ = process.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 2, output  # pytest.ExitCode.INTERRUPTED
    assert took < PROMPT_EXIT_S, f"took {took:.1f}s after the signal\n{output}"
    kept = cached_answers(project.path)
    assert kept == FAST
    assert (
        f"interrupted: {kept} answers are kept in .evalindex/cache; "
        "run the same command again to resume" in output
    ), output
    assert f"partial: {FAST} of {RECORDS} records (interrupted)" in output, output
    results = json.loads((project.path / "out.json").read_text())
    assert results["run"]["partial"] == {"ran": FAST, "of": RECORDS, "why": "interrupted"}
    assert [s["id"] for s in results["samples"]] == [f"qs/q{k}" for k in range(FAST)]
    partial_last = project.path / ".evalindex" / "last.partial.json"
    assert json.loads(partial_last.read_text())["run"]["partial"]["why"] == "interrupted"
    assert not (project.path / ".evalindex" / "last.json").exists()

    # the rerun: fast now, and only the records that were not answered are asked for
    first_run = server.asked()
    server.slow.clear()
    server.fake.clear_log()
    rerun = start(project, args)
    output, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, output
    asked_again = server.asked()
    assert sorted(asked_again) == list(range(FAST, RECORDS)), output
    assert not set(asked_again) & set(range(FAST)), "an answered record was asked again"
    assert set(first_run) >= set(range(FAST))
    whole = json.loads((project.path / "out.json").read_text())
    assert whole["run"]["partial"] is None
    assert whole["index"]["count"] == RECORDS
    # the whole run's file replaces the partial one
    assert (project.path / ".evalindex" / "last.json").exists()
    assert not partial_last.exists()
