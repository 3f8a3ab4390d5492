"""Gates, baselines and comparisons, repeats and shards through the plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

N = 200
SPEC = f"""
name: upgrade
sampler: uniform
count: {N}
seed: 3
gates: ["count >= 10"]
datasets:
  - name: facts
    task_type: knowledge
    tags: [en]
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""


def right_when(predicate: Callable[[int], bool]) -> Callable[..., str]:
    """A model that answers record i right exactly when predicate(i)."""

    def reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        number = int(messages[-1]["content"].split()[-1])
        return f"A{number}" if predicate(number) else "wrong"

    return reply


@pytest.fixture
def upgrade(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", upgrade=SPEC)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(N)]
    (pytester.path / "facts.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run(pytester: pytest.Pytester, server: FakeOpenAI, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--index", "upgrade.yaml", "--index-base-url", server.base_url, "--index-model", "m",
        "--index-no-cache", "-p", "no:cacheprovider", *args,
    )  # fmt: skip


def test_gate_expressions_decide_the_exit_status(upgrade: pytest.Pytester) -> None:
    with FakeOpenAI(responder=right_when(lambda i: i % 10 != 0)) as fake:
        ok = run(upgrade, fake, "--index-gate", "index>=0.85", "--index-gate", "tag:en>=80%")
        bad = run(upgrade, fake, "--index-gate", "task_type:knowledge>=0.95", "-n", "2")
    assert ok.ret == 0
    ok.stdout.fnmatch_lines(["gates:", "*count >= 10*PASS*", "*index>=0.85*0.9000*PASS*"])
    assert bad.ret == 1
    bad.stdout.fnmatch_lines(
        ["*task_type:knowledge>=0.95*0.9000*FAIL*", "FAIL task_type:knowledge>=0.95: *"]
    )


def test_malformed_gate_is_a_usage_error_before_any_request(upgrade: pytest.Pytester) -> None:
    with FakeOpenAI(default="x") as fake:
        result = run(upgrade, fake, "--index-gate", "tag:en=>0.3")
        assert fake.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--index-gate*unknown operator*"])


def test_missing_gate_row_stops_before_any_request_naming_the_rows_that_exist(
    upgrade: pytest.Pytester,
) -> None:
    with FakeOpenAI(responder=right_when(lambda i: True)) as fake:
        result = run(upgrade, fake, "--index-gate", "tag:zh>=0.3")
        assert fake.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*gate 'tag:zh>=0.3': the test set has no tag named 'zh' (tags: en)*"]
    )


def test_degraded_model_fails_the_comparison_and_same_model_does_not(
    upgrade: pytest.Pytester,
) -> None:
    with FakeOpenAI(responder=right_when(lambda i: i % 10 != 0)) as good:
        saved = run(upgrade, good, "--index-save", "baseline")
        assert saved.ret == 0
        saved.stdout.fnmatch_lines(["saved this run as *0001_baseline.json"])
        again = run(upgrade, good, "--index-compare", "--index-compare-fail", "index:2pp")
    assert again.ret == 0, again.stdout.str()
    again.stdout.fnmatch_lines(["comparison with 0001_baseline.json:", "*index*+0.0*"])

    with FakeOpenAI(responder=right_when(lambda i: i % 10 not in (0, 3, 7))) as worse:
        result = run(
            upgrade, worse, "--index-compare", "1", "--index-compare-fail", "index:2pp",
            "--index-html", "report.html", "-n", "2",
        )  # fmt: skip
    assert result.ret == 1
    out = result.stdout.str()
    assert "passed -> missed" in out or "passed→missed" in out or "passed_to_missed" in out
    result.stdout.fnmatch_lines(["FAIL *index dropped*p=*"])
    assert result.stdout.str().count("index dropped") == 1
    html = (upgrade.path / "report.html").read_text("utf-8")
    assert "passed_to_missed" in html


def test_compare_without_saved_runs_is_a_usage_error(upgrade: pytest.Pytester) -> None:
    with FakeOpenAI(default="x") as fake:
        result = run(upgrade, fake, "--index-compare")
        assert fake.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no saved runs*--index-save*"])


def test_different_test_sets_are_refused_unless_intersection(
    upgrade: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=right_when(lambda i: True)) as fake:
        assert run(upgrade, fake, "--index-save", *run_mode).ret == 0
        fake.clear_log()
        refused = run(upgrade, fake, "--index-compare", "--index-count", "150", *run_mode)
        assert fake.request_count == 0  # decided before the first request
        allowed = run(
            upgrade, fake, "--index-compare", "--index-count", "150",
            "--index-compare-intersection", *run_mode,
        )  # fmt: skip
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(["ERROR: evalindex: comparison with *refused*"])
    assert allowed.ret == 0
    allowed.stdout.fnmatch_lines(["comparison with 0001_run.json:"])


def test_repeats_reduce_and_report_flaky_samples(
    upgrade: pytest.Pytester, run_mode: list[str]
) -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        text = messages[-1]["content"]
        with lock:
            calls[text] = calls.get(text, 0) + 1
            nth = calls[text]
        number = int(text.split()[-1])
        # records 0-9 are right only on their first ask
        return f"A{number}" if number >= 10 or nth == 1 else "wrong"

    with FakeOpenAI(responder=flaky) as fake:
        result = run(upgrade, fake, "--index-repeat", "3", "--index-reducer", "majority", *run_mode)
        assert fake.request_count == 3 * N
    assert_outcomes(result, passed=N - 10, missed=10)
    result.stdout.fnmatch_lines(
        ["usage*", "total*600*", "flaky samples:", "10 of 200 samples*", "*facts/0*missed 2*"]
    )
    data = json.loads((upgrade.path / ".evalindex" / "last.json").read_text())
    first = next(s for s in data["samples"] if s["id"] == "facts/0")
    # the three asks run concurrently: which one the server saw first varies
    assert sorted(r["outcome"] for r in first["repeats"]) == ["missed", "missed", "passed"]
    assert first["score"] == 0.0


def test_shards_merged_equal_one_run(upgrade: pytest.Pytester) -> None:
    with FakeOpenAI(responder=right_when(lambda i: i % 7 != 0)) as fake:
        whole = run(upgrade, fake, "--index-json", "whole.json")
        one = run(upgrade, fake, "--index-shard", "1/2", "--index-json", "s1.json")
        two = run(upgrade, fake, "--index-shard", "2/2", "--index-json", "s2.json", "-n", "2")
    assert whole.ret == one.ret == two.ret == 0
    counts = [json.loads((upgrade.path / f).read_text())["index"]["count"] for f in
              ("s1.json", "s2.json")]  # fmt: skip
    assert sum(counts) == N and min(counts) > 50
    merged = subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", "merge", "s1.json", "s2.json",
         "-o", "merged.json"],
        cwd=upgrade.path, capture_output=True, text=True,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    a = json.loads((upgrade.path / "whole.json").read_text())
    b = json.loads((upgrade.path / "merged.json").read_text())
    assert a["index"] == b["index"]
    assert a["tables"] == b["tables"]
    assert [s["id"] for s in a["samples"]] == [s["id"] for s in b["samples"]]


JUDGED = """
name: judged
datasets:
  - name: qa
    adapter: general_qa
    source: qa.jsonl
    fields: {id: id, input: q, target: a}
    scorer: {name: judge, args: {template: binary}}
"""


def test_judge_scored_dataset_uses_the_judge_and_its_cache(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    pytester.makefile(".yaml", judged=JUDGED)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(6)]
    (pytester.path / "qa.jsonl").write_text("\n".join(rows) + "\n")

    def reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        if body["model"] == "judge-m":
            # the judge sees the gold target and the answer; even answers are right
            return (
                "GRADE: CORRECT"
                if "A0" in str(messages) or "A2" in str(messages)
                else ("GRADE: INCORRECT")
            )
        return "A" + messages[-1]["content"].split()[-1]

    args = ["--index", "judged.yaml", "--index-model", "m", "--index-judge-model", "judge-m",
            "-p", "no:cacheprovider", *run_mode]  # fmt: skip
    with FakeOpenAI(responder=reply) as fake:
        first = pytester.runpytest("--index-base-url", fake.base_url, *args)
        judge_calls = [r for r in fake.requests if r.json and r.json["model"] == "judge-m"]
        assert len(judge_calls) == 6
        fake.clear_log()
        second = pytester.runpytest("--index-base-url", fake.base_url, *args)
        assert fake.request_count == 0  # answers and verdicts both come from the cache
    assert_outcomes(first, passed=2, missed=4)
    assert_outcomes(second, passed=2, missed=4)


def test_judge_scorer_without_a_judge_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", judged=JUDGED)
    (pytester.path / "qa.jsonl").write_text('{"id": 1, "q": "x", "a": "y"}\n')
    result = pytester.runpytest("--index", "judged.yaml", "--index-base-url", "http://x/v1")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*judge*--index-judge-model*"])
