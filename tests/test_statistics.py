"""Simulations: do the intervals cover, does the compare gate stay quiet, does it see drops?

Each test simulates many runs with a known truth, seeded, and prints what it measured (run
with ``-s`` to see the lines; docs/ci.md quotes them). The bounds asserted allow for the
simulation's own sampling error: with 200-400 simulated runs a rate near 5% is known to
about ±1.2 points, a power near 85% to about ±2 points.

The index in every simulation has three datasets of different accuracy and weight, with
sample counts in proportion to the weights (what the default ``weighted`` sampler draws).
"""

from __future__ import annotations

import random
from typing import Any

from factories import make_sample

from pytest_evalindex.results.aggregate import build_tables
from pytest_evalindex.results.compare import check_compare_fail, compare_results, parse_compare_fail

# name, weight, samples (of 500), mean accuracy of the base model
DATASETS = (("qa", 0.5, 250, 0.4), ("math", 0.3, 150, 0.6), ("instr", 0.2, 100, 0.8))
TRUE_INDEX = sum(weight * accuracy for _, weight, _, accuracy in DATASETS)


def paired_runs(
    rng: random.Random, *, drop: float, concentration: float | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Base and new runs over the same 500 items; each answer is right with the item's own
    probability, drawn independently for the two runs.

    Item probabilities come from a Beta distribution with the dataset's mean and the given
    ``concentration`` (small: most items are always right or always wrong, as with greedy
    decoding; None: every item has exactly the dataset's mean, the noisiest case). The new
    model's probability is the base one scaled down so each dataset, and so the index, drops
    by ``drop`` in expectation.
    """
    base, new = [], []
    for dataset, weight, count, mean in DATASETS:
        for i in range(count):
            if concentration is None:
                probability = mean
            else:
                probability = rng.betavariate(mean * concentration, (1 - mean) * concentration)
            new_probability = probability * (1 - drop / mean)
            sample_id = f"{dataset}/{i}"
            base.append(
                make_sample(
                    sample_id, float(rng.random() < probability), dataset=dataset, weight=weight
                )
            )
            new.append(
                make_sample(
                    sample_id, float(rng.random() < new_probability), dataset=dataset, weight=weight
                )
            )
    run: dict[str, Any] = {"index": {"name": "sim"}, "run": {}}
    return {**run, "samples": base}, {**run, "samples": new}


def simulate_comparisons(
    runs: int, *, drop: float, concentration: float | None, rule: str, seed: int
) -> dict[str, float]:
    """Rates over ``runs`` simulated comparisons: the rule failing, p < 0.05, the delta's
    interval covering the true drop, and the share of items whose outcome differed."""
    rng = random.Random(seed)
    rules = [parse_compare_fail(rule)]
    failed = significant = covered = 0
    discordant = 0.0
    for number in range(runs):
        base, new = paired_runs(rng, drop=drop, concentration=concentration)
        comparison = compare_results(base, new, seed=number, n_boot=1000)
        index = comparison["rows"][0]
        failed += check_compare_fail(comparison, rules)[0].failed
        significant += index["p_value"] < 0.05
        covered += index["ci95"][0] <= -drop <= index["ci95"][1]
        flips = comparison["flips"]
        discordant += (len(flips["passed_to_missed"]) + len(flips["missed_to_passed"])) / 500
    return {
        "fail": failed / runs,
        "significant": significant / runs,
        "coverage": covered / runs,
        "discordant": discordant / runs,
    }


def test_index_interval_covers_the_true_score() -> None:
    """(a) aggregate's 95% interval (1,000 replicates, as the plugin runs it) over 400 runs."""
    counts = {"qa": 60, "math": 80, "instr": 120}  # not in proportion to the weights
    rng = random.Random(1)
    runs, covered, widths = 400, 0, []
    for number in range(runs):
        samples = [
            make_sample(f"{dataset}/{i}", float(rng.random() < accuracy), weight=weight)
            for dataset, weight, _count, accuracy in DATASETS
            for i in range(counts[dataset])
        ]
        low, high = build_tables(samples, seed=number, n_boot=1000)["index"]["ci95"]
        covered += low <= TRUE_INDEX <= high
        widths.append(high - low)
    coverage = covered / runs
    print(
        f"\nindex interval: coverage {coverage:.1%} of {runs} runs "
        f"(true score {TRUE_INDEX:.2f}, mean width {sum(widths) / runs:.3f})"
    )
    assert 0.92 <= coverage <= 0.98


def test_compare_fail_rarely_fires_for_two_equal_models() -> None:
    """(b) two runs of equally good, noisy models: the strictest rule, index:0pp."""
    rates = simulate_comparisons(300, drop=0.0, concentration=None, rule="index:0pp", seed=2)
    print(
        f"\nequal models, 300 comparisons of 500 samples: rule index:0pp failed "
        f"{rates['fail']:.1%}, p < 0.05 either way {rates['significant']:.1%}, "
        f"interval covered 0 {rates['coverage']:.1%}, items answered differently "
        f"{rates['discordant']:.0%}"
    )
    # the rule needs a significant drop: about half the 5% two-sided level
    assert rates["fail"] <= 0.05
    assert rates["significant"] <= 0.08
    assert rates["coverage"] >= 0.92


def test_a_5_point_drop_on_500_samples_is_detected() -> None:
    """(c) a true 5-point drop; items mostly right or wrong every time (greedy decoding)."""
    rates = simulate_comparisons(300, drop=0.05, concentration=0.25, rule="index:2pp", seed=3)
    print(
        f"\n5-point drop, 500 samples, consistent answers: rule index:2pp failed "
        f"{rates['fail']:.1%} of 300 comparisons (power); interval covered the true drop "
        f"{rates['coverage']:.1%}; items answered differently {rates['discordant']:.0%}"
    )
    assert rates["fail"] >= 0.75
    assert 0.92 <= rates["coverage"] <= 0.98


def test_power_falls_when_answers_are_noisy() -> None:
    """The same drop when every answer is a coin flip with the dataset's accuracy: the
    worst case for a paired test, shown so the docs can say how many samples it needs."""
    rates = simulate_comparisons(200, drop=0.05, concentration=None, rule="index:2pp", seed=4)
    print(
        f"\n5-point drop, 500 samples, noisy answers: rule index:2pp failed "
        f"{rates['fail']:.1%} of 200 comparisons (power); items answered differently "
        f"{rates['discordant']:.0%}"
    )
    assert 0.2 <= rates["fail"] <= 0.6
    assert rates["coverage"] >= 0.9
