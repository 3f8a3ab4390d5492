"""Requests in flight beyond -n, the response cache, crash resumption, a rejected key."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.run.cache import ResponseCache, cache_key
from pytest_evalindex.run.collector_pacing import RUN_THRESHOLD
from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

N_RECORDS = 40
SPEC = f"""
name: load_index
sampler: uniform
count: {N_RECORDS}
datasets:
  - name: echo
    adapter: general_qa
    source: rows.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""


class OpenCounter:
    """A responder that answers ``A<i>`` after ``delay`` and records peak concurrency."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
        try:
            time.sleep(self.delay)
            return "A" + messages[-1]["content"].split()[-1]
        finally:
            with self.lock:
                self.open -= 1


@pytest.fixture
def load_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", load=SPEC)
    rows = [json.dumps({"id": f"r{i}", "q": f"question {i}", "a": f"A{i}"}) for i in range(40)]
    (pytester.path / "rows.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run_args(server: FakeOpenAI, *extra: str) -> list[str]:
    return ["--index", "load.yaml", "--index-base-url", server.base_url, "--index-model", "m",
            *extra]  # fmt: skip


def prompts(server: FakeOpenAI) -> list[str]:
    return [r.json["messages"][-1]["content"] for r in server.requests if r.json]


def test_requests_in_flight_beyond_processes(
    load_project: pytest.Pytester, run_mode: list[str]
) -> None:
    low = 6 if run_mode else 7
    counter = OpenCounter(delay=0.25)
    with FakeOpenAI(responder=counter) as fake:
        result = load_project.runpytest(*run_args(fake, "--index-concurrency", "8"), *run_mode)
    assert_outcomes(result, passed=N_RECORDS)
    # the server saw (almost) the full concurrency at once, never more
    assert low <= counter.peak <= 8
    assert sorted(prompts(fake)) == sorted(f"question {i}" for i in range(N_RECORDS))


def test_four_workers_never_send_a_request_twice(load_project: pytest.Pytester) -> None:
    counter = OpenCounter(delay=0.05)
    with FakeOpenAI(responder=counter) as fake:
        result = load_project.runpytest(*run_args(fake, "--index-concurrency", "8"), "-n", "4")
    assert_outcomes(result, passed=N_RECORDS)
    counts = Counter(prompts(fake))
    assert len(counts) == N_RECORDS
    assert max(counts.values()) == 1
    assert counter.peak <= 8


def test_scores_match_a_concurrency_one_run(load_project: pytest.Pytester) -> None:
    def sometimes_wrong(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        number = int(messages[-1]["content"].split()[-1])
        return f"A{number}" if number % 3 else "wrong"

    def scores(path: str) -> list[tuple[str, float]]:
        data = json.loads((load_project.path / path).read_text())
        return [(s["id"], s["score"]) for s in data["samples"]]

    with FakeOpenAI(responder=sometimes_wrong, latency=0.02) as fake:
        load_project.runpytest(
            *run_args(fake, "--index-concurrency", "1", "--index-no-cache"),
            "--index-json", "one.json",
        )  # fmt: skip
        load_project.runpytest(
            *run_args(fake, "--index-concurrency", "16", "--index-no-cache"),
            "-n", "2", "--index-json", "many.json",
        )  # fmt: skip
    assert scores("one.json") == scores("many.json")
    assert sum(score for _id, score in scores("one.json")) == 26


def test_rerun_is_answered_from_the_cache(load_project: pytest.Pytester) -> None:
    with FakeOpenAI(responder=OpenCounter(delay=0.0)) as fake:
        first = load_project.runpytest(*run_args(fake))
        assert_outcomes(first, passed=N_RECORDS)
        assert fake.request_count == N_RECORDS
        fake.clear_log()
        second = load_project.runpytest(*run_args(fake), "-n", "2")
        assert_outcomes(second, passed=N_RECORDS)
        assert fake.request_count == 0
        second.stdout.fnmatch_lines(["usage*requests*cached*", "total*0*40*"])
        third = load_project.runpytest(*run_args(fake, "--index-no-cache"))
        assert_outcomes(third, passed=N_RECORDS)
        assert fake.request_count == N_RECORDS
    data = json.loads((load_project.path / ".evalindex" / "last.json").read_text())
    assert data["usage"]["total"]["requests"] == N_RECORDS
    assert data["usage"]["total"]["completion_tokens"] == N_RECORDS
    assert data["usage"]["dataset"][0]["latency_p50_s"] is not None


def test_errors_are_never_cached(load_project: pytest.Pytester, run_mode: list[str]) -> None:
    broken = {"on": True}

    def reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if broken["on"] and messages[-1]["content"] == "question 7":
            return {"status": 400, "error": "filtered"}
        return "A" + messages[-1]["content"].split()[-1]

    with FakeOpenAI(responder=reply) as fake:
        first = load_project.runpytest(*run_args(fake), *run_mode)
        assert_outcomes(first, passed=N_RECORDS - 1, failed=1)
        broken["on"] = False
        fake.clear_log()
        second = load_project.runpytest(*run_args(fake), *run_mode)
        assert_outcomes(second, passed=N_RECORDS)
        assert prompts(fake) == ["question 7"]


def test_rejected_key_stops_the_run_with_one_message(
    load_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_mode: list[str]
) -> None:
    monkeypatch.setenv("EVALINDEX_KEY", "sk-not-valid-123")
    with FakeOpenAI(api_key="sk-valid", default="x") as fake:
        result = load_project.runpytest(
            *run_args(fake, "--index-api-key-env", "EVALINDEX_KEY", "--index-concurrency", "4"),
            *run_mode,
        )
        assert fake.request_count <= 6
    out = result.stdout.str()
    assert out.count("Interrupted: evalindex: the model server rejected the API key") == 1, out
    failed = result.parseoutcomes()["failed"]
    # each process that runs items learns of the rejection from its own first answer: one
    # failure serially; under -n 2 one a worker, unless the stop reaches a worker first
    assert failed == 1 if not run_mode else failed in (1, 2), out
    errors = json.loads((load_project.path / ".evalindex" / "last.partial.json").read_text())
    assert errors["index"]["errors"] == failed
    # the plugin stopped the run, in both modes: no Ctrl-C, so no advice to run it again
    assert errors["run"]["partial"] == {"ran": failed, "of": N_RECORDS, "why": "stopped"}
    assert "interrupted:" not in out
    assert "sk-not-valid-123" not in out
    for path in (load_project.path / ".evalindex").rglob("*"):
        if path.is_file():
            assert b"sk-not-valid-123" not in path.read_bytes()


def test_cache_keys_cover_everything_that_changes_the_answer() -> None:
    base = {
        "base_url": "http://h/v1",
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "generation": {"temperature": 0},
    }
    key = cache_key(**base)  # type: ignore[arg-type]
    assert key == cache_key(**{**base, "base_url": "http://h/v1/"})  # type: ignore[arg-type]
    for change in (
        {"model": "n"},
        {"base_url": "http://other/v1"},
        {"messages": [{"role": "user", "content": "q2"}]},
        {"generation": {"temperature": 1}},
        {"repeat": 1},
    ):
        assert cache_key(**{**base, **change}) != key  # type: ignore[arg-type]


def test_cache_is_shared_between_processes(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("k", {"content": "hello"})
    script = (
        "import sys; from pathlib import Path; "
        "from pytest_evalindex.run.cache import ResponseCache; "
        "c = ResponseCache(Path(sys.argv[1])); print(c.get('k')['content']); "
        "c.put('from-child', {'content': 'hi'}); c.close()"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "hello"
    assert cache.get("from-child") == {"content": "hi"}
    assert len(cache) == 2
    cache.close()


def test_killed_run_resumes_without_paying_twice(
    load_project: pytest.Pytester, run_mode: list[str]
) -> None:
    counter = OpenCounter(delay=0.15)
    with FakeOpenAI(responder=counter) as fake:
        args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                *run_args(fake, "--index-concurrency", "4"), *run_mode]  # fmt: skip
        process = subprocess.Popen(
            args, cwd=load_project.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while fake.request_count < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        first_run = set(prompts(fake))
        assert 12 <= len(first_run) < N_RECORDS

        database = load_project.path / ".evalindex" / "cache" / "responses.sqlite3"
        with sqlite3.connect(database) as conn:
            stored = conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        assert stored >= 8

        fake.clear_log()
        result = load_project.runpytest(*run_args(fake, "--index-concurrency", "4"), *run_mode)
        assert_outcomes(result, passed=N_RECORDS)
        second_run = prompts(fake)
    # only the records with no stored answer are asked again, each once
    assert len(second_run) == len(set(second_run)) == N_RECORDS - stored
    data = json.loads((load_project.path / ".evalindex" / "last.json").read_text())
    assert sum(1 for s in data["samples"] if s["cached"]) == stored


def test_worksteal_says_how_far_it_looks_ahead(load_project: pytest.Pytester) -> None:
    counter = OpenCounter(delay=0.05)
    with FakeOpenAI(responder=counter) as fake:
        result = load_project.runpytest(
            *run_args(fake, "--index-concurrency", "16"), "-n", "2", "--dist", "worksteal"
        )
        asked = sorted(prompts(fake))
        plain = load_project.runpytest(*run_args(fake, "--index-concurrency", "16"), "-n", "2")
    assert_outcomes(result, passed=N_RECORDS)
    header = "evalindex: --dist worksteal: a worker cannot know which items it runs next"
    assert result.stdout.str().count(header) == 1
    # a worker's current and next record: never more than two requests each
    assert counter.peak <= 4
    assert asked == sorted(f"question {i}" for i in range(N_RECORDS))
    assert "--dist worksteal" not in plain.stdout.str()


class JudgeCounter(OpenCounter):
    """Answers the model's questions at once; holds each judge verdict for ``delay``."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.judge_open = 0
        self.judge_peak = 0

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        if body.get("model") != "j":
            return "A" + messages[-1]["content"].split()[-1]
        with self.lock:
            self.judge_open += 1
            self.judge_peak = max(self.judge_peak, self.judge_open)
        try:
            time.sleep(self.delay)
            return "GRADE: CORRECT"
        finally:
            with self.lock:
                self.judge_open -= 1


def test_judge_verdicts_share_the_runs_concurrency(
    load_project: pytest.Pytester, run_mode: list[str]
) -> None:
    """Verdicts are asked on the run's loop: several in flight at once (not one a scoring
    thread), never more than --index-concurrency together with the model's requests."""
    judged = SPEC.replace("scorer: exact_match", "scorer: {name: judge, args: {template: binary}}")
    load_project.makefile(".yaml", load=judged + "judge: {name: j}\n")
    counter = JudgeCounter(delay=0.2)
    with FakeOpenAI(responder=counter) as fake:
        result = load_project.runpytest(*run_args(fake, "--index-concurrency", "8"), *run_mode)
        judged_prompts = [r for r in fake.requests if r.json and r.json.get("model") == "j"]
    assert_outcomes(result, passed=N_RECORDS)
    assert len(judged_prompts) == N_RECORDS
    assert counter.judge_peak >= 4, counter.judge_peak
    assert counter.judge_peak <= 8


def test_fewer_garbage_collections_while_items_run_and_the_thresholds_come_back(
    load_project: pytest.Pytester, run_mode: list[str]
) -> None:
    """Between collection and the finish the collector's first threshold is raised
    (run.collector_pacing); afterwards the process has its own thresholds again."""
    load_project.makeconftest(
        """
        import gc
        import pytest

        @pytest.fixture(scope="session")
        def model():
            def answer(record):
                name = "threshold-" + record.id.replace("/", "-") + ".txt"
                with open(name, "w") as out:
                    out.write(str(gc.get_threshold()[0]))
                return "A" + record.input[-1].content.split()[-1]
            return answer
        """
    )
    before = gc.get_threshold()
    result = load_project.runpytest("--index", "load.yaml", *run_mode)
    assert_outcomes(result, passed=N_RECORDS)
    seen = {int(p.read_text()) for p in load_project.path.glob("threshold-*.txt")}
    assert seen == {RUN_THRESHOLD}
    assert gc.get_threshold() == before
