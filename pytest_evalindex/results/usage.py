"""Token usage and latency per dataset and in total: pure functions over samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_evalindex.results.schema import Repeat, Sample, UsageRow, UsageSummary


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (``q`` in [0, 100])."""
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _answers(sample: Sample) -> Sequence[Sample | Repeat]:
    """Every answer a sample got: one, or one a repeat."""
    repeats = sample.get("repeats")
    return repeats if repeats is not None else [sample]


def _summary(name: str, samples: Sequence[Sample]) -> UsageRow:
    answered = [a for s in samples for a in _answers(s) if a.get("response") is not None]
    # a cached answer cost nothing this run; its latency is the original request's
    requested = [s for s in answered if not s.get("cached")]
    latencies = sorted(float(s.get("latency_s") or 0.0) for s in answered)
    usage = [s.get("usage") or {} for s in requested]
    return {
        "name": name,
        "samples": len(samples),
        "requests": len(requested),
        "cached": len(answered) - len(requested),
        "prompt_tokens": sum(int(u.get("prompt_tokens") or 0) for u in usage),
        "completion_tokens": sum(int(u.get("completion_tokens") or 0) for u in usage),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
    }


def usage_summary(samples: Sequence[Sample]) -> UsageSummary:
    """``{"total": row, "dataset": [row, ...]}``; tokens count only requests made this run."""
    by_dataset: dict[str, list[Sample]] = {}
    for sample in samples:
        by_dataset.setdefault(str(sample["dataset"]), []).append(sample)
    return {
        "total": _summary("total", samples),
        "dataset": [_summary(name, group) for name, group in by_dataset.items()],
    }
