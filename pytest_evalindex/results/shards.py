"""Splitting one index run over CI jobs, and merging the jobs' results into one document.

``--index-shard I/N`` keeps the samples whose id hashes to shard I: ``sha256(id) mod N``.
The split depends on nothing but the id, so every job computes it alone, a sample stays in
its shard when others are added or removed, and shards are balanced in expectation (each
id is a fair draw; with 1,000 samples and 4 shards a shard holds 250 ± 14).

:func:`merge_results` turns the shards' results documents back into the document a single
run would have written: the same samples in the same order, hence the same tables and the
same intervals (given the same bootstrap seed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.partial import merged_partial, partial_of, whole_size
from pytest_evalindex.results.schema import Results, RunInfo, Sample, UsageCost


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N), 1 <= I <= N; usable as an argparse ``type=``."""
    number, slash, total = text.strip().partition("/")
    try:
        if not slash:
            raise ValueError
        index, count = int(number), int(total)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shard {text!r}: expected I/N with whole numbers, e.g. 1/4"
        ) from None
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(
            f"shard {text!r}: expected 1 <= I <= N (shards are numbered from 1), e.g. 1/4"
        )
    return index, count


def shard_of(record_id: str, count: int) -> int:
    """The shard (1-based) of ``record_id`` among ``count``."""
    digest = hashlib.sha256(record_id.encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % count + 1


def in_shard(record_id: str, index: int, count: int) -> bool:
    return shard_of(record_id, count) == index


def merge_results(
    docs: Sequence[Results],
    *,
    labels: Sequence[str] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> Results:
    """One results document from the results documents of a run's shards.

    The documents must be of the same index, test set and model, with no sample id in two
    of them. When every document records ``run.shard`` (``"I/N"``) the set must also be
    complete. Samples are ordered by their ``position`` in the test set when every sample
    has one, else by the order datasets first appear, then by id (numbers in ids compare
    as numbers). ``labels`` name the documents in error messages (e.g. file names).
    """
    if not docs:
        raise EvalIndexError("nothing to merge: no results documents given")
    names = list(labels) if labels is not None else [f"document {i + 1}" for i in range(len(docs))]
    first = docs[0]
    runs = [doc.get("run") or {} for doc in docs]
    _require_same(docs, names, "index name", lambda doc: (doc.get("index") or {}).get("name"))
    _require_same(
        docs, names, "test set (run.testset_sha256)", lambda doc: _run(doc, "testset_sha256")
    )
    _require_same(docs, names, "model", lambda doc: _run(doc, "model"))
    _check_shard_set(runs, names)

    samples: list[Sample] = []
    owner: dict[str, str] = {}
    for doc, name in zip(docs, names, strict=True):
        for sample in doc.get("samples") or ():
            sample_id = str(sample["id"])
            if sample_id in owner:
                raise EvalIndexError(
                    f"sample {sample_id!r} is in both {owner[sample_id]} and {name}; "
                    "shards of one run never share a sample"
                )
            owner[sample_id] = name
            samples.append(sample)

    merged_run = _merged_run(runs, len(docs))
    # each shard is partial ("shard"); together they are whole, unless records are missing
    partials = [partial_of(doc) for doc in docs]
    merged_run["partial"] = merged_partial(partials, ran=len(samples), of=whole_size(partials))
    index_name = str((first.get("index") or {}).get("name") or "index")
    merged = build_results(
        _ordered(samples), index_name=index_name, run=merged_run, seed=seed, n_boot=n_boot
    )
    cost = _merged_cost(docs, names, merged["samples"])
    if cost is not None:
        merged["usage"]["cost"] = cost
    return merged


def _merged_cost(
    docs: Sequence[Results], names: Sequence[str], samples: Sequence[Sample]
) -> UsageCost | None:
    """The cost of the merged run, computed from its samples as one run's would be: the
    shards must have been priced alike. Their budgets add up (each job had its own)."""
    from pytest_evalindex.results.usage import cost_summary

    costs = [(doc.get("usage") or {}).get("cost") for doc in docs]
    if all(cost is None for cost in costs):
        return None
    prices = [json.dumps(cost.get("prices") if cost else None, sort_keys=True) for cost in costs]
    if len(set(prices)) > 1:
        listed = "; ".join(f"{name}: {price}" for name, price in zip(names, prices, strict=True))
        raise EvalIndexError(
            f"the shards were priced differently (usage.cost.prices), so their cost cannot "
            f"be merged: {listed}"
        )
    priced = next(cost for cost in costs if cost is not None)
    budgets = [cost.get("budget") if cost else None for cost in costs]
    budget = sum(b for b in budgets if b is not None) if None not in budgets else None
    return cost_summary(samples, prices=priced.get("prices"), budget=budget)


def _run(doc: Results, key: str) -> Any:
    return (doc.get("run") or {}).get(key)


def _require_same(
    docs: Sequence[Results],
    names: Sequence[str],
    what: str,
    read: Callable[[Results], Any],
) -> None:
    expected = read(docs[0])
    for doc, name in zip(docs[1:], names[1:], strict=True):
        value = read(doc)
        if value != expected:
            raise EvalIndexError(
                f"{names[0]} and {name} are not shards of one run: different {what} "
                f"({expected!r} vs {value!r})"
            )


def _check_shard_set(runs: Sequence[RunInfo], names: Sequence[str]) -> None:
    """With ``run.shard`` on every document: one N, no shard twice, none missing."""
    shards = [run.get("shard") for run in runs]
    if not all(isinstance(shard, str) for shard in shards):
        return
    seen: dict[int, str] = {}
    totals = set()
    for shard, name in zip(shards, names, strict=True):
        try:
            index, count = parse_shard(str(shard))
        except argparse.ArgumentTypeError as exc:
            raise EvalIndexError(f"{name}: run.shard: {exc}") from None
        totals.add(count)
        if index in seen:
            raise EvalIndexError(f"{seen[index]} and {name} are both shard {shard}")
        seen[index] = name
    if len(totals) > 1:
        raise EvalIndexError(
            f"the documents were split in different ways: shards of {sorted(totals)}"
        )
    count = totals.pop()
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise EvalIndexError(
            f"shard {', '.join(missing)} missing: merging {len(seen)} of {count} shards would "
            "give an index over part of the test set"
        )


def _merged_run(runs: Sequence[RunInfo], count: int) -> RunInfo:
    """The first run's metadata; start time the earliest, duration the longest."""
    merged = runs[0].copy()
    merged.pop("shard", None)
    merged.pop("saved", None)
    starts = [run["started_at"] for run in runs if run.get("started_at")]
    if starts:
        merged["started_at"] = min(starts, key=_instant)
    durations = [float(run["duration_s"]) for run in runs if run.get("duration_s") is not None]
    if durations:
        merged["duration_s"] = max(durations)
    merged["shards"] = count
    return merged


def _instant(text: str) -> tuple[int, Any]:
    try:
        return 0, datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 1, text


_NUMBER = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """``gsm8k/10`` after ``gsm8k/9``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _NUMBER.split(text) if part
    )


def _ordered(samples: Sequence[Sample]) -> list[Sample]:
    positions = [sample.get("position") for sample in samples]
    if all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in positions):
        return sorted(samples, key=lambda sample: int(sample["position"]))
    dataset_order: dict[str, int] = {}
    for sample in samples:
        dataset_order.setdefault(str(sample["dataset"]), len(dataset_order))
    return sorted(
        samples,
        key=lambda sample: (dataset_order[str(sample["dataset"])], _natural(str(sample["id"]))),
    )
