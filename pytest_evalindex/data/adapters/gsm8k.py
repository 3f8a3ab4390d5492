"""GSM8K: grade-school maths word problems with a numeric answer.

Layout (HF ``openai/gsm8k``, configs ``main`` and ``socratic``): ``question``, ``answer``
(a worked solution whose last line is ``#### 72``). The record id is the row position; the
subset is ``args.subset`` or ``main``. The target is the number after ``####``.

Default scorer ``numeric``; main metric: accuracy of the final number. Few-shot: the first
``few_shot_num`` rows of ``few_shot_source`` (the train split) as worked examples, their
calculator notes (``<<48/2=24>>``) removed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters._common import Benchmark, text, where
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf

INSTRUCTION = (
    "Solve the problem step by step. Then write the final answer, a number alone, on a "
    "last line of the form 'ANSWER: <number>'."
)
_CALCULATOR_NOTE = re.compile(r"<<[^<>]*>>")


def split_solution(answer: str) -> tuple[str, str] | None:
    """A GSM8K answer as (worked steps without calculator notes, final number)."""
    if "####" not in answer:
        return None
    steps, _, final = answer.rpartition("####")
    number = final.strip().replace(",", "")
    if not number:
        return None
    return _CALCULATOR_NOTE.sub("", steps).strip(), number


class GSM8K(Benchmark):
    name = "gsm8k"
    default_scorer = ScorerRef(name="numeric")
    default_subset: ClassVar[str] = "main"
    few_shot: ClassVar[bool] = True

    def layout_hint(self) -> str:
        return "'question' and 'answer' (a solution ending in '#### <number>')"

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        question = text(self.required(row, "question", position)).strip()
        answer = text(self.required(row, "answer", position))
        solution = split_solution(answer)
        if solution is None:
            raise EvalIndexError(
                f"{where(position)}: 'answer' has no final '#### <number>' line", file=self.source
            )
        parts = []
        for example in self.few_shot_rows():
            worked = split_solution(text(example.get("answer", "")))
            if worked is None:
                raise EvalIndexError(
                    "a few-shot example has no '#### <number>' answer",
                    file=self.args.get("few_shot_source"),
                )
            parts.append(
                f"Question: {text(example.get('question', '')).strip()}\n"
                f"{worked[0]}\nANSWER: {worked[1]}"
            )
        examples = "\n\n".join(parts)
        prompt = f"{question}\n\n{INSTRUCTION}"
        if parts:
            prompt = f"Worked examples:\n\n{examples}\n\nQuestion: {prompt}"
        return self.build(
            leaf,
            row,
            position,
            prompt=prompt,
            target=solution[1],
            metadata={"question": question},
            template_values={"examples": examples},
        )


ADAPTER = GSM8K()
