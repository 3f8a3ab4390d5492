"""Chinese SimpleQA: short fact-seeking questions in Chinese across six topics.

Layout (HF ``OpenStellarTeam/Chinese-SimpleQA``): ``id``, ``primary_category`` (e.g.
``自然与自然科学``), ``secondary_category``, ``question``, ``answer``, ``urls``. The record id
is ``id``, else the row position; the subset is ``primary_category``, else
``args.subset``; ``secondary_category`` is kept in the record's metadata.

The prompt is the question alone. Default scorer ``judge`` with the ``simpleqa`` template;
main metric: ``correct`` (not-attempted scores 0 and is counted apart). Zero-shot only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters._common import Benchmark, present, text
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


class ChineseSimpleQA(Benchmark):
    name = "chinese_simpleqa"
    default_scorer = ScorerRef(name="judge", args={"template": "simpleqa"})
    subset_fields: ClassVar[tuple[str, ...]] = ("primary_category",)

    def layout_hint(self) -> str:
        return "'id', 'primary_category', 'secondary_category', 'question' and 'answer'"

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("id")
        return text(value).strip() if present(value) else str(position)

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        question = text(self.required(row, "question", position)).strip()
        answer = text(self.required(row, "answer", position)).strip()
        metadata: dict[str, Any] = {"question": question}
        if present(row.get("secondary_category")):
            metadata["secondary_category"] = text(row["secondary_category"])
        return self.build(leaf, row, position, prompt=question, target=answer, metadata=metadata)


ADAPTER = ChineseSimpleQA()
