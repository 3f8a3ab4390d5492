"""The seed article's RAG index situation, rebuilt and checked number by number."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

SPEC = """
name: rag_index
sampler: stratified
count: 98
datasets:
  - name: ifeval_like
    weight: 0.4
    task_type: instruction
    tags: [rag, en]
    adapter: general_qa
    source: instruction.jsonl
    fields: {id: id, input: q, target: a}
    scorer: exact_match
  - name: long_context_like
    weight: 0.3
    task_type: long_context
    tags: [rag, en]
    adapter: general_qa
    source: long.jsonl
    fields: {id: id, input: q, target: a}
    scorer: exact_match
  - name: knowledge_like
    weight: 0.3
    task_type: knowledge
    tags: [rag, zh]
    adapter: general_qa
    source: knowledge.jsonl
    fields: {id: id, input: q, target: a, subset: topic}
    scorer: exact_match
"""

# (file, rows, right answers)
LAYOUT = [("instruction", 39, 36), ("long", 30, 4), ("knowledge", 29, 11)]


@pytest.fixture
def seed_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", rag_index=SPEC)
    for name, rows, _right in LAYOUT:
        lines = [
            json.dumps({"id": f"{name}{i}", "q": f"{name} question {i}", "a": f"A{i}",
                        "topic": f"topic{i % 6}"})
            for i in range(rows)
        ]  # fmt: skip
        (pytester.path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    return pytester


def seed_answers(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    name, _, number = messages[-1]["content"].split(" ")
    right = dict((n, r) for n, _rows, r in LAYOUT)[name]
    return f"A{number}" if int(number) < right else "wrong"


def test_seed_article_numbers(seed_project: pytest.Pytester, run_mode: list[str]) -> None:
    with FakeOpenAI(responder=seed_answers) as fake:
        result = seed_project.runpytest(
            "--index", "rag_index.yaml", "--index-base-url", fake.base_url, *run_mode
        )
    assert_outcomes(result, passed=51, missed=47)
    result.stdout.fnmatch_lines(
        [
            "task_type*",
            "instruction *0.9231*39*",
            "long_context *0.1333*30*",
            "knowledge *0.3793*29*",
            "tag*",
            "rag *0.5204*98*",
            "en *0.5797*69*",
        ]
    )
    data = json.loads((seed_project.path / ".evalindex" / "last.json").read_text())
    rows = {(table, row["name"]): row for table, items in data["tables"].items() for row in items}
    assert round(rows[("task_type", "instruction")]["micro"], 4) == 0.9231
    assert round(rows[("task_type", "long_context")]["micro"], 4) == 0.1333
    assert round(rows[("task_type", "knowledge")]["micro"], 4) == 0.3793
    assert round(rows[("tag", "rag")]["micro"], 4) == 0.5204
    assert rows[("tag", "rag")]["count"] == 98
    assert round(rows[("tag", "en")]["micro"], 4) == 0.5797
    # six knowledge subsets, macro over (dataset, subset) units
    assert len([k for k in rows if k[0] == "subset" and k[1].startswith("knowledge_like/")]) == 6
    assert data["index"]["score"] == pytest.approx(0.4 * 36 / 39 + 0.3 * 4 / 30 + 0.3 * 11 / 29)
