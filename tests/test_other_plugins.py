"""The plugin beside plugins its users already run: pytest-randomly, pytest-rerunfailures,
pytest-timeout, pytest-html and pytest-json-report (all real, all installed by the dev extra).

Each test compares the results JSON with a plain run of the same index (no other plugin,
fixed order, no cache), counts the requests on the fake server's log, and reads the other
plugins' own reports.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.testing import FakeOpenAI, Fault

pytest_plugins = ["pytester"]

SPEC = """
name: coexist_index
count: 14
seed: 7
datasets:
  - name: capitals
    weight: 0.6
    task_type: knowledge
    tags: [en]
    adapter: general_qa
    source: capitals.jsonl
    fields: {id: id, input: question, target: answer}
    scorer: includes
  - name: sums
    weight: 0.4
    task_type: math
    tags: [en]
    adapter: general_qa
    source: sums.jsonl
    fields: {input: question, target: answer}
    scorer: numeric
"""

CAPITALS = [
    ("fr", "What is the capital of France?", "Paris"),
    ("de", "What is the capital of Germany?", "Berlin"),
    ("it", "What is the capital of Italy?", "Rome"),
    ("es", "What is the capital of Spain?", "Madrid"),
    ("pt", "What is the capital of Portugal?", "Lisbon"),
    ("jp", "What is the capital of Japan?", "Tokyo"),
]
SUMS = [(f"What is {a} plus {a + 1}?", str(2 * a + 1)) for a in range(1, 9)]
IDS = [f"capitals/{key}" for key, _q, _a in CAPITALS] + [f"sums/{i}" for i in range(len(SUMS))]
NODE_IDS = [f"coexist.yaml::{i.split('/')[0]}::{i}" for i in IDS]
SPAIN = "capital of Spain"
JAPAN = "capital of Japan"
# the one wrong answer; the markup must reach other plugins' reports escaped
WRONG = "Barcelona <b>surely</b>"
RANDOMLY_SEED = "4"


class Model:
    """Answers right except for Spain; counts the requests in flight at once."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.open = 0
        self.peak = 0

    async def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        # runs on the server's event loop: no lock needed around the counters
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.open -= 1
        question = messages[-1]["content"]
        for _key, q, capital in CAPITALS:
            if q == question:
                return WRONG if SPAIN in q else f"It is {capital}."
        return next(f"#### {total}" for q, total in SUMS if q == question)


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def server(model: Model) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=model) as fake:
        yield fake


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # the suite keeps pytest-randomly off in inner runs (conftest.py); here it is active
    # as it is for users who install it: no option needed
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    pytester.makefile(".yaml", coexist=SPEC)
    rows = [json.dumps({"id": k, "question": q, "answer": a}) for k, q, a in CAPITALS]
    (pytester.path / "capitals.jsonl").write_text("\n".join(rows) + "\n")
    rows = [json.dumps({"question": q, "answer": a}) for q, a in SUMS]
    (pytester.path / "sums.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def index_args(server: FakeOpenAI, results: str) -> list[str]:
    return ["--index", "coexist.yaml", "--index-base-url", server.base_url,
            "--index-model", "m", "--index-json", results]  # fmt: skip


def with_plugins(server: FakeOpenAI, results: str) -> list[str]:
    """A run with pytest-randomly active (a fixed seed, so a failure can be replayed)."""
    return [*index_args(server, results), "--randomly-seed", RANDOMLY_SEED]


def plain_run(project: pytest.Pytester, server: FakeOpenAI, *extra: str) -> dict[str, Any]:
    """The reference: no other plugin at work, test-set order, every record asked."""
    result = project.runpytest(
        *index_args(server, "plain.json"), "-p", "no:randomly", "--index-no-cache", *extra
    )
    assert result.ret in (0, 1), result.stdout.str()
    server.clear_log()
    return read_results(project, "plain.json")


def read_results(project: pytest.Pytester, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.path / name).read_text())
    return data


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """What must not change: the index, the tables and the samples, timings aside."""
    samples = [
        {k: v for k, v in s.items() if k not in ("latency_s", "cached")} for s in results["samples"]
    ]
    return {"index": results["index"], "tables": results["tables"], "samples": samples}


def asked(server: FakeOpenAI) -> Counter[str]:
    """How often each question reached the server, answered or not."""
    return Counter(r.json["messages"][-1]["content"] for r in server.requests if r.json)


def answered(server: FakeOpenAI) -> Counter[str]:
    return Counter(
        r.json["messages"][-1]["content"] for r in server.requests if r.json and r.status == 200
    )


def question(fragment: str) -> str:
    return next(q for _k, q, _a in CAPITALS if fragment in q)


def run_order(result: pytest.RunResult) -> list[str]:
    """Node ids in the order a serial ``-v`` run reports them."""
    pattern = re.compile(r"^(coexist\.yaml::\S+) (PASSED|MISSED|FAILED|RERUN)")
    return [m.group(1) for line in result.outlines if (m := pattern.match(line))]


def test_randomly_reorders_items_and_changes_nothing_else(
    project: pytest.Pytester, server: FakeOpenAI, model: Model, run_mode: list[str]
) -> None:
    expected = plain_run(project, server)
    model.peak = 0
    result = project.runpytest(*with_plugins(server, "randomly.json"), "-v", *run_mode)
    assert_outcomes(result, passed=13, missed=1)
    result.stdout.fnmatch_lines([f"Using --randomly-seed={RANDOMLY_SEED}"])
    if not run_mode:
        order = run_order(result)
        assert sorted(order) == sorted(NODE_IDS)
        assert order != NODE_IDS, "pytest-randomly did not reorder the items"
    # the results are ordered by the test set, whatever order the items ran in
    assert comparable(read_results(project, "randomly.json")) == comparable(expected)
    assert asked(server) == Counter(q for _k, q, _a in CAPITALS) + Counter(q for q, _t in SUMS)
    # the look-ahead follows the shuffled order: many requests in flight, not one an item
    assert model.peak >= 4


def test_rerun_of_an_error_asks_again_and_counts_the_record_once(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    expected = plain_run(project, server)
    # a 400 is not retried by the client: the first attempt of Japan's item is an error
    server.faults_for(JAPAN, [Fault.status_code(400)])
    result = project.runpytest(*with_plugins(server, "rerun.json"), "--reruns", "2", *run_mode)
    assert_outcomes(result, passed=13, missed=1, rerun=1)
    results = read_results(project, "rerun.json")
    # the last attempt wins: Japan passed, no error left, each record once
    assert comparable(results) == comparable(expected)
    assert results["index"]["errors"] == 0
    assert [s["id"] for s in results["samples"]] == IDS
    assert asked(server)[question(JAPAN)] == 2
    assert answered(server) == Counter(q for _k, q, _a in CAPITALS) + Counter(q for q, _t in SUMS)


def test_rerun_of_a_failed_answer_reuses_it(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    expected = plain_run(project, server)
    # --index-strict fails the missed item, so rerunfailures runs it again; without the
    # cache, only the answer kept in memory stops a second request
    result = project.runpytest(
        *with_plugins(server, "strict.json"),
        *("--index-strict", "--index-no-cache", "--reruns", "2"),
        *run_mode,
    )
    assert_outcomes(result, passed=13, failed=1, rerun=2)
    assert comparable(read_results(project, "strict.json")) == comparable(expected)
    assert max(asked(server).values()) == 1
    assert sum(asked(server).values()) == 14


def test_timeout_cuts_a_wait_and_the_rerun_waits_for_the_same_request(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    expected = plain_run(project, server)
    # Spain's answer takes 3 s: pytest-timeout (signal method) stops its item at 2 s; the
    # request stays in flight and the rerun waits for it instead of asking again
    server.faults_for(SPAIN, [Fault.slow(3.0)])
    result = project.runpytest(
        *with_plugins(server, "timeout.json"),
        *("--timeout", "2", "--timeout-method", "signal", "--reruns", "1"),
        *run_mode,
    )
    assert_outcomes(result, passed=13, missed=1, rerun=1)
    assert comparable(read_results(project, "timeout.json")) == comparable(expected)
    assert max(asked(server).values()) == 1


def test_timeout_without_rerun_is_an_error_sample(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    server.faults_for(SPAIN, [Fault.slow(3.0)])
    result = project.runpytest(
        *with_plugins(server, "timeout.json"), "--timeout", "2", "--timeout-method", "signal",
        *run_mode,
    )  # fmt: skip
    assert_outcomes(result, passed=13, failed=1)
    results = read_results(project, "timeout.json")
    spain = next(s for s in results["samples"] if s["id"] == "capitals/es")
    assert spain["outcome"] == "error"
    assert "Timeout" in spain["explanation"]
    assert (results["index"]["count"], results["index"]["errors"]) == (13, 1)
    assert max(asked(server).values()) == 1


def test_a_worker_killed_by_timeout_leaves_an_error_sample(
    project: pytest.Pytester, server: FakeOpenAI
) -> None:
    # the thread method ends the worker's process; worksteal does not run the item again
    server.faults_for(SPAIN, [Fault.slow(3.0)])
    result = project.runpytest(
        *with_plugins(server, "crash.json"),
        *("--timeout", "1.5", "--timeout-method", "thread", "-n", "2", "--dist", "worksteal"),
    )
    assert_outcomes(result, passed=13, failed=1)
    result.stdout.fnmatch_lines(["*capitals/es*crashed*"])
    results = read_results(project, "crash.json")
    assert [s["id"] for s in results["samples"]] == IDS
    spain = next(s for s in results["samples"] if s["id"] == "capitals/es")
    assert spain["outcome"] == "error"
    assert "crashed" in spain["explanation"]
    assert (results["index"]["count"], results["index"]["errors"]) == (13, 1)


def html_report_tests(path: Path) -> dict[str, list[dict[str, Any]]]:
    """pytest-html's per-test data: node id -> one entry per report shown."""
    text = path.read_text("utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob is not None, "pytest-html's report carries no data blob"
    tests: dict[str, list[dict[str, Any]]] = json.loads(html.unescape(blob.group(1)))["tests"]
    return tests


def test_html_json_and_junit_reports_list_the_index_items(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    server.faults_for(JAPAN, [Fault.status_code(400)])
    expected = plain_run(project, server)
    # Japan fails on both attempts: an error in the index, a failure in every report
    server.faults_for(JAPAN, [Fault.status_code(400), Fault.status_code(400)])
    result = project.runpytest(
        *with_plugins(server, "reports.json"),
        *("--reruns", "1", "--timeout", "60"),
        *("--html", "report.html", "--self-contained-html"),
        *("--json-report", "--json-report-file", "report.json"),
        *("--junitxml", "junit.xml"),
        *run_mode,
    )
    assert_outcomes(result, passed=12, missed=1, failed=1, rerun=1)
    assert comparable(read_results(project, "reports.json")) == comparable(expected)
    assert answered(server)[question(JAPAN)] == 0
    assert max(answered(server).values()) == 1
    outcome = {node: "passed" for node in NODE_IDS}
    outcome[NODE_IDS[3]], outcome[NODE_IDS[5]] = "missed", "failed"

    # pytest-json-report: every item, with our missed status
    report = json.loads((project.path / "report.json").read_text())
    assert {t["nodeid"]: t["outcome"] for t in report["tests"]} == outcome
    assert report["summary"]["missed"] == 1

    # pytest-html: every item; the missed and failed ones carry their details, escaped
    tests = html_report_tests(project.path / "report.html")
    assert set(tests) == set(NODE_IDS)
    assert tests[NODE_IDS[3]][-1]["result"] == "Passed"
    assert tests[NODE_IDS[5]][-1]["result"] == "Failed"
    details = [e["content"] for e in tests[NODE_IDS[3]][-1]["extras"]]
    assert len(details) == 1
    assert "[missed] score=0.0" in details[0]
    assert html.escape(WRONG) in details[0] and WRONG not in details[0]
    assert "target:      Madrid" in details[0]
    assert any("HTTP 400" in e["content"] for e in tests[NODE_IDS[5]][-1]["extras"])
    assert all(not entry["extras"] for node in NODE_IDS[6:] for entry in tests[node])

    # JUnit: rerunfailures adds an empty testcase for each rerun attempt; the last
    # testcase of each item holds its final outcome
    root = ET.parse(project.path / "junit.xml").getroot()
    last: dict[str, ET.Element] = {}
    for case in root.iter("testcase"):
        last[case.get("name", "")] = case
    assert set(last) == set(IDS)
    failed = {name for name, case in last.items() if case.find("failure") is not None}
    assert failed == {"capitals/jp"}
