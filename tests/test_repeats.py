"""Repeat reducers (mean, pass@k, pass^k, majority) and the flakiness report."""

from __future__ import annotations

import argparse
from itertools import combinations

import pytest

from pytest_evalindex.results.repeats import (
    FlakySample,
    Reducer,
    flaky_samples,
    format_flaky,
    parse_reducer,
    reduce_repeats,
    reduce_sample,
)


def brute_force(passed: list[bool], k: int, every: bool) -> float:
    """The share of k-subsets of the repeats in which any (or every) repeat passed."""
    subsets = list(combinations(passed, k))
    hits = sum(all(s) if every else any(s) for s in subsets)
    return hits / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_and_pass_hat_k_are_the_subset_averages(n: int) -> None:
    for correct in range(n + 1):
        passed = [True] * correct + [False] * (n - correct)
        scores = [float(p) for p in passed]
        for k in range(1, n + 1):
            expected_any = brute_force(passed, k, every=False)
            expected_all = brute_force(passed, k, every=True)
            assert reduce_repeats(scores, passed, "pass@k", k) == pytest.approx(expected_any)
            assert reduce_repeats(scores, passed, "pass^k", k) == pytest.approx(expected_all)


def test_known_values() -> None:
    passed = [True, False, False, True, False]  # n=5, c=2
    scores = [1.0, 0.0, 0.0, 1.0, 0.0]
    assert reduce_repeats(scores, passed, "pass@k", 1) == pytest.approx(0.4)
    assert reduce_repeats(scores, passed, "pass@k", 2) == pytest.approx(1 - 3 / 10)
    assert reduce_repeats(scores, passed, "pass@k", 4) == 1.0
    assert reduce_repeats(scores, passed, "pass^k", 2) == pytest.approx(1 / 10)
    assert reduce_repeats(scores, passed, "pass^k", 3) == 0.0
    assert reduce_repeats(scores, passed, "pass@3") == pytest.approx(1 - 1 / 10)
    assert reduce_repeats(scores, passed, "mean") == pytest.approx(0.4)


def test_mean_of_partial_scores() -> None:
    assert reduce_repeats([0.5, 0.25, 1.0], [False, False, True], "mean") == pytest.approx(1.75 / 3)


def test_majority_ties_go_to_the_lower_score() -> None:
    assert reduce_repeats([1.0, 0.0, 1.0], [True, False, True], "majority") == 1.0
    assert reduce_repeats([1.0, 0.0, 1.0, 0.0], [True, False, True, False], "majority") == 0.0
    assert reduce_repeats([0.5, 0.5, 1.0, 0.2], [False] * 4, "majority") == 0.5


@pytest.mark.parametrize(
    ("scores", "passed", "method", "k", "message"),
    [
        ([], [], "mean", None, "no scored repeats"),
        ([1.0], [True, False], "mean", None, "1 scores but 2 pass flags"),
        ([1.0, 0.0], [True, False], "pass@k", 3, "pass@3 needs at least 3 repeats, got 2"),
        ([1.0], [True], "pass^k", None, "pass^k needs k >= 1"),
        ([1.0], [True], "median", None, "expected mean, majority, pass@K or pass^K"),
    ],
)
def test_bad_reductions(
    scores: list[float], passed: list[bool], method: str, k: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("^", r"\^")):
        reduce_repeats(scores, passed, method, k)


@pytest.mark.parametrize(
    ("text", "method", "k"),
    [
        ("mean", "mean", None),
        ("Majority", "majority", None),
        ("pass@3", "pass@k", 3),
        (" pass^2 ", "pass^k", 2),
    ],
)
def test_parse_reducer(text: str, method: str, k: int | None) -> None:
    reducer = parse_reducer(text)
    assert (reducer.method, reducer.k) == (method, k)
    assert reducer.repeats_needed == (k or 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("median", "reducer 'median': expected mean, majority, pass@K or pass^K (e.g. pass@3)"),
        ("pass@0", "reducer 'pass@0': pass@K needs a whole number K >= 1, e.g. pass@3"),
        ("pass^x", "reducer 'pass^x': pass^K needs a whole number K >= 1, e.g. pass^3"),
        ("pass@", "reducer 'pass@': pass@K needs a whole number K >= 1, e.g. pass@3"),
    ],
)
def test_bad_reducers(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_reducer(text)
    assert str(info.value) == message


def test_reducer_reduces() -> None:
    reducer = parse_reducer("pass^2")
    assert reducer.reduce([1.0, 1.0, 0.0], [True, True, False]) == pytest.approx(1 / 3)
    assert str(reducer) == "pass^2"


def test_reduce_sample() -> None:
    pass_at_2 = Reducer("pass@2", "pass@k", 2)
    assert reduce_sample([("passed", 1.0), ("missed", 0.0), ("error", None)], pass_at_2) == (
        "passed",
        1.0,
    )
    # fewer scored repeats than k: k is lowered
    assert reduce_sample([("missed", 0.0), ("error", None)], pass_at_2) == ("missed", 0.0)
    assert reduce_sample([("error", None), ("error", None)], pass_at_2) == ("error", None)
    mean = parse_reducer("mean")
    outcome, score = reduce_sample([("passed", 1.0), ("missed", 0.0)], mean)
    assert (outcome, score) == ("missed", 0.5)
    assert reduce_sample([("passed", 1.0), ("missed", 0.0)], mean, threshold=0.5)[0] == "passed"


def test_flaky_samples_most_split_first() -> None:
    outcomes = {
        "a/1": ["passed"] * 5,
        "a/2": ["passed", "missed", "passed", "passed", "passed"],
        "a/3": ["missed", "passed", "error", "passed", "missed"],
        "a/4": ["error"] * 5,
        "a/5": ["missed", "missed", "passed", "passed", "passed"],
    }
    flaky = flaky_samples(outcomes)
    assert [f.id for f in flaky] == ["a/3", "a/5", "a/2"]
    assert flaky[0].counts == {"missed": 2, "passed": 2, "error": 1}
    assert flaky[0].repeats == 5
    assert flaky[2].majority_share == pytest.approx(0.8)


def test_format_flaky() -> None:
    flaky = [
        FlakySample("gsm8k/12", {"passed": 3, "missed": 2}, 5),
        FlakySample("ifeval/7", {"missed": 4, "passed": 1}, 5),
    ]
    assert format_flaky(flaky, total=120) == [
        "2 of 120 samples gave different outcomes across repeats:",
        "  gsm8k/12  passed 3, missed 2",
        "  ifeval/7  missed 4, passed 1",
    ]
    lines = format_flaky(flaky, limit=1)
    assert lines[0] == "2 samples gave different outcomes across repeats:"
    assert lines[-1] == "  ... 1 more"
    assert format_flaky([]) == []
