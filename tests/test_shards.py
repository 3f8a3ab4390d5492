"""Sharding by id hash, and merging shard results into the document one run gives."""

from __future__ import annotations

import argparse
import hashlib
import random
from collections import Counter
from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.shards import in_shard, merge_results, parse_shard, shard_of


def test_parse_shard() -> None:
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(" 4/4 ") == (4, 4)
    assert parse_shard("1/1") == (1, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/4", "expected 1 <= I <= N (shards are numbered from 1)"),
        ("5/4", "expected 1 <= I <= N"),
        ("1/0", "expected 1 <= I <= N"),
        ("2", "expected I/N with whole numbers, e.g. 1/4"),
        ("a/b", "expected I/N with whole numbers"),
        ("1/4/2", "expected I/N with whole numbers"),
    ],
)
def test_bad_shards(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_shard(text)
    assert str(info.value).startswith(f"shard {text!r}: ")
    assert message in str(info.value)


def test_every_id_is_in_exactly_one_shard_and_shards_are_balanced() -> None:
    ids = [f"gsm8k/{i}" for i in range(4000)]
    sizes = Counter(shard_of(sample_id, 4) for sample_id in ids)
    assert sorted(sizes) == [1, 2, 3, 4]
    # 1,000 expected a shard, standard deviation about 27
    assert all(900 <= size <= 1100 for size in sizes.values()), sizes
    for sample_id in ids[:200]:
        assert sum(in_shard(sample_id, i, 4) for i in range(1, 5)) == 1


def test_shards_are_stable() -> None:
    """The assignment is sha256(id) mod N: fixed forever, the same on every machine."""
    assert [shard_of(f"gsm8k/{i}", 4) for i in range(8)] == [3, 4, 1, 2, 3, 3, 2, 1]
    digest = hashlib.sha256(b"gsm8k/1").digest()
    assert shard_of("gsm8k/1", 4) == int.from_bytes(digest, "big") % 4 + 1
    assert all(in_shard(f"x/{i}", 1, 1) for i in range(10))


def synthetic_samples(seed: int = 3) -> list[dict[str, Any]]:
    """Three datasets in test-set order, with positions, tags, subsets and a few errors."""
    rng = random.Random(seed)
    samples = []
    for dataset, weight, count in (("ifeval", 0.4, 39), ("aa_lcr", 0.3, 30), ("csqa", 0.3, 29)):
        for i in range(count):
            score: float | None = float(rng.random() < 0.6)
            if rng.random() < 0.05:
                score = None
            samples.append(
                {
                    "id": f"{dataset}/{i}",
                    "dataset": dataset,
                    "subset": f"t{i % 4}" if dataset == "csqa" else "default",
                    "task_type": "knowledge" if dataset == "csqa" else "instruction",
                    "tags": ["rag", "zh" if dataset == "csqa" else "en"],
                    "categories": ["rag_index", dataset],
                    "weight": weight,
                    "outcome": "error" if score is None else "passed" if score else "missed",
                    "score": score,
                    "position": len(samples),
                }
            )
    return samples


def shard_documents(samples: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    docs = []
    for index in range(1, count + 1):
        mine = [s for s in samples if in_shard(s["id"], index, count)]
        run = {
            "model": "m",
            "testset_sha256": "f" * 64,
            "started_at": f"2025-01-01T10:0{index}:00+00:00",
            "duration_s": 10.0 * index,
            "shard": f"{index}/{count}",
        }
        docs.append(build_results(mine, index_name="rag", run=run, seed=7))
    return docs


def test_merged_shards_equal_one_run() -> None:
    samples = synthetic_samples()
    single = build_results(samples, index_name="rag", run={}, seed=7)
    docs = shard_documents(samples, 3)
    assert all(doc["samples"] for doc in docs)
    merged = merge_results(list(reversed(docs)), seed=7)
    assert merged["index"] == single["index"]
    assert merged["tables"] == single["tables"]
    assert [s["id"] for s in merged["samples"]] == [s["id"] for s in samples]
    assert merged["run"]["started_at"] == "2025-01-01T10:01:00+00:00"
    assert merged["run"]["duration_s"] == 30.0
    assert merged["run"]["shards"] == 3
    assert "shard" not in merged["run"]


def test_without_positions_datasets_keep_their_order_and_ids_sort_naturally() -> None:
    samples = synthetic_samples()
    for sample in samples:
        del sample["position"]
    docs = shard_documents(samples, 2)
    for doc in docs:
        del doc["run"]["shard"]
    merged = merge_results(docs)
    ids = [s["id"] for s in merged["samples"]]
    first_datasets = list(dict.fromkeys(s["dataset"] for d in docs for s in d["samples"]))
    assert list(dict.fromkeys(i.split("/")[0] for i in ids)) == first_datasets
    ifeval = [int(i.split("/")[1]) for i in ids if i.startswith("ifeval/")]
    assert ifeval == sorted(ifeval) and len(ifeval) == 39


def test_overlapping_shards_are_refused() -> None:
    docs = shard_documents(synthetic_samples(), 2)
    for doc in docs:
        del doc["run"]["shard"]
    duplicate = docs[0]["samples"][0]["id"]
    message = rf"sample '{duplicate}' is in both a\.json and b\.json"
    with pytest.raises(EvalIndexError, match=message):
        merge_results([docs[0], docs[0]], labels=["a.json", "b.json"])


def test_documents_of_different_runs_are_refused() -> None:
    docs = shard_documents(synthetic_samples(), 2)
    docs[1]["run"]["testset_sha256"] = "0" * 64
    with pytest.raises(EvalIndexError, match=r"different test set \(run\.testset_sha256\)"):
        merge_results(docs, labels=["a.json", "b.json"])
    docs = shard_documents(synthetic_samples(), 2)
    docs[1]["index"]["name"] = "other"
    with pytest.raises(EvalIndexError, match=r"a\.json and b\.json are not shards of one run"):
        merge_results(docs, labels=["a.json", "b.json"])
    docs = shard_documents(synthetic_samples(), 2)
    docs[1]["run"]["model"] = "other"
    with pytest.raises(EvalIndexError, match="different model"):
        merge_results(docs)


def test_missing_or_repeated_shards_are_refused() -> None:
    docs = shard_documents(synthetic_samples(), 3)
    with pytest.raises(EvalIndexError, match=r"shard 2/3 missing: merging 2 of 3 shards"):
        merge_results([docs[0], docs[2]])
    docs[1]["run"]["shard"] = "1/3"
    with pytest.raises(EvalIndexError, match=r"document 1 and document 2 are both shard 1/3"):
        merge_results(docs)
    docs = shard_documents(synthetic_samples(), 3)
    docs[2]["run"]["shard"] = "3/4"
    with pytest.raises(EvalIndexError, match=r"split in different ways: shards of \[3, 4\]"):
        merge_results(docs)
    with pytest.raises(EvalIndexError, match="nothing to merge"):
        merge_results([])
