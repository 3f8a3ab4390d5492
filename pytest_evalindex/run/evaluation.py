"""One record, end to end: ask the model (once or K times), score, and build the sample.

Plain functions over a record, a model callable and a scorer; the pytest item only hands
them over and turns the result into a report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from pytest_evalindex.results.repeats import Reducer, reduce_sample
from pytest_evalindex.results.schema import InputMessage, Repeat, Sample, Usage
from pytest_evalindex.run.client import AuthRejected, ModelAnswer, ModelError
from pytest_evalindex.scoring import ScorerError
from pytest_evalindex.testset.records import Record


class SampleError(Exception):
    """No score for this sample: the model or the scorer failed (the message says which)."""


def blank_sample(record: Record, position: int) -> Sample:
    """The sample of a record before anything is known: an error until scored."""
    return {
        "id": record.id,
        "position": position,
        "dataset": record.dataset,
        "subset": record.subset,
        "task_type": record.task_type,
        "tags": list(record.tags),
        "categories": list(record.categories),
        "weight": record.weight,
        "outcome": "error",
        "score": None,
        "response": None,
        "reasoning": None,
        "target": record.target,
        "input": [cast(InputMessage, m.model_dump()) for m in record.input],
        "explanation": "",
        "usage": {"prompt_tokens": 0, "completion_tokens": 0},
        "latency_s": 0.0,
        "cached": False,
    }


# the score of an answer computed beside the requests (lookahead.ScoreAhead.take), or None
Prescored = Callable[[Record, int, str], Any]


def _attempt(
    record: Record,
    ask: Callable[[Record, int], Any],
    scorer: Callable[..., Any],
    repeat: int,
    prescored: Prescored | None = None,
) -> Repeat:
    """One answer and its score; raises SampleError (or AuthRejected) when there is none."""
    started = time.monotonic()
    try:
        answer = ask(record, repeat)
    except AuthRejected:
        raise
    except ModelError as exc:
        raise SampleError(str(exc)) from exc
    if not isinstance(answer, ModelAnswer):
        answer = ModelAnswer(content="" if answer is None else str(answer))
    latency_s = round(answer.latency_s or (time.monotonic() - started), 6)
    try:
        score = prescored(record, repeat, answer.content) if prescored is not None else None
        if score is None:
            score = scorer(answer.content, record)
    except ScorerError as exc:
        raise SampleError(f"scorer error: {exc}") from exc
    result: Repeat = {
        "response": answer.content,
        "reasoning": answer.reasoning,
        "usage": cast(Usage, {k: int(v) for k, v in answer.usage.items()}),
        "latency_s": latency_s,
        "cached": answer.cached,
        "score": float(score.value),
        "explanation": score.explanation,
        "outcome": "passed" if score.value >= record.scorer.threshold else "missed",
    }
    if score.metrics:
        result["metrics"] = {k: float(v) for k, v in score.metrics.items()}
    return result


def evaluate(
    sample: Sample,
    record: Record,
    ask: Callable[[Record, int], Any],
    scorer: Callable[..., Any],
    *,
    repeats: int = 1,
    reducer: Reducer | None = None,
    prescored: Prescored | None = None,
) -> None:
    """Fill ``sample`` in place. With one repeat, a failure raises SampleError; with
    several, failed repeats are recorded and only a sample with no scored repeat raises.
    ``prescored`` gives scores already computed beside the requests, when there are."""
    if repeats == 1:
        try:
            sample.update(_attempt(record, ask, scorer, 0, prescored))
        except SampleError as exc:
            sample["explanation"] = str(exc)
            raise
        return
    assert reducer is not None
    attempts: list[Repeat] = []
    for repeat in range(repeats):
        try:
            attempts.append(_attempt(record, ask, scorer, repeat, prescored))
        except SampleError as exc:
            attempts.append({"outcome": "error", "score": None, "explanation": str(exc)})
    first: Repeat | None = next((a for a in attempts if "response" in a), None)
    if first is not None:
        # the sample's own answer fields are the first answer's (keys as a Repeat has them)
        answer_fields = cast("dict[str, Any]", sample)
        answer_fields.update({k: v for k, v in first.items() if k not in ("outcome", "score")})
    sample["usage"] = {
        "prompt_tokens": sum(a.get("usage", {}).get("prompt_tokens", 0) for a in attempts),
        "completion_tokens": sum(a.get("usage", {}).get("completion_tokens", 0) for a in attempts),
    }
    sample["repeats"] = attempts
    outcome, score = reduce_sample(
        [(a["outcome"], a["score"]) for a in attempts],
        reducer,
        threshold=record.scorer.threshold,
    )
    sample["outcome"], sample["score"] = outcome, score
    if outcome == "error":
        sample["explanation"] = attempts[-1]["explanation"]
        raise SampleError(f"every one of {repeats} repeats failed: {sample['explanation']}")
    counts = {o: sum(a["outcome"] == o for a in attempts) for o in ("passed", "missed", "error")}
    tally = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    first_reason = first["explanation"] if first is not None else ""
    sample["explanation"] = f"{reducer} over {repeats} repeats ({tally}); first: {first_reason}"
