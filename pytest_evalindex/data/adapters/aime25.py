"""AIME 2025: the 30 problems of the 2025 American Invitational Mathematics Examination.

Layout (HF ``opencompass/AIME2025``, configs ``AIME2025-I`` and ``AIME2025-II``):
``question``, ``answer`` (an integer 0-999). ``problem``/``Problem`` and ``Answer``
columns (other mirrors) are read too. The record id is an ``id`` column when there is one,
else the row position; the subset is ``args.subset`` (e.g. ``AIME2025-I`` when the two
configs are separate leaves) or ``default``.

Default scorer ``math``; main metric: accuracy of the final answer. Zero-shot only.
"""

from __future__ import annotations

from typing import ClassVar

from pytest_evalindex.data.adapters._common import MathProblems
from pytest_evalindex.testset.records import ScorerRef


class AIME25(MathProblems):
    name = "aime25"
    default_scorer = ScorerRef(name="math")
    problem_fields: ClassVar[tuple[str, ...]] = ("question", "problem", "Problem")
    answer_fields: ClassVar[tuple[str, ...]] = ("answer", "Answer")
    id_fields: ClassVar[tuple[str, ...]] = ("id", "ID")


ADAPTER = AIME25()
