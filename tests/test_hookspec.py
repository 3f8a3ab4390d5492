"""The plugin's own hooks, implemented by a conftest.py of the project under test."""

from __future__ import annotations

import json

import pytest
from helpers import assert_outcomes

from pytest_evalindex.testing import FakeOpenAI

SPEC = """
name: hooked
datasets:
  - name: qa
    adapter: general_qa
    source: qa.jsonl
    fields: {input: question, target: answer}
    scorer: exact_match
"""

CONFTEST = """
import json
import os


def pytest_evalindex_results(config, results):
    # where and how often it is called: once, never on an xdist worker
    with open("results_calls.jsonl", "a") as calls:
        calls.write(json.dumps({"worker": hasattr(config, "workerinput")}) + "\\n")
    results["run"]["ticket"] = "EV-1"
    for sample in results["samples"]:
        sample["reviewed"] = sample["outcome"] == "passed"
    # every later reader sees the change: the gate below fails on this score
    results["index"]["score"] = 0.25


def pytest_evalindex_summary(config, results, lines):
    assert results["run"]["ticket"] == "EV-1"
    lines.insert(1, f"ticket {results['run']['ticket']}: {len(results['samples'])} samples")
    lines.append("reviewed by the team")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", hooked=SPEC)
    rows = [{"question": f"q{i}", "answer": "yes"} for i in range(4)]
    (pytester.path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pytester.makeconftest(CONFTEST)
    return pytester


def test_hooks_change_results_and_summary(project: pytest.Pytester, run_mode: list[str]) -> None:
    with FakeOpenAI(answers={"q0": "yes", "q1": "yes", "q2": "yes", "q3": "no"}) as server:
        result = project.runpytest(
            "--index",
            "hooked.yaml",
            "--index-base-url",
            server.base_url,
            "--index-json",
            "out.json",
            "--index-fail-under",
            "0.5",
            *run_mode,
        )
    assert result.ret == 1, result.stdout.str()
    assert_outcomes(result, passed=3, missed=1)
    calls = (project.path / "results_calls.jsonl").read_text().splitlines()
    assert [json.loads(c) for c in calls] == [{"worker": False}]
    written = json.loads((project.path / "out.json").read_text())
    assert written == json.loads((project.path / ".evalindex" / "last.json").read_text())
    assert written["run"]["ticket"] == "EV-1"
    assert written["index"]["score"] == 0.25
    assert [s["reviewed"] for s in written["samples"]] == [True, True, True, False]
    out = result.stdout.str()
    start = out.index("evalindex: hooked")
    summary = out[start:].splitlines()[1:]
    assert summary[0].startswith("index hooked: 0.2500 ")
    assert summary[1] == "ticket EV-1: 4 samples"
    assert "reviewed by the team" in summary
    result.stdout.fnmatch_lines(["FAIL hooked: index 0.2500 is below --index-fail-under 0.5"])


def test_hooks_are_registered_for_every_run(pytester: pytest.Pytester) -> None:
    # a conftest with a misspelt hook name is refused; ours are known even without --index
    pytester.makeconftest(
        "def pytest_evalindex_results(config, results): pass\n"
        "def pytest_evalindex_summary(config, results, lines): pass\n"
    )
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest()
    assert result.ret == 0
    assert_outcomes(result, passed=1)
    pytester.makeconftest("def pytest_evalindex_result(config, results): pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(["*unknown hook 'pytest_evalindex_result' in plugin*"])
