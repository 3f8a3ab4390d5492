"""Results documents for tests: whole samples and results built the way a run builds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.schema import Outcome, Results, RunInfo, Sample


def make_sample(
    sample_id: str,
    score: float | None,
    *,
    dataset: str | None = None,
    subset: str = "default",
    task_type: str = "default",
    tags: Sequence[str] = (),
    categories: Sequence[str] | None = None,
    index: str | None = None,
    weight: float = 1.0,
    position: int = 0,
    **changes: Any,
) -> Sample:
    """A whole sample. ``dataset`` defaults to the id's prefix (``"qa/3"`` -> ``"qa"``); the
    outcome follows the score (None is an error). ``categories`` default to ``[index,
    dataset]`` when ``index`` is given (a spec's root and leaf), else to none. ``changes``
    replace or add keys (``response=...``, ``metrics=...``, ``repeats=...``)."""
    dataset = dataset or sample_id.split("/")[0]
    outcome: Outcome = "error" if score is None else "passed" if score >= 1.0 else "missed"
    if categories is None:
        categories = [index, dataset] if index else []
    sample: Sample = {
        "id": sample_id,
        "position": position,
        "dataset": dataset,
        "subset": subset,
        "task_type": task_type,
        "tags": list(tags),
        "categories": list(categories),
        "weight": weight,
        "outcome": outcome,
        "score": score,
        "response": None if score is None else "an answer",
        "reasoning": None,
        "target": "the answer",
        "input": [{"role": "user", "content": f"question {sample_id}"}],
        "explanation": "",
        "usage": {"prompt_tokens": 0, "completion_tokens": 0},
        "latency_s": 0.0,
        "cached": False,
    }
    cast("dict[str, Any]", sample).update(changes)
    return sample


def make_run(**changes: Any) -> RunInfo:
    """Run metadata as a plugin run writes it; ``changes`` replace or add keys."""
    run: RunInfo = {
        "model": "m",
        "base_url": "http://127.0.0.1:8000/v1",
        "index_file": "index.yaml",
        "spec_sha256": "1" * 64,
        "testset_sha256": "a" * 64,
        "seed": 42,
        "sampler": "weighted",
        "bootstrap_seed": 0,
        "shard": None,
        "sandbox": None,
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 1.0,
        "versions": {"pytest": "9.0.0", "pytest_evalindex": "0.1.0"},
        "partial": None,
    }
    cast("dict[str, Any]", run).update(changes)
    return run


def make_results(
    samples: Sequence[Sample],
    *,
    index_name: str = "idx",
    n_boot: int = 200,
    seed: int = 0,
    **run: Any,
) -> Results:
    """The results document of ``samples``, built by the plugin's own aggregation."""
    return build_results(
        samples, index_name=index_name, run=make_run(**run), seed=seed, n_boot=n_boot
    )
