"""MMLU: multiple choice over 57 subjects, from elementary maths to law.

Layout (HF ``cais/mmlu``): ``question``, ``subject`` (e.g. ``abstract_algebra``),
``choices`` (a list of 4 options), ``answer`` (the 0-based index of the right option; a
letter is accepted too). The record id is the row position (the release has no id); the
subset is ``subject``, else ``args.subset``.

Default scorer ``choice``; main metric: accuracy. Few-shot: the first ``few_shot_num``
rows of the same subject in ``few_shot_source`` (the ``dev`` split, 5 per subject).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pytest_evalindex.data.adapters._common import MultipleChoice, as_list, text, where
from pytest_evalindex.errors import EvalIndexError


class MMLU(MultipleChoice):
    name = "mmlu"
    subset_fields: ClassVar[tuple[str, ...]] = ("subject",)
    few_shot: ClassVar[bool] = True

    def layout_hint(self) -> str:
        return "'question', 'subject', 'choices' (a list) and 'answer' (a 0-based index)"

    def introduction(self, subset: str) -> str | None:
        if subset == "default":
            return None
        return f"The following is a multiple-choice question about {subset.replace('_', ' ')}."

    def question(self, row: dict[str, Any], position: int) -> str:
        return text(self.required(row, "question", position)).strip()

    def options(self, row: dict[str, Any], position: int) -> list[str]:
        options = as_list(self.required(row, "choices", position))
        if options is None or len(options) < 2:
            raise EvalIndexError(
                f"{where(position)}: 'choices' should be a list of at least 2 options",
                file=self.source,
            )
        return [text(option).strip() for option in options]

    def answer(self, row: dict[str, Any], position: int, options: list[str]) -> str:
        value = row.get("answer")
        if value is None:
            self.required(row, "answer", position)
        return self.letter_of(value, options, position, "answer")


ADAPTER = MMLU()
