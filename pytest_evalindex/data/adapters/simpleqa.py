"""SimpleQA: short, hard fact-seeking questions with a single indisputable answer.

Layout (OpenAI's ``simple_qa_test_set.csv``; mirrors such as HF ``basicv8vc/SimpleQA``):
``metadata`` (a dict, or its Python/JSON text in the CSV, with ``topic``, ``answer_type``
and ``urls``), ``problem``, ``answer``. The record id is an ``id`` column when the rows have
one, else the row position. The subset is the metadata's ``topic`` (e.g. ``Science and
technology``), else ``args.subset``, else ``default``.

The prompt is the question alone. Default scorer ``judge`` with the ``simpleqa`` template;
main metric: ``correct`` (not-attempted scores 0 and is counted apart in the
``not_attempted`` metric). Zero-shot only.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any

from pytest_evalindex.data.adapters._common import Benchmark, present, text
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


def parse_metadata(value: Any) -> dict[str, Any]:
    """The metadata cell as a dict: a dict already, or its JSON or Python-literal text."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        return {}
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return {}


class SimpleQA(Benchmark):
    name = "simpleqa"
    default_scorer = ScorerRef(name="judge", args={"template": "simpleqa"})

    def layout_hint(self) -> str:
        return "'metadata', 'problem' and 'answer'"

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("id")
        return text(value).strip() if present(value) else str(position)

    def subset(self, row: dict[str, Any]) -> str:
        topic = parse_metadata(row.get("metadata")).get("topic")
        if present(topic):
            return text(topic).strip()
        return super().subset(row)

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        problem = text(self.required(row, "problem", position)).strip()
        answer = text(self.required(row, "answer", position)).strip()
        metadata: dict[str, Any] = {"question": problem}
        answer_type = parse_metadata(row.get("metadata")).get("answer_type")
        if present(answer_type):
            metadata["answer_type"] = text(answer_type)
        return self.build(leaf, row, position, prompt=problem, target=answer, metadata=metadata)


ADAPTER = SimpleQA()
