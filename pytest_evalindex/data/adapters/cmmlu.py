"""CMMLU: Chinese multiple choice over 67 subjects.

Layout (HF ``haonan-li/cmmlu``, one CSV per subject such as ``agronomy.csv``, splits
``dev``/``test``): ``Question``, ``A``, ``B``, ``C``, ``D``, ``Answer`` (a letter); the
files' unnamed first column is ignored. The subject is a ``subject`` column when the rows
have one, else ``args.subset`` (e.g. ``agronomy``). The record id is the row position.

Default scorer ``choice``; main metric: accuracy. Few-shot: the first ``few_shot_num``
rows (of the same subject) of ``few_shot_source`` (the ``dev`` split).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_evalindex.data.adapters._common import MultipleChoice, text


class CMMLU(MultipleChoice):
    name = "cmmlu"
    subset_fields: ClassVar[tuple[str, ...]] = ("subject",)
    few_shot: ClassVar[bool] = True
    language: ClassVar[str] = "zh"

    def layout_hint(self) -> str:
        return "'Question', 'A'-'D' and 'Answer' (a letter)"

    def question(self, row: dict[str, Any], position: int) -> str:
        return text(self.required(row, "Question", position)).strip()

    def options(self, row: dict[str, Any], position: int) -> list[str]:
        return self.lettered_columns(row, position)

    def answer(self, row: dict[str, Any], position: int, options: list[str]) -> str:
        answer = text(self.required(row, "Answer", position)).strip()
        return self.letter_of(answer, options, position, "Answer")


ADAPTER = CMMLU()
