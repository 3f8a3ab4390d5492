"""Several answers to one record (``--index-repeat K``): one score per sample, and flakiness.

Reducers (``--index-reducer``), over the repeats that were scored (errors left out):

- ``mean``: the mean score; the expected score of one answer.
- ``pass@k``: the chance that at least one of k answers passes, estimated without bias from
  n >= k repeats with c passes as ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021, the
  HumanEval paper). With n == k it is "any of the k passed".
- ``pass^k``: the chance that all of k answers pass, ``C(c, k) / C(n, k)``; the reliability
  view (tau-bench). With n == k it is "all k passed".
- ``majority``: the most common score; a tie goes to the lower score, so a sample that is
  right half the time does not count as right.

Asking more repeats than k (n > k) makes pass@k and pass^k less noisy, not different.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_evalindex.results.schema import Outcome
from pytest_evalindex.table_format import format_table

METHODS = ("mean", "pass@k", "pass^k", "majority")


@dataclass(frozen=True)
class Reducer:
    """A parsed ``--index-reducer``: ``method`` is one of METHODS; ``k`` for pass@k, pass^k."""

    text: str
    method: str
    k: int | None = None

    def __str__(self) -> str:
        return self.text

    @property
    def repeats_needed(self) -> int:
        return self.k or 1

    def reduce(self, scores: Sequence[float], passed: Sequence[bool]) -> float:
        return reduce_repeats(scores, passed, self.method, self.k)


def parse_reducer(text: str) -> Reducer:
    """``mean``, ``majority``, ``pass@K`` or ``pass^K`` (K >= 1); usable as argparse ``type=``."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("mean", "majority"):
        return Reducer(lowered, lowered)
    for prefix in ("pass@", "pass^"):
        if lowered.startswith(prefix):
            number = lowered[len(prefix) :]
            if number.isdigit() and int(number) >= 1:
                return Reducer(lowered, f"{prefix}k", int(number))
            raise argparse.ArgumentTypeError(
                f"reducer {stripped!r}: {prefix}K needs a whole number K >= 1, e.g. {prefix}3"
            )
    raise argparse.ArgumentTypeError(
        f"reducer {stripped!r}: expected mean, majority, pass@K or pass^K (e.g. pass@3)"
    )


def reduce_repeats(
    scores: Sequence[float], passed: Sequence[bool], method: str, k: int | None = None
) -> float:
    """One score from the scored repeats of a sample.

    ``method`` is one of METHODS (``"pass@3"`` is read as ``"pass@k"`` with k=3). Raises
    ValueError without repeats, for an unknown method, or for pass@k / pass^k with fewer
    than k repeats.
    """
    if method not in METHODS:
        try:
            reducer = parse_reducer(method)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(str(exc)) from None
        method = reducer.method
        k = reducer.k if k is None else k
    if len(scores) != len(passed):
        raise ValueError(f"{len(scores)} scores but {len(passed)} pass flags")
    n = len(scores)
    if n == 0:
        raise ValueError("no scored repeats to reduce")
    if method == "mean":
        return math.fsum(scores) / n
    if method == "majority":
        counts = Counter(scores)
        return min(counts, key=lambda value: (-counts[value], value))
    if k is None or k < 1:
        raise ValueError(f"{method} needs k >= 1")
    if n < k:
        raise ValueError(f"{method.replace('k', str(k))} needs at least {k} repeats, got {n}")
    correct = sum(1 for flag in passed if flag)
    if method == "pass@k":
        if n - correct < k:
            return 1.0
        return 1.0 - math.comb(n - correct, k) / math.comb(n, k)
    return math.comb(correct, k) / math.comb(n, k)


def reduce_sample(
    repeats: Sequence[tuple[str, float | None]], reducer: Reducer, *, threshold: float = 1.0
) -> tuple[Outcome, float | None]:
    """(outcome, score) of a sample from its repeats' (outcome, score) pairs.

    Errors are left out; a sample with no scored repeat is an ``error``. With fewer scored
    repeats than the reducer's k, k is lowered to what there is. The sample passed when the
    reduced score reaches ``threshold``.
    """
    scored = [(o, s) for o, s in repeats if o != "error" and s is not None]
    if not scored:
        return "error", None
    scores = [float(s) for _o, s in scored if s is not None]
    passed = [o == "passed" for o, _s in scored]
    k = None if reducer.k is None else min(reducer.k, len(scores))
    score = reduce_repeats(scores, passed, reducer.method, k)
    return ("passed" if score >= threshold - 1e-12 else "missed"), score


@dataclass(frozen=True)
class FlakySample:
    """A sample whose repeats did not all end the same way."""

    id: str
    counts: dict[str, int]
    repeats: int

    @property
    def majority_share(self) -> float:
        return max(self.counts.values()) / self.repeats


def flaky_samples(per_sample_outcomes: Mapping[str, Sequence[str]]) -> list[FlakySample]:
    """Samples with more than one distinct outcome, the most evenly split first."""
    flaky = []
    for sample_id, outcomes in per_sample_outcomes.items():
        counts = Counter(outcomes)
        if len(counts) > 1:
            ordered = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
            flaky.append(FlakySample(str(sample_id), ordered, len(outcomes)))
    # stable: equally split samples keep the input (test-set) order
    return sorted(flaky, key=lambda sample: sample.majority_share)


def format_flaky(
    flaky: Sequence[FlakySample], *, total: int | None = None, limit: int | None = 20
) -> list[str]:
    """A heading and one line a flaky sample: ``gsm8k/12  passed 3, missed 2``."""
    if not flaky:
        return []
    out_of = f" of {total}" if total is not None else ""
    lines = [f"{len(flaky)}{out_of} samples gave different outcomes across repeats:"]
    shown = flaky if limit is None else flaky[:limit]
    rows = [
        [sample.id, ", ".join(f"{outcome} {count}" for outcome, count in sample.counts.items())]
        for sample in shown
    ]
    lines.extend(format_table(None, rows, left=2, indent="  "))
    if limit is not None and len(flaky) > limit:
        lines.append(f"  ... {len(flaky) - limit} more")
    return lines
