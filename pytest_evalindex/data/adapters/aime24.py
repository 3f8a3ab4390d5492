"""AIME 2024: the 30 problems of the 2024 American Invitational Mathematics Examination.

Layout (HF ``Maxwell-Jia/AIME_2024``): ``ID`` (e.g. ``2024-I-1``), ``Problem``,
``Solution``, ``Answer`` (an integer 0-999). Lower-case ``id``/``problem``/``answer``
columns (other mirrors) are read too. The record id is ``ID``, else the row position; the
subset is ``args.subset`` or ``default``.

Default scorer ``math``; main metric: accuracy of the final answer. Zero-shot only.
"""

from __future__ import annotations

from typing import ClassVar

from pytest_evalindex.data.adapters._common import MathProblems
from pytest_evalindex.testset.records import ScorerRef


class AIME24(MathProblems):
    name = "aime24"
    default_scorer = ScorerRef(name="math")
    problem_fields: ClassVar[tuple[str, ...]] = ("Problem", "problem", "question")
    answer_fields: ClassVar[tuple[str, ...]] = ("Answer", "answer")
    id_fields: ClassVar[tuple[str, ...]] = ("ID", "id")


ADAPTER = AIME24()
