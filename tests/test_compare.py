"""Paired comparison of two runs: pairing, refusal, row values, intervals, p-values, rules."""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import time
from collections import Counter
from functools import partial
from typing import Any

import pytest
from factories import make_sample

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.aggregate import build_tables
from pytest_evalindex.results.compare import (
    ComparisonError,
    check_compare_fail,
    compare_results,
    failed_rules,
    format_comparison,
    format_p,
    parse_compare_fail,
)
from pytest_evalindex.results.statistics import (
    BinomialTables,
    resampled_cell_sums,
    sign_flipped_sums,
)

# every sample's categories are [root, its dataset]
sample = partial(make_sample, index="root")


def results(samples: list[dict[str, Any]], **run: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "index": {"name": "idx", "score": None},
        "tables": {},
        "samples": samples,
        "run": {"model": "m", "testset_sha256": "a" * 64, **run},
    }


def binary_runs(
    base_scores: list[int], new_scores: list[int], dataset: str = "qa", weight: float = 1.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    base = [sample(f"{dataset}/{i}", float(s), weight=weight) for i, s in enumerate(base_scores)]
    new = [sample(f"{dataset}/{i}", float(s), weight=weight) for i, s in enumerate(new_scores)]
    return results(base), results(new)


def rows(comparison: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["table"], row["name"]): row for row in comparison["rows"]}


def two_dataset_runs(seed: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two weighted datasets with tags and task types; the new run is a little worse."""
    rng = random.Random(seed)
    base, new = [], []
    for dataset, weight, count, accuracy in (("faq", 0.7, 60, 0.8), ("quiz", 0.3, 40, 0.5)):
        for i in range(count):
            common = {
                "dataset": dataset,
                "weight": weight,
                "tags": ("en", "odd") if i % 2 else ("en",),
                "task_type": "knowledge" if dataset == "faq" else "reasoning",
                "subset": f"s{i % 3}",
            }
            right = rng.random() < accuracy
            base.append(sample(f"{dataset}/{i}", float(right), **common))
            new_right = right if rng.random() < 0.85 else not right
            new.append(sample(f"{dataset}/{i}", float(new_right and rng.random() < 0.95), **common))
    return results(base), results(new)


# --------------------------------------------------------------------------- pairing


def test_identical_runs_show_no_change() -> None:
    base, _new = two_dataset_runs()
    comparison = compare_results(base, base, n_boot=500)
    assert comparison["paired_count"] == 100
    for row in comparison["rows"]:
        assert row["delta"] == 0.0
        assert row["ci95"] == [0.0, 0.0]
        assert row["p_value"] == 1.0
    assert comparison["flips"] == {"passed_to_missed": [], "missed_to_passed": []}
    assert comparison["only_in_base"] == comparison["only_in_new"] == []


def test_rows_are_aggregate_values_on_the_paired_samples() -> None:
    base, new = two_dataset_runs()
    new["samples"][3] = {**new["samples"][3], "outcome": "error", "score": None}
    base["samples"][70] = {**base["samples"][70], "outcome": "error", "score": None}
    comparison = compare_results(base, new, n_boot=200)
    assert comparison["paired_count"] == 98
    assert comparison["errors_excluded"] == 2
    assert "2 shared samples are an error in one run or both" in comparison["notes"]

    excluded = {base["samples"][3]["id"], base["samples"][70]["id"]}
    paired_base = [s for s in base["samples"] if s["id"] not in excluded]
    paired_new = [s for s in new["samples"] if s["id"] not in excluded]
    expected_base = build_tables(paired_base, index_name="idx", n_boot=0)
    expected_new = build_tables(paired_new, index_name="idx", n_boot=0)
    compared = rows(comparison)
    assert compared[("index", "idx")]["base"] == pytest.approx(expected_base["index"]["score"])
    assert compared[("index", "idx")]["new"] == pytest.approx(expected_new["index"]["score"])
    for table, table_rows in expected_base["tables"].items():
        for row_base, row_new in zip(table_rows, expected_new["tables"][table], strict=True):
            row = compared[(table, row_base["name"])]
            assert row["base"] == pytest.approx(row_base["weighted"])
            assert row["new"] == pytest.approx(row_new["weighted"])
            assert row["delta"] == pytest.approx(row_new["weighted"] - row_base["weighted"])
            assert row["count"] == row_base["count"]
    # index first, then the tables in aggregate's order, rows in order of appearance
    order = [(row["table"], row["name"]) for row in comparison["rows"]]
    assert order[:3] == [("index", "idx"), ("dataset", "faq"), ("dataset", "quiz")]
    tables = [table for table, _ in order[1:]]
    assert tables == sorted(tables, key=["dataset", "subset", "task_type", "tag", "category"].index)


def test_weighted_delta_combines_dataset_deltas_by_weight() -> None:
    base = [sample(f"a/{i}", 1.0, weight=0.75) for i in range(10)]
    base += [sample(f"b/{i}", 1.0, weight=0.25) for i in range(40)]
    new = [sample(f"a/{i}", float(i >= 2), weight=0.75) for i in range(10)]  # a: -0.2
    new += [sample(f"b/{i}", float(i >= 20), weight=0.25) for i in range(40)]  # b: -0.5
    comparison = compare_results(results(base), results(new), n_boot=200)
    index = comparison["rows"][0]
    assert index["delta"] == pytest.approx(0.75 * -0.2 + 0.25 * -0.5)
    assert index["ci95"][0] <= index["delta"] <= index["ci95"][1]
    assert comparison["flips"]["passed_to_missed"] == [
        "a/0", "a/1", *[f"b/{i}" for i in range(20)]
    ]  # fmt: skip


def test_different_test_sets_are_refused_with_advice() -> None:
    base, new = binary_runs([1] * 10, [1] * 10)
    new["samples"] = [*new["samples"][:7], sample("qa/x", 1.0), sample("qa/y", 0.0)]
    new["run"]["testset_sha256"] = "b" * 64
    with pytest.raises(ComparisonError) as info:
        compare_results(base, new)
    message = str(info.value)
    assert "3 sample ids only in the base run, 2 only in the new run" in message
    assert "test set sha256 aaaaaaaaaaaa… vs bbbbbbbbbbbb…" in message
    assert "--index-compare-intersection" in message and "--intersection" in message
    assert "compare the 7 shared samples" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, EvalIndexError)


def test_intersection_compares_the_shared_samples() -> None:
    base, new = binary_runs([1] * 10, [1] * 10)
    new["samples"] = [*new["samples"][:7], sample("qa/x", 1.0)]
    comparison = compare_results(base, new, intersection=True, n_boot=100)
    assert comparison["paired_count"] == 7
    assert comparison["only_in_base"] == ["qa/7", "qa/8", "qa/9"]
    assert comparison["only_in_new"] == ["qa/x"]


def test_same_ids_with_a_different_test_set_hash_are_compared() -> None:
    base, new = binary_runs([1, 0, 1], [1, 1, 1])
    new["run"]["testset_sha256"] = "c" * 64
    assert compare_results(base, new, n_boot=50)["paired_count"] == 3


def test_nothing_scored_in_both_is_an_error() -> None:
    base, new = binary_runs([1, 0], [1, 0])
    new["samples"] = [{**s, "outcome": "error", "score": None} for s in new["samples"]]
    with pytest.raises(ComparisonError, match="no sample is scored in both runs"):
        compare_results(base, new)


def test_duplicate_ids_are_an_error() -> None:
    base, new = binary_runs([1, 0], [1, 0])
    base["samples"].append(dict(base["samples"][0]))
    with pytest.raises(ComparisonError, match="the base run has sample id 'qa/0' twice"):
        compare_results(base, new)


def test_the_new_runs_groups_and_weights_are_used() -> None:
    base, new = binary_runs([1, 0, 1, 0], [1, 1, 1, 0])
    new["samples"][0] = {**new["samples"][0], "tags": ["fresh"]}
    comparison = compare_results(base, new, n_boot=50)
    assert ("tag", "fresh") in rows(comparison)
    assert comparison["notes"][0].startswith("1 paired samples have a different dataset")


def test_flips_in_both_directions() -> None:
    base, new = binary_runs([1, 1, 0, 0, 1], [0, 1, 1, 0, 0])
    comparison = compare_results(base, new, n_boot=50)
    assert comparison["flips"] == {
        "passed_to_missed": ["qa/0", "qa/4"],
        "missed_to_passed": ["qa/2"],
    }


def test_document_is_json_and_deterministic() -> None:
    base, new = two_dataset_runs()
    first = compare_results(base, new, seed=3, n_boot=300)
    assert json.loads(json.dumps(first)) == first
    assert compare_results(base, new, seed=3, n_boot=300) == first
    other = compare_results(base, new, seed=4, n_boot=300)
    assert other["rows"][0]["delta"] == first["rows"][0]["delta"]
    assert other["rows"][0]["ci95"] != first["rows"][0]["ci95"]
    assert set(first) >= {
        "schema_version", "base", "new", "paired_count", "alpha", "rows", "flips",
        "only_in_base", "only_in_new",
    }  # fmt: skip
    assert first["base"]["label"] == "base" and first["new"]["run"]["model"] == "m"


def test_labels_come_from_saved_runs_or_arguments() -> None:
    base, new = binary_runs([1, 0], [1, 1])
    base["run"]["saved"] = {"name": "baseline", "number": 3}
    comparison = compare_results(base, new, n_boot=0, new_label="candidate")
    assert comparison["base"]["label"] == "0003_baseline"
    assert comparison["new"]["label"] == "candidate"


def test_no_replicates_means_no_interval_or_p() -> None:
    base, new = binary_runs([1, 0, 1], [0, 0, 1])
    (index, *_rest) = compare_results(base, new, n_boot=0)["rows"]
    assert index["delta"] == pytest.approx(-1 / 3)
    assert index["ci95"] is None and index["p_value"] is None


# --------------------------------------------------------------------------- statistics


def mcnemar_exact_p(worse: int, better: int) -> float:
    discordant = worse + better
    tail = sum(math.comb(discordant, k) for k in range(min(worse, better) + 1)) / 2**discordant
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(("worse", "better"), [(12, 3), (9, 6), (20, 8), (5, 0)])
def test_p_value_matches_mcnemars_exact_test(worse: int, better: int) -> None:
    """For one dataset of pass/fail scores the sign-flip test is McNemar's exact test."""
    base_scores = [1] * worse + [0] * better + [1] * 30 + [0] * 20
    new_scores = [0] * worse + [1] * better + [1] * 30 + [0] * 20
    base, new = binary_runs(base_scores, new_scores)
    p_value = compare_results(base, new, n_boot=20000)["rows"][0]["p_value"]
    exact = mcnemar_exact_p(worse, better)
    # Monte Carlo error of a proportion from 20,000 draws, four standard errors
    assert p_value == pytest.approx(exact, abs=4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-4)


def test_interval_matches_the_normal_approximation_on_a_large_sample() -> None:
    rng = random.Random(5)
    base_scores = [int(rng.random() < 0.7) for _ in range(2000)]
    new_scores = [b if rng.random() < 0.8 else 1 - b for b in base_scores]
    base, new = binary_runs(base_scores, new_scores)
    row = compare_results(base, new, n_boot=4000)["rows"][0]
    diffs = [n - b for b, n in zip(base_scores, new_scores, strict=True)]
    half_width = 1.96 * statistics.pstdev(diffs) / math.sqrt(len(diffs))
    assert row["delta"] == pytest.approx(statistics.fmean(diffs))
    assert row["ci95"][0] == pytest.approx(row["delta"] - half_width, abs=0.003)
    assert row["ci95"][1] == pytest.approx(row["delta"] + half_width, abs=0.003)


def test_sign_flipped_sums_have_the_null_distribution() -> None:
    rng = random.Random(0)
    sums = sign_flipped_sums([(1.0, 30), (-1.0, 10), (0.0, 50), (0.5, 4)], 20000, rng)
    assert statistics.fmean(sums) == pytest.approx(0.0, abs=0.1)
    # the variance of a sum of random signs is the sum of squared values
    assert statistics.pvariance(sums) == pytest.approx(40 * 1.0 + 4 * 0.25, rel=0.05)
    assert sign_flipped_sums([(0.0, 5)], 3, rng) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("n", "p"), [(20, 0.3), (7, 0.5), (1, 0.5), (0, 0.4), (5, 0.0), (5, 1.0), (400, 0.97)]
)
def test_binomial_tables_invert_the_exact_distribution(n: int, p: float) -> None:
    """Evenly spaced uniforms land on each value in proportion to its probability."""
    tables = BinomialTables()
    grid = 100_000
    drawn = Counter(tables.draw((i + 0.5) / grid, n, p) for i in range(grid))
    for k in range(n + 1):
        exact = math.comb(n, k) * p**k * (1 - p) ** (n - k)
        assert drawn[k] / grid == pytest.approx(exact, abs=1.5 / grid)


def test_resampled_cell_sums_have_the_bootstrap_distribution() -> None:
    """A resampled sum of n values has mean n * mean and variance n * (population variance)."""
    items = [(0.0, 70), (1.0, 20), (-1.0, 10)]
    values = [v for v, c in items for _ in range(c)]
    sums = resampled_cell_sums(items, 20000, random.Random(1))
    assert statistics.fmean(sums) == pytest.approx(100 * statistics.fmean(values), abs=0.1)
    variance = 100 * statistics.pvariance(values)
    assert statistics.pvariance(sums) == pytest.approx(variance, rel=0.05)
    # more distinct values than the tables serve: aggregate's sampler, same distribution
    spread = [(0.1 * i, 10) for i in range(6)]
    sums = resampled_cell_sums(spread, 20000, random.Random(2))
    spread_values = [v for v, c in spread for _ in range(c)]
    assert statistics.fmean(sums) == pytest.approx(60 * statistics.fmean(spread_values), abs=0.05)
    assert resampled_cell_sums([(1.0, 5)], 3, random.Random(0)) == [5.0, 5.0, 5.0]


def test_speed_of_a_large_comparison() -> None:
    """2,000 paired samples, about 40 rows, 2,000 replicates: well under 3 seconds."""
    rng = random.Random(11)
    base, new = [], []
    for i in range(2000):
        dataset = f"d{i % 8}"
        common = {
            "dataset": dataset,
            "weight": 0.125,
            "subset": f"s{i % 3}",
            "task_type": f"t{i % 8 % 4}",
            "tags": [f"g{i % 8 % 5}", "all"],
        }
        right = rng.random() < 0.6
        base.append(sample(f"{dataset}/{i}", float(right), **common))
        new.append(
            sample(f"{dataset}/{i}", float(right if rng.random() < 0.8 else not right), **common)
        )
    # CPU time of this process: what the work costs, not how busy the machine is
    started = time.process_time()
    comparison = compare_results(results(base), results(new), n_boot=2000)
    elapsed = time.process_time() - started
    assert len(comparison["rows"]) >= 40
    assert elapsed < 3.0, f"{elapsed:.2f} CPU s"


# --------------------------------------------------------------------------- compare-fail


@pytest.mark.parametrize(
    ("text", "table", "name", "unit", "margin"),
    [
        ("index:2pp", "index", None, "pp", 0.02),
        ("index : 0.5 pp", "index", None, "pp", 0.005),
        ("task_type:instruction:5%", "task_type", "instruction", "%", 0.05),
        ("tag:zh:0.03", "tag", "zh", "score", 0.03),
        ("subset:mmlu/physics:1pp", "subset", "mmlu/physics", "pp", 0.01),
        ("category:reasoning_index/math:0", "category", "reasoning_index/math", "score", 0.0),
        ("dataset:gsm8k:150%", "dataset", "gsm8k", "%", 1.5),
    ],
)
def test_parse_compare_fail(
    text: str, table: str, name: str | None, unit: str, margin: float
) -> None:
    rule = parse_compare_fail(text)
    assert (rule.table, rule.name, rule.unit) == (table, name, unit)
    assert rule.margin == pytest.approx(margin)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("index", "expected TARGET:MARGIN, e.g. 'index:2pp'"),
        (":2pp", "expected TARGET:MARGIN"),
        ("tags:zh:2pp", "unknown target 'tags:zh'; expected index or task_type:NAME"),
        ("zh:2pp", "unknown target 'zh'"),
        ("tag::2pp", "no name after 'tag:'"),
        ("index:two", "margin 'two' is not 2pp, 5% or 0.03"),
        ("index:-2pp", "margin '-2pp' must be 0 or more"),
        ("index:2", "an absolute margin is at most 1 (100pp); did you mean 2pp?"),
        ("index:200pp", "an absolute margin is at most 1 (100pp)"),
    ],
)
def test_malformed_compare_fail_rules(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_compare_fail(text)
    assert str(info.value).startswith(f"compare-fail rule {text!r}: ")
    assert message in str(info.value)


def drop_runs(size: int, drop: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``size`` samples, base 70% right; the new run loses ``drop`` of them, gains none."""
    right = int(size * 0.7)
    base_scores = [1] * right + [0] * (size - right)
    new_scores = [0] * drop + [1] * (right - drop) + [0] * (size - right)
    return binary_runs(base_scores, new_scores)


def test_a_significant_drop_beyond_the_margin_fails() -> None:
    base, new = drop_runs(500, 30)  # -6pp, 30 discordant pairs all one way
    comparison = compare_results(base, new)
    (verdict,) = check_compare_fail(comparison, [parse_compare_fail("index:2pp")])
    assert verdict.failed
    assert verdict.delta == pytest.approx(-0.06)
    assert re.fullmatch(
        r"index dropped 6\.0pp \(95% CI -\d\.\d to -\d\.\dpp, p=0\.0005\) > allowed 2pp",
        verdict.message,
    ), verdict.message
    assert failed_rules([verdict]) == [verdict]


def test_a_drop_within_the_margin_passes() -> None:
    base, new = drop_runs(500, 30)
    comparison = compare_results(base, new)
    (verdict,) = check_compare_fail(comparison, [parse_compare_fail("index:8pp")])
    assert not verdict.failed
    assert verdict.message.endswith(", within allowed 8pp")


def test_a_drop_beyond_the_margin_that_is_noise_passes() -> None:
    base, new = binary_runs([1, 0, 1, 1, 0, 1, 0, 1], [0, 0, 1, 1, 0, 1, 0, 1])  # -12.5pp of 8
    comparison = compare_results(base, new)
    (verdict,) = check_compare_fail(comparison, [parse_compare_fail("index:2pp")])
    assert not verdict.failed
    assert verdict.p_value is not None and verdict.p_value > 0.5
    assert "> allowed 2pp, but not significant at alpha=0.05" in verdict.message


def test_relative_and_score_margins() -> None:
    base, new = drop_runs(500, 30)  # 0.70 -> 0.64: 8.6% relative
    comparison = compare_results(base, new)
    verdicts = check_compare_fail(
        comparison,
        [
            parse_compare_fail("index:5%"),
            parse_compare_fail("index:10%"),
            parse_compare_fail("dataset:qa:0.05"),
            parse_compare_fail("dataset:qa:0.07"),
        ],
    )
    assert [v.failed for v in verdicts] == [True, False, True, False]
    assert verdicts[0].message.startswith("index dropped 8.6% of 0.7000 (-6.0pp, 95% CI ")
    assert verdicts[2].message.startswith("dataset:qa dropped 0.060 (95% CI -0.0")


def test_a_rise_never_fails() -> None:
    base, new = drop_runs(500, 30)
    comparison = compare_results(new, base)
    (verdict,) = check_compare_fail(comparison, [parse_compare_fail("index:0pp")])
    assert not verdict.failed
    assert verdict.message.startswith("index rose 6.0pp")


def test_alpha_decides_significance() -> None:
    base, new = drop_runs(200, 6)  # 6 discordant pairs all one way: exact p = 2/64
    comparison = compare_results(base, new, n_boot=4000)
    rule = parse_compare_fail("index:1pp")
    assert check_compare_fail(comparison, [rule], alpha=0.05)[0].failed
    assert not check_compare_fail(comparison, [rule], alpha=0.01)[0].failed


def test_rules_on_missing_rows_fail() -> None:
    base, new = two_dataset_runs()
    comparison = compare_results(base, new, n_boot=100)
    (verdict,) = check_compare_fail(comparison, [parse_compare_fail("tag:zh:2pp")])
    assert verdict.failed
    assert verdict.message == "no tag named 'zh' in the comparison (tags: en, odd)"


def test_format_p() -> None:
    assert [format_p(p) for p in (1 / 2001, 0.003, 0.0472, 0.123, 1.0)] == [
        "0.0005", "0.003", "0.047", "0.12", "1"
    ]  # fmt: skip


def test_format_comparison() -> None:
    base, new = drop_runs(100, 25)
    base["run"]["saved"] = {"name": "baseline", "number": 2}
    base["index"]["score"] = 0.7
    comparison = compare_results(base, new, n_boot=500)
    lines = format_comparison(comparison, max_flips=3)
    assert lines[0] == "base: 0002_baseline, model m, index 0.7000"
    assert lines[1] == "new:  new, model m"
    assert lines[2] == "paired samples: 100"
    header = lines[4].split()
    assert header == ["table", "name", "base", "new", "delta", "95%", "CI", "p"]
    index_line = lines[6].split()
    assert index_line[:5] == ["index", "idx", "0.7000", "0.4500", "-0.2500"]
    assert index_line[-1] == "*"
    assert "* p < 0.05 (paired sign-flip test)" in lines
    start = lines.index("passed -> missed (25):")
    assert lines[start + 1 : start + 5] == [
        "  qa/0",
        "  qa/1",
        "  qa/2",
        "  ... 22 more (see the comparison JSON)",
    ]
    assert not any(line.startswith("missed -> passed") for line in lines)
