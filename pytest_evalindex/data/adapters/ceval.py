"""C-Eval: Chinese exam multiple choice over 52 subjects.

Layout (HF ``ceval/ceval-exam``, one config per subject such as ``logic``, splits
``dev``/``val``/``test``): ``id``, ``question``, ``A``, ``B``, ``C``, ``D``, ``answer``
(a letter), ``explanation`` (dev only). The rows do not name their subject: give it as
``args.subset`` (e.g. ``logic``), or add a ``subject`` column to a file that mixes
subjects. The record id is ``<subset>/<id>`` (ids restart in every subject), or ``<id>``
when the subset is unknown. Use the ``val`` split: ``test`` has no public answers.

Default scorer ``choice``; main metric: accuracy. Few-shot: the first ``few_shot_num``
rows (of the same subject) of ``few_shot_source`` (the ``dev`` split).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_evalindex.data.adapters._common import MultipleChoice, present, text, where
from pytest_evalindex.errors import EvalIndexError


class CEval(MultipleChoice):
    name = "ceval"
    subset_fields: ClassVar[tuple[str, ...]] = ("subject",)
    few_shot: ClassVar[bool] = True
    language: ClassVar[str] = "zh"

    def layout_hint(self) -> str:
        return "'id', 'question', 'A'-'D' and 'answer' (a letter)"

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("id")
        own = text(value).strip() if present(value) else str(position)
        subset = self.subset(row)
        return own if subset == "default" else f"{subset}/{own}"

    def question(self, row: dict[str, Any], position: int) -> str:
        return text(self.required(row, "question", position)).strip()

    def options(self, row: dict[str, Any], position: int) -> list[str]:
        return self.lettered_columns(row, position)

    def answer(self, row: dict[str, Any], position: int, options: list[str]) -> str:
        if not present(row.get("answer")):
            raise EvalIndexError(
                f"{where(position)} has no 'answer' (the C-Eval test split publishes none; "
                "use the val split)",
                file=self.source,
            )
        return self.letter_of(text(row["answer"]).strip(), options, position, "answer")


ADAPTER = CEval()
