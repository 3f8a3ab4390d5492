"""Token usage, latency and cost per dataset and in total: pure functions over samples."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_evalindex.results.schema import (
    CostRow,
    Repeat,
    Sample,
    UsageCost,
    UsageRow,
    UsageSummary,
)


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


# --------------------------------------------------------------------------- cost

PER_MILLION = 1_000_000
BUDGET_REACHED = "budget reached"


def answer_cost(usage: Mapping[str, Any], prices: Mapping[str, Any]) -> float:
    """USD for one answer's tokens: prompt tokens the provider served from its prompt cache
    (``cached_tokens``) at the ``cached_input`` price (default: the input price), the rest
    of the prompt at the input price, the completion at the output price."""
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = min(prompt, int(usage.get("cached_tokens") or 0))
    completion = int(usage.get("completion_tokens") or 0)
    input_price = float(prices["input"])
    cached_price = prices.get("cached_input")
    cached_price = input_price if cached_price is None else float(cached_price)
    output_price = float(prices["output"])
    total = (prompt - cached) * input_price + cached * cached_price + completion * output_price
    return total / PER_MILLION


def _sample_cost(sample: Sample, prices: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The model's and the judge's cost of a sample this run, and what its cached answers
    and verdicts cost when first asked."""
    model: float | None = None
    cached = 0.0
    if prices is not None:
        model = 0.0
        for answer in _answers(sample):
            if answer.get("response") is None:
                continue
            cost = answer_cost(answer.get("usage") or {}, prices)
            if answer.get("cached"):
                cached += cost
            else:
                model += cost
    calls = sample.get("judge_calls")
    judge: float | None = None
    if calls:
        judge = sum(float(c["cost"]) for c in calls if not c.get("cached"))
        cached += sum(float(c["cost"]) for c in calls if c.get("cached"))
    return {"model": model, "judge": judge, "cached": cached}


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def _cost_row(name: str, samples: Sequence[Sample], prices: Mapping[str, Any] | None) -> CostRow:
    model: float | None = None
    judge: float | None = None
    cached = 0.0
    for sample in samples:
        part = _sample_cost(sample, prices)
        model = _add(model, part["model"])
        judge = _add(judge, part["judge"])
        cached += part["cached"] or 0.0
    return {
        "name": name,
        "model": _round(model),
        "judge": _round(judge),
        "total": _round(_add(model, judge)),
        "cached": _round(cached),
    }


def _round(value: float | None) -> float | None:
    # a millionth of a cent is below anything a provider bills
    return None if value is None else round(value, 8)


def budget_reached(samples: Sequence[Sample]) -> int:
    """How many samples ended as errors because the budget stopped the requests."""
    return sum(
        s["outcome"] == "error" and BUDGET_REACHED in str(s.get("explanation") or "")
        for s in samples
    )


def cost_summary(
    samples: Sequence[Sample],
    *,
    prices: Mapping[str, Any] | None,
    budget: float | None = None,
) -> UsageCost | None:
    """``usage.cost``: USD this run for the model (at ``prices``), for the judge (the
    verdicts kept on the samples, priced by the judge's own prices) and in total, by
    dataset; None when nothing has a price. Cached answers add nothing; ``cached`` is what
    they cost when first asked."""
    if prices is None and not any(s.get("judge_calls") for s in samples):
        return None
    by_dataset: dict[str, list[Sample]] = {}
    for sample in samples:
        by_dataset.setdefault(str(sample["dataset"]), []).append(sample)
    rows = [_cost_row(name, group, prices) for name, group in by_dataset.items()]
    total = _cost_row("total", samples, prices)
    cost: UsageCost = {
        "model": total["model"],
        "judge": total["judge"],
        "total": total["total"],
        "by_dataset": {row["name"]: row["total"] for row in rows},
        "dataset": rows,
        "cached": total["cached"] or 0.0,
        "prices": dict(prices) if prices is not None else None,  # type: ignore[typeddict-item]
        "budget": budget,
        "budget_reached": budget_reached(samples) if budget is not None else 0,
    }
    return cost
