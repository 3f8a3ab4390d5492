"""Generic multiple-choice datasets.

``fields`` keys (values are the row's column names; defaults in brackets):

- ``question`` [``question``]: the question text.
- ``choices`` [``choices`` if it holds a list, else letter columns]: a column holding the
  list of options. Without one the options are the columns ``A``, ``B``, ``C``... present
  in the row, read from ``A`` until the first missing letter.
- ``answer`` [``answer``]: the correct option as a letter (``"C"``), a 0-based index (``2``)
  or the option's text; the record's target is always the letter.
- ``id``, ``subset``, ``system``: as for ``general_qa``.

The prompt is the question, the lettered options and an instruction to end with
``ANSWER: X``. A ``prompt_template`` may replace it; besides the row's columns it can use
``{options}`` (the lettered lines) and ``{letters}`` (``"A, B, C, D"``).
The default scorer is ``choice``.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters import make_record
from pytest_evalindex.data.adapters.general_qa import FieldsAdapter, as_text
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf

LETTERS = string.ascii_uppercase


def format_options(choices: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(choices))


def letters_list(count: int) -> str:
    return ", ".join(LETTERS[:count])


def format_mcq_prompt(question: str, choices: Sequence[str]) -> str:
    """The question, its lettered options and how to give the answer."""
    return (
        f"{question}\n\n{format_options(choices)}\n\n"
        f"Pick the one correct option. Finish your reply with a final line of the form "
        f"'ANSWER: X' where X is one of {letters_list(len(choices))}."
    )


def answer_letter(answer: Any, choices: Sequence[str]) -> str | None:
    """The letter of ``answer`` (a letter, a 0-based index or an option's text), or None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return LETTERS[answer] if 0 <= answer < len(choices) else None
    if not isinstance(answer, str):
        return None
    text = answer.strip()
    letter = text.strip("().").upper()
    if len(letter) == 1 and letter in LETTERS[: len(choices)]:
        return letter
    for i, choice in enumerate(choices):
        if text == choice.strip():
            return LETTERS[i]
    return None


class GeneralMCQ(FieldsAdapter):
    name = "general_mcq"
    default_scorer = ScorerRef(name="choice")
    field_defaults: ClassVar[dict[str, str | None]] = {
        "question": "question",
        "choices": None,
        "answer": "answer",
        "id": None,
        "subset": None,
        "system": None,
    }

    def choices(self, row: dict[str, Any], position: int) -> list[str]:
        if "choices" in self.fields:
            value = self.required(row, "choices", position)
            if not isinstance(value, list | tuple):
                raise EvalIndexError(
                    f"{self.where(position)}: field {self.fields['choices']!r} "
                    f"(fields.choices) should hold a list of options, got "
                    f"{type(value).__name__}",
                    file=self.source,
                )
            options = [as_text(item) for item in value]
        elif isinstance(row.get("choices"), list | tuple):
            options = [as_text(item) for item in row["choices"]]
        else:
            options = []
            for letter in LETTERS:
                if row.get(letter) is None:
                    break
                options.append(as_text(row[letter]))
        if len(options) < 2:
            how = (
                f"field {self.fields['choices']!r}"
                if "choices" in self.fields
                else "columns A, B, ... (or set fields.choices)"
            )
            raise EvalIndexError(
                f"{self.where(position)} has {len(options)} option(s) in {how}; "
                "a multiple-choice question needs at least 2",
                file=self.source,
            )
        if len(options) > len(LETTERS):
            raise EvalIndexError(
                f"{self.where(position)} has {len(options)} options; at most "
                f"{len(LETTERS)} can be lettered",
                file=self.source,
            )
        return options

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        options = self.choices(row, position)
        answer = self.required(row, "answer", position)
        letter = answer_letter(answer, options)
        if letter is None:
            raise EvalIndexError(
                f"{self.where(position)}: answer {answer!r} (fields.answer) is not one of the "
                f"letters {letters_list(len(options))}, a 0-based index below {len(options)} "
                "or the text of an option",
                file=self.source,
            )
        if leaf.prompt_template is not None:
            user = self.format_template(
                row,
                position,
                leaf,
                options=format_options(options),
                letters=letters_list(len(options)),
            )
        else:
            question = as_text(self.required(row, "question", position))
            user = format_mcq_prompt(question, options)
        return make_record(
            leaf,
            self.record_id(row, position),
            user=user,
            adapter=self,
            subset=self.subset(row),
            system=self.system_prompt(row, leaf),
            target=letter,
            choices=options,
        )


ADAPTER = GeneralMCQ()
