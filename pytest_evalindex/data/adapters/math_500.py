"""MATH-500: 500 problems of the MATH competition set chosen by OpenAI's "Let's Verify Step
by Step".

Layout (HF ``HuggingFaceH4/MATH-500``): ``problem``, ``solution``, ``answer`` (LaTeX, e.g.
``\\frac{14}{3}`` or ``\\left( 3, \\frac{\\pi}{2} \\right)``), ``subject`` (e.g.
``Precalculus``), ``level`` (1-5), ``unique_id`` (e.g. ``test/precalculus/807.json``).
The record id is ``unique_id``, else the row position; the subset is ``subject``;
``level`` is kept in the record's metadata.

Default scorer ``math``; main metric: accuracy of the final answer. Zero-shot only.
"""

from __future__ import annotations

from typing import ClassVar

from pytest_evalindex.data.adapters._common import MathProblems
from pytest_evalindex.testset.records import ScorerRef


class Math500(MathProblems):
    name = "math_500"
    default_scorer = ScorerRef(name="math")
    problem_fields: ClassVar[tuple[str, ...]] = ("problem",)
    answer_fields: ClassVar[tuple[str, ...]] = ("answer",)
    id_fields: ClassVar[tuple[str, ...]] = ("unique_id",)
    subset_fields: ClassVar[tuple[str, ...]] = ("subject",)
    metadata_fields: ClassVar[tuple[str, ...]] = ("level",)


ADAPTER = Math500()
