"""Aggregation: micro, macro and weighted means, table layout, bootstrap intervals, speed."""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from collections import Counter
from typing import Any

import pytest
from factories import make_sample

from pytest_evalindex.results.aggregate import TABLES, build_results, build_tables
from pytest_evalindex.results.statistics import binomial, resampled_sums


def rows_by_name(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(table, row["name"]): row for table, rows in result["tables"].items() for row in rows}


def seed_article_samples() -> list[dict[str, Any]]:
    """The seed article's run: three datasets, 98 samples, 51 right."""
    samples = []
    for i in range(39):
        samples.append(
            make_sample(f"ifeval/{i}", float(i < 36), task_type="instruction", tags=("rag", "en"),
                categories=("rag_index",), weight=0.4,
            )
        )  # fmt: skip
    for i in range(30):
        samples.append(
            make_sample(f"aa_lcr/{i}", float(i < 4), task_type="long_context", tags=("rag", "en"),
                categories=("rag_index",), weight=0.3,
            )
        )  # fmt: skip
    for i in range(29):
        samples.append(
            make_sample(f"chinese_simpleqa/{i}", float(i < 11), subset=f"topic{i % 6}",
                task_type="knowledge", tags=("rag", "zh"), categories=("rag_index",), weight=0.3,
            )
        )  # fmt: skip
    return samples


def test_seed_article_numbers() -> None:
    result = build_tables(seed_article_samples(), index_name="rag_index", n_boot=200)
    rows = rows_by_name(result)
    assert round(rows[("task_type", "instruction")]["micro"], 4) == 0.9231
    assert rows[("task_type", "instruction")]["count"] == 39
    assert round(rows[("task_type", "long_context")]["micro"], 4) == 0.1333
    assert rows[("task_type", "long_context")]["count"] == 30
    assert round(rows[("task_type", "knowledge")]["micro"], 4) == 0.3793
    assert rows[("task_type", "knowledge")]["count"] == 29
    assert round(rows[("tag", "rag")]["micro"], 4) == 0.5204
    assert rows[("tag", "rag")]["count"] == 98
    assert round(rows[("tag", "en")]["micro"], 4) == 0.5797
    assert rows[("tag", "en")]["count"] == 69
    expected_index = 0.4 * 36 / 39 + 0.3 * 4 / 30 + 0.3 * 11 / 29
    assert result["index"]["score"] == pytest.approx(expected_index)
    assert result["index"]["weighted"] == result["index"]["score"]
    assert result["index"]["name"] == "rag_index"
    assert result["index"]["count"] == 98
    assert result["index"]["errors"] == 0
    assert result["index"]["micro"] == pytest.approx(51 / 98)
    # the single category is the whole index
    assert rows[("category", "rag_index")]["weighted"] == pytest.approx(expected_index)
    # six (dataset, subset) units of the knowledge dataset, named dataset/subset
    knowledge_subsets = [name for table, name in rows if table == "subset" and "simpleqa" in name]
    assert knowledge_subsets == [f"chinese_simpleqa/topic{i}" for i in range(6)]


def test_seed_article_macro_is_over_dataset_subset_units() -> None:
    rows = rows_by_name(build_tables(seed_article_samples(), n_boot=0))
    # topic k holds samples k, k+6, ...; the first 11 are right
    topic_micro = []
    for k in range(6):
        members = list(range(k, 29, 6))
        topic_micro.append(sum(i < 11 for i in members) / len(members))
    expected_rag_macro = (36 / 39 + 4 / 30 + sum(topic_micro)) / 8
    assert rows[("tag", "rag")]["macro"] == pytest.approx(expected_rag_macro)
    assert rows[("task_type", "knowledge")]["macro"] == pytest.approx(sum(topic_micro) / 6)
    # a dataset with one subset: macro equals micro
    assert rows[("dataset", "ifeval")]["macro"] == pytest.approx(36 / 39)


def test_same_subset_name_in_two_datasets_gives_two_units() -> None:
    samples = [
        make_sample("a/0", 1.0, subset="s1", tags=("x",)),
        make_sample("a/1", 1.0, subset="s1", tags=("x",)),
        make_sample("a/2", 0.0, subset="s2", tags=("x",)),
        make_sample("a/3", 0.0, subset="s2", tags=("x",)),
        make_sample("b/0", 1.0, subset="s1", tags=("x",)),
        make_sample("b/1", 0.0, subset="s1", tags=("x",)),
        make_sample("b/2", 0.0, subset="s1", tags=("x",)),
        make_sample("b/3", 0.0, subset="s1", tags=("x",)),
    ]
    rows = rows_by_name(build_tables(samples, n_boot=0))
    assert rows[("tag", "x")]["micro"] == pytest.approx(3 / 8)
    assert rows[("tag", "x")]["macro"] == pytest.approx((1.0 + 0.0 + 0.25) / 3)
    assert [name for table, name in rows if table == "subset"] == ["a/s1", "a/s2", "b/s1"]


def test_errors_are_counted_but_not_averaged() -> None:
    samples = [
        make_sample("a/0", 1.0, weight=0.5),
        make_sample("a/1", None, weight=0.5),
        make_sample("a/2", 0.0, weight=0.5),
        make_sample("b/0", None, weight=0.5),
        make_sample("b/1", 1.0, weight=0.5),
    ]
    result = build_tables(samples, n_boot=50)
    rows = rows_by_name(result)
    assert rows[("dataset", "a")]["count"] == 2
    assert rows[("dataset", "a")]["errors"] == 1
    assert rows[("dataset", "a")]["micro"] == 0.5
    assert rows[("dataset", "b")]["micro"] == 1.0
    assert result["index"]["count"] == 3
    assert result["index"]["errors"] == 2
    assert result["index"]["score"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)


def test_an_outcome_of_error_wins_over_a_stray_score() -> None:
    stray = make_sample("a/1", 1.0)
    stray["outcome"] = "error"
    rows = rows_by_name(build_tables([make_sample("a/0", 0.0), stray], n_boot=0))
    assert (rows[("dataset", "a")]["count"], rows[("dataset", "a")]["errors"]) == (1, 1)
    assert rows[("dataset", "a")]["micro"] == 0.0


def test_group_without_scored_samples_has_no_values() -> None:
    samples = [make_sample("a/0", 1.0, tags=("ok",)), make_sample("b/0", None, tags=("down",))]
    result = build_tables(samples, n_boot=100)
    down = rows_by_name(result)[("tag", "down")]
    assert down == {
        "name": "down",
        "micro": None,
        "macro": None,
        "weighted": None,
        "count": 0,
        "errors": 1,
        "ci95": None,
    }
    # a dataset with no scored sample does not enter the index score
    assert result["index"]["score"] == 1.0


def test_empty_run_gives_an_empty_index() -> None:
    result = build_tables([], index_name="empty")
    assert result["index"]["score"] is None
    assert result["index"]["count"] == 0
    assert result["tables"] == {table: [] for table in TABLES}


def test_weighted_uses_the_whole_run_count_of_each_dataset() -> None:
    # dataset a: 4 scored samples, 2 tagged x (1.0 and 0.0); dataset b: 2 samples, both x
    samples = [
        make_sample("a/0", 1.0, tags=("x",), weight=0.25),
        make_sample("a/1", 0.0, tags=("x",), weight=0.25),
        make_sample("a/2", 1.0, weight=0.25),
        make_sample("a/3", 1.0, weight=0.25),
        make_sample("b/0", 1.0, tags=("x",), weight=0.75),
        make_sample("b/1", 1.0, tags=("x",), weight=0.75),
    ]
    rows = rows_by_name(build_tables(samples, n_boot=0))
    w_a, w_b = 0.25 / 4, 0.75 / 2
    expected = (w_a * 1.0 + w_a * 0.0 + w_b * 2.0) / (2 * w_a + 2 * w_b)
    assert rows[("tag", "x")]["weighted"] == pytest.approx(expected)
    assert rows[("tag", "x")]["micro"] == pytest.approx(3 / 4)


def test_index_weighted_is_the_schema_weighted_mean_of_dataset_scores() -> None:
    rng = random.Random(3)
    weights = {"a": 0.2, "b": 0.5, "c": 0.3}
    sizes = {"a": 13, "b": 40, "c": 7}
    samples = [
        make_sample(f"{d}/{i}", rng.choice([0.0, 0.5, 1.0]), weight=weights[d])
        for d in weights
        for i in range(sizes[d])
    ]
    result = build_tables(samples, n_boot=0)
    rows = rows_by_name(result)
    expected = sum(weights[d] * rows[("dataset", d)]["micro"] for d in weights)
    assert result["index"]["score"] == pytest.approx(expected)
    for d in weights:  # a single dataset: weighted equals micro
        assert rows[("dataset", d)]["weighted"] == pytest.approx(rows[("dataset", d)]["micro"])


def test_categories_count_under_every_prefix_and_tags_under_each() -> None:
    samples = [
        make_sample("gsm8k/0", 1.0, categories=("reasoning_index", "math"), tags=("en", "easy")),
        make_sample("arc/0", 0.0, categories=("reasoning_index", "logic"), tags=("en",)),
        make_sample("aime/0", 0.0, categories=("reasoning_index", "math", "hard")),
    ]
    result = build_tables(samples, n_boot=0)
    categories = {row["name"]: row["count"] for row in result["tables"]["category"]}
    assert categories == {
        "reasoning_index": 3,
        "reasoning_index/math": 2,
        "reasoning_index/logic": 1,
        "reasoning_index/math/hard": 1,
    }
    assert list(categories) == [
        "reasoning_index",
        "reasoning_index/math",
        "reasoning_index/logic",
        "reasoning_index/math/hard",
    ]
    tags = {row["name"]: (row["count"], row["micro"]) for row in result["tables"]["tag"]}
    assert tags == {"en": (2, 0.5), "easy": (1, 1.0)}


def test_rows_keep_first_appearance_order() -> None:
    samples = [
        make_sample("zeta/0", 1.0, task_type="math", tags=("zh",)),
        make_sample("alpha/0", 1.0, task_type="code", tags=("en", "zh")),
        make_sample("zeta/1", 1.0, task_type="knowledge", tags=("en",)),
    ]
    tables = build_tables(samples, n_boot=0)["tables"]
    assert [r["name"] for r in tables["dataset"]] == ["zeta", "alpha"]
    assert [r["name"] for r in tables["task_type"]] == ["math", "code", "knowledge"]
    assert [r["name"] for r in tables["tag"]] == ["zh", "en"]


def test_row_keys_and_results_document() -> None:
    run = {"model": "m", "seed": 42}
    samples = seed_article_samples()
    document = build_results(samples, index_name="rag_index", run=run, n_boot=100)
    assert list(document) == [
        "schema_version", "index", "tables", "usage", "metrics", "samples", "run",
    ]  # fmt: skip
    assert document["usage"]["total"]["samples"] == len(samples)
    assert document["schema_version"] == 1
    assert document["run"] == run
    assert document["samples"] == samples
    assert list(document["tables"]) == list(TABLES)
    assert list(document["index"])[:5] == ["name", "score", "ci95", "count", "errors"]
    for rows in document["tables"].values():
        for row in rows:
            assert list(row) == ["name", "micro", "macro", "weighted", "count", "errors", "ci95"]
    # builtins only: survives a JSON round trip unchanged
    assert json.loads(json.dumps(document)) == document


# bootstrap intervals


def test_intervals_are_deterministic_for_a_seed() -> None:
    samples = seed_article_samples()
    first = build_tables(samples, seed=7, n_boot=300)
    again = build_tables(samples, seed=7, n_boot=300)
    other = build_tables(samples, seed=8, n_boot=300)
    assert first == again
    assert first["index"]["ci95"] != other["index"]["ci95"]


def test_a_rows_interval_depends_only_on_its_own_samples() -> None:
    samples = seed_article_samples()
    alone = build_tables([s for s in samples if s["dataset"] == "aa_lcr"], seed=1, n_boot=300)
    together = build_tables(samples, seed=1, n_boot=300)
    assert (
        rows_by_name(alone)[("dataset", "aa_lcr")]["ci95"]
        == (rows_by_name(together)[("dataset", "aa_lcr")]["ci95"])
    )


def test_intervals_contain_the_point_estimate() -> None:
    rng = random.Random(11)
    samples = [
        make_sample(
            f"d{d}/{i}", rng.choice([0.0, 1.0, 1.0, 0.5]), subset=f"s{i % 3}", tags=(f"t{d % 2}",),
            categories=("root", f"g{d % 3}"), weight=(d + 1) / 15,
        )
        for d in range(5)
        for i in range(60)
    ]  # fmt: skip
    result = build_tables(samples, seed=5, n_boot=500)
    rows = [result["index"], *(r for rows in result["tables"].values() for r in rows)]
    for row in rows:
        low, high = row["ci95"]
        assert low <= row["weighted"] <= high, row
        assert 0.0 <= low <= high <= 1.0


def test_interval_width_for_a_fair_coin() -> None:
    # 100 samples with half right: the standard error is 0.05, so the width is about 0.196
    samples = [make_sample(f"coin/{i}", float(i % 2)) for i in range(100)]
    low, high = build_tables(samples, seed=0, n_boot=2000)["index"]["ci95"]
    assert 0.16 <= high - low <= 0.24
    assert low < 0.5 < high


def test_a_constant_row_has_a_point_interval_and_n_boot_zero_has_none() -> None:
    samples = [make_sample(f"all_right/{i}", 1.0) for i in range(20)]
    assert build_tables(samples, n_boot=100)["index"]["ci95"] == [1.0, 1.0]
    assert build_tables(samples, n_boot=0)["index"]["ci95"] is None


def test_interval_of_a_partial_row_keeps_dataset_shares_fixed() -> None:
    # tag x covers dataset a (all right) and only the wrong half of dataset b: whatever is
    # drawn, b's part of x is all wrong and a's all right, so x's interval is a point
    samples = [make_sample(f"a/{i}", 1.0, tags=("x",), weight=0.5) for i in range(10)]
    samples += [make_sample(f"b/{i}", 0.0, tags=("x",), weight=0.5) for i in range(10)]
    samples += [make_sample(f"b/{i + 10}", 1.0, weight=0.5) for i in range(10)]
    rows = rows_by_name(build_tables(samples, n_boot=200))
    x = rows[("tag", "x")]
    assert x["ci95"] == [x["weighted"], x["weighted"]]
    assert rows[("dataset", "b")]["ci95"][0] < rows[("dataset", "b")]["ci95"][1]


def binomial_pmf(n: int, p: float, k: int) -> float:
    log_comb = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return math.exp(log_comb + k * math.log(p) + (n - k) * math.log1p(-p))


@pytest.mark.parametrize(
    ("n", "p"),
    [(12, 0.2), (40, 0.1), (60, 0.5), (500, 0.3), (200, 0.8), (5000, 0.002)],
    ids=["inversion", "inversion-small-p", "btrs-half", "btrs", "btrs-mirrored", "inversion-big-n"],
)
def test_binomial_sampler_matches_the_exact_distribution(n: int, p: float) -> None:
    rng = random.Random(f"binomial:{n}:{p}")
    draws = 20_000
    counts = Counter(binomial(rng, n, p) for _ in range(draws))
    assert min(counts) >= 0 and max(counts) <= n
    # chi-square over bins with an expected count of at least 5, the tails merged
    expected = [draws * binomial_pmf(n, p, k) for k in range(n + 1)]
    bins: list[tuple[float, int]] = []
    pending_expected, pending_observed = 0.0, 0
    for k in range(n + 1):
        pending_expected += expected[k]
        pending_observed += counts.get(k, 0)
        if pending_expected >= 5.0:
            bins.append((pending_expected, pending_observed))
            pending_expected, pending_observed = 0.0, 0
    last_expected, last_observed = bins.pop()
    bins.append((last_expected + pending_expected, last_observed + pending_observed))
    chi_square = sum((o - e) ** 2 / e for e, o in bins)
    degrees = len(bins) - 1
    # far above the 99.9th percentile would mean a wrong sampler
    assert chi_square < degrees + 5 * math.sqrt(2 * degrees), (chi_square, degrees)
    assert statistics.fmean(counts.elements()) == pytest.approx(n * p, rel=0.03)


def test_binomial_edges() -> None:
    rng = random.Random(0)
    assert binomial(rng, 0, 0.5) == 0
    assert binomial(rng, 10, 0.0) == 0
    assert binomial(rng, 10, 1.0) == 10
    assert binomial(rng, -3, 0.5) == 0


@pytest.mark.parametrize(
    "items",
    [
        ((0.0, 300), (1.0, 200)),  # the multinomial path
        ((0.0, 5), (0.5, 3), (1.0, 4)),  # few samples per value: drawn one by one
        ((0.25, 40), (0.5, 90), (1.0, 70)),
    ],
)
def test_resampled_sums_have_the_bootstrap_mean_and_variance(
    items: tuple[tuple[float, int], ...],
) -> None:
    population = [value for value, count in items for _ in range(count)]
    size = len(population)
    sums = resampled_sums(items, 20_000, random.Random(2))
    expected_mean = sum(population)
    expected_variance = size * statistics.pvariance(population)
    assert statistics.fmean(sums) == pytest.approx(expected_mean, rel=0.01)
    assert statistics.pvariance(sums) == pytest.approx(expected_variance, rel=0.05)
    assert min(sums) >= 0.0 and max(sums) <= size * max(population)


def test_resampled_sums_of_one_value_are_constant() -> None:
    assert resampled_sums(((0.5, 6),), 4, random.Random(0)) == [3.0, 3.0, 3.0, 3.0]


def performance_samples() -> list[dict[str, Any]]:
    rng = random.Random(0)
    samples = []
    for d in range(20):
        accuracy = rng.random()
        for i in range(1000):
            samples.append(
                make_sample(
                    f"dataset{d}/{i}", float(rng.random() < accuracy), subset=f"s{i % 2}" if d < 5
                    else "default", task_type=f"type{d % 4}", tags=(("en", "zh")[d % 2], "rag"),
                    categories=("index", f"group{d % 3}"), weight=1 / 20,
                )
            )  # fmt: skip
    return samples


def test_bootstrap_of_twenty_thousand_samples_is_fast() -> None:
    samples = performance_samples()
    # CPU time of this process: what the work costs, not how busy the machine is
    started = time.process_time()
    result = build_tables(samples, seed=0, n_boot=1000)
    elapsed = time.process_time() - started
    rows = sum(len(rows) for rows in result["tables"].values()) + 1
    print(f"\nbootstrap: {len(samples)} samples, {rows} rows, n_boot=1000: {elapsed:.2f} CPU s")
    assert rows >= 40
    assert all(row["ci95"] is not None for rows in result["tables"].values() for row in rows)
    assert elapsed < 2.0
