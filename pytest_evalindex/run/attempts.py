"""When an index item runs more than once, or its process dies before it can report.

pytest-rerunfailures (``--reruns N``, the ``flaky`` marker) runs a failed item again in the
same process. Each attempt is reported, so the results keep the *last* attempt's sample, and
an answer the model already gave is reused rather than bought a second time: a rerun repeats
only what failed (a request that got no answer, a scorer that crashed). An xdist worker that
dies while running an item (pytest-timeout's ``thread`` method ends the process, for example)
sends no sample at all; the controller then records the item as an error, so the index
counts it instead of silently running over fewer records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_evalindex.run.evaluation import blank_sample

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Sample
    from pytest_evalindex.run.loading import LoadedIndex
    from pytest_evalindex.testset.records import Record

Ask = Callable[["Record", int], Any]


def remembering(answers: dict[int, Any], ask: Ask) -> Ask:
    """``ask`` that keeps each answer in ``answers`` (repeat number -> answer) and gives a
    kept answer back instead of asking again. Failures are not kept: they are asked again."""

    def ask_once(record: Record, repeat: int) -> Any:
        if repeat in answers:
            return answers[repeat]
        answer = ask(record, repeat)
        answers[repeat] = answer
        return answer

    return ask_once


def lost_sample(loaded: LoadedIndex, nodeid: str, reason: str) -> Sample | None:
    """The error sample of an index item whose report carries no sample (its process died
    while running it), or None when the node id names no record of ``loaded``."""
    parts = nodeid.split("::", 2)
    if len(parts) != 3:
        return None
    record_id = parts[2]
    position = loaded.position.get(record_id)
    if position is None:
        return None
    record = loaded.all_records[position]
    sample = blank_sample(record, position)
    first_line = next((line.strip() for line in reason.splitlines() if line.strip()), "")
    sample["explanation"] = first_line or "the process running this item ended without a result"
    return sample
