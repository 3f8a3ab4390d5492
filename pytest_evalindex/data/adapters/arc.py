"""ARC: the AI2 Reasoning Challenge, grade-school science multiple choice.

Layout (HF ``allenai/ai2_arc``, configs ``ARC-Easy`` and ``ARC-Challenge``): ``id``,
``question``, ``choices`` (``{"text": [...], "label": [...]}``), ``answerKey`` (one of the
labels; most are ``A``-``E``, a few rows use ``1``-``5``). The options are re-lettered
A, B, ... in their order, so the target is always a letter. The record id is ``id``, else
the row position. The subset is a ``subset`` column when the rows have one, else
``args.subset`` (e.g. ``ARC-Challenge``), else ``default``.

Default scorer ``choice``; main metric: accuracy. Few-shot: the first ``few_shot_num``
rows of ``few_shot_source`` (the train split).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pytest_evalindex.data.adapters._common import MultipleChoice, as_list, present, text, where
from pytest_evalindex.data.adapters.general_mcq import LETTERS
from pytest_evalindex.errors import EvalIndexError


class ARC(MultipleChoice):
    name = "arc"
    subset_fields: ClassVar[tuple[str, ...]] = ("subset",)
    few_shot: ClassVar[bool] = True

    def layout_hint(self) -> str:
        return "'id', 'question', 'choices' ({'text': [...], 'label': [...]}) and 'answerKey'"

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("id")
        return text(value).strip() if present(value) else str(position)

    def question(self, row: dict[str, Any], position: int) -> str:
        return text(self.required(row, "question", position)).strip()

    def _choices(self, row: dict[str, Any], position: int) -> tuple[list[str], list[str]]:
        choices = self.required(row, "choices", position)
        if isinstance(choices, str):  # a JSON cell in a CSV export
            try:
                choices = json.loads(choices)
            except ValueError:
                choices = None
        options = as_list(choices.get("text")) if isinstance(choices, dict) else None
        labels = as_list(choices.get("label")) if isinstance(choices, dict) else None
        if options is None or len(options) < 2:
            raise EvalIndexError(
                f"{where(position)}: 'choices' should be {{'text': [...], 'label': [...]}} "
                "with at least 2 options",
                file=self.source,
            )
        if labels is None or len(labels) != len(options):
            labels = list(LETTERS[: len(options)])
        return [text(o).strip() for o in options], [text(label).strip() for label in labels]

    def options(self, row: dict[str, Any], position: int) -> list[str]:
        return self._choices(row, position)[0]

    def answer(self, row: dict[str, Any], position: int, options: list[str]) -> str:
        key = text(self.required(row, "answerKey", position)).strip()
        labels = self._choices(row, position)[1]
        if key in labels:
            return LETTERS[labels.index(key)]
        raise EvalIndexError(
            f"{where(position)}: answerKey {key!r} is not one of the labels {labels}",
            file=self.source,
        )


ADAPTER = ARC()
