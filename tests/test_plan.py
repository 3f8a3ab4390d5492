"""`evalindex plan` and the small-sample warning.

The formulas of ``results.planning`` are checked against simulated runs scored by the real
estimators (``results.aggregate`` for one run, ``results.compare`` for two), the way
tests/test_statistics.py checks intervals and power: each simulation is seeded, prints what
it measured (``-s``), and its bounds allow for the simulation's own sampling error.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from factories import make_results, make_sample

from pytest_evalindex.cli import main
from pytest_evalindex.results import planning
from pytest_evalindex.results.aggregate import build_tables
from pytest_evalindex.results.compare import check_compare_fail, compare_results, parse_compare_fail
from pytest_evalindex.run.tokenizer import token_counter
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.sampling import allocate

pytest_plugins = ["pytester"]

# name, weight, samples, accuracy; counts deliberately not in proportion to the weights
DATASETS = (("qa", 0.5, 60, 0.4), ("math", 0.3, 80, 0.7), ("instr", 0.2, 120, 0.85))
WEIGHTS = {name: weight for name, weight, _, _ in DATASETS}
COUNTS = {name: count for name, _, count, _ in DATASETS}
ACCURACY = {name: accuracy for name, _, _, accuracy in DATASETS}
VARIANCE = {name: p * (1 - p) for name, p in ACCURACY.items()}
TRUE_INDEX = sum(WEIGHTS[d] * ACCURACY[d] for d in WEIGHTS)


def simulated_run(
    rng: random.Random, counts: dict[str, int], accuracy: dict[str, float]
) -> list[Any]:
    return [
        make_sample(f"{d}/{i}", float(rng.random() < accuracy[d]), weight=WEIGHTS[d])
        for d in WEIGHTS
        for i in range(counts[d])
    ]


# --------------------------------------------------------------------------- formulas


def test_index_half_width_matches_the_spread_of_simulated_runs() -> None:
    """The planned half-width (from the true accuracies) against 1,000 simulated indexes:
    their spread, and how often they land within it of the truth."""
    rng = random.Random(11)
    planned = planning.half_width(planning.index_variance(WEIGHTS, COUNTS, VARIANCE))
    scores = []
    for _ in range(1000):
        scores.append(
            build_tables(simulated_run(rng, COUNTS, ACCURACY), n_boot=0)["index"]["score"]
        )
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    within = sum(abs(s - TRUE_INDEX) <= planned for s in scores) / len(scores)
    print(
        f"\nplanned ±{planned:.4f}; simulated 1.96 sd ±{planning.Z95 * spread:.4f}, "
        f"{within:.1%} of 1000 runs within the planned half-width"
    )
    assert planning.Z95 * spread == pytest.approx(planned, rel=0.06)
    assert 0.93 <= within <= 0.97


def test_planned_half_width_matches_the_bootstrap_intervals_the_plugin_prints() -> None:
    """The mean half-width of aggregate's own 95% bootstrap intervals; the worst case is
    at least that, and equal to it when every accuracy is 0.5."""
    rng = random.Random(12)
    for accuracy in (ACCURACY, dict.fromkeys(ACCURACY, 0.5)):
        widths = []
        for number in range(100):
            samples = simulated_run(rng, COUNTS, accuracy)
            low, high = build_tables(samples, seed=number, n_boot=1000)["index"]["ci95"]
            widths.append((high - low) / 2)
        measured = sum(widths) / len(widths)
        variance = {d: p * (1 - p) for d, p in accuracy.items()}
        planned = planning.half_width(planning.index_variance(WEIGHTS, COUNTS, variance))
        worst = planning.half_width(planning.index_variance(WEIGHTS, COUNTS))
        print(f"\nbootstrap mean ±{measured:.4f}, planned ±{planned:.4f}, worst ±{worst:.4f}")
        assert measured == pytest.approx(planned, rel=0.05)
        assert worst >= measured * 0.98
    assert worst == pytest.approx(planned)  # the last round was the worst case itself


def test_effective_sample_size() -> None:
    # drawn in proportion to the weights: every sample counts fully
    assert planning.effective_sample_size({"a": 0.6, "b": 0.4}, {"a": 60, "b": 40}) == (
        pytest.approx(100)
    )
    # one sample carrying 60% of the weight (as a published EvalScope example does)
    n_eff = planning.effective_sample_size({"a": 0.6, "b": 0.4}, {"a": 1, "b": 40})
    assert n_eff == pytest.approx(1 / (0.36 + 0.16 / 40))
    assert n_eff < 3
    # its meaning: the index is as precise as n_eff equally weighted samples
    assert planning.index_variance(WEIGHTS, COUNTS) == pytest.approx(
        0.25 / planning.effective_sample_size(WEIGHTS, COUNTS)
    )
    # unnormalised weights mean the same thing
    assert planning.effective_sample_size({"a": 3, "b": 2}, {"a": 1, "b": 40}) == (
        pytest.approx(n_eff)
    )
    assert planning.effective_sample_size({"a": 1, "b": 1}, {"a": 0, "b": 5}) == 0


def paired_power(
    rng: random.Random,
    runs: int,
    *,
    drop: float,
    rule: str,
    counts: dict[str, int],
    concentration: float | None,
) -> tuple[float, float]:
    """(share of comparisons whose rule failed, share of items answered differently) over
    simulated pairs of runs; item probabilities as in tests/test_statistics.py."""
    rules = [parse_compare_fail(rule)]
    failed, discordant = 0, 0.0
    total = sum(counts.values())
    for number in range(runs):
        base, new = [], []
        for dataset, mean in ACCURACY.items():
            for i in range(counts[dataset]):
                if concentration is None:
                    p = mean
                else:
                    p = rng.betavariate(mean * concentration, (1 - mean) * concentration)
                q = p * (1 - drop / mean)
                w = WEIGHTS[dataset]
                base.append(make_sample(f"{dataset}/{i}", float(rng.random() < p), weight=w))
                new.append(make_sample(f"{dataset}/{i}", float(rng.random() < q), weight=w))
        doc: dict[str, Any] = {"index": {"name": "sim"}, "run": {}}
        comparison = compare_results(
            {**doc, "samples": base}, {**doc, "samples": new}, seed=number, n_boot=500
        )
        failed += check_compare_fail(comparison, rules)[0].failed
        flips = comparison["flips"]
        discordant += (len(flips["passed_to_missed"]) + len(flips["missed_to_passed"])) / total
    return failed / runs, discordant / runs


def test_the_detectable_drop_is_caught_with_the_planned_power() -> None:
    """Noisy answers (each a coin flip with the dataset's accuracy), the rule index:0pp:
    a true drop of the planned size fails the rule about 80% of the time."""
    counts = {"qa": 250, "math": 150, "instr": 100}
    differences = {d: 2 * v for d, v in VARIANCE.items()}  # independent answers
    drop = planning.detectable_drop(WEIGHTS, counts, differences)
    power, _ = paired_power(
        random.Random(21), 300, drop=drop, rule="index:0pp", counts=counts, concentration=None
    )
    print(f"\nplanned drop {drop:.4f}: rule index:0pp failed {power:.1%} of 300 comparisons")
    assert 0.72 <= power <= 0.88


def test_the_detectable_drop_with_a_margin_and_a_measured_discordance() -> None:
    """Consistent answers (greedy decoding) and the rule index:2pp: plan with the share of
    items that two runs of equal models answer differently, measured first, then check the
    planned drop's power."""
    counts = {"qa": 250, "math": 150, "instr": 100}
    _, discordance = paired_power(
        random.Random(22), 40, drop=0.0, rule="index:0pp", counts=counts, concentration=0.25
    )
    measured = dict.fromkeys(WEIGHTS, discordance)
    drop = planning.detectable_drop(WEIGHTS, counts, measured, margin=0.02, flips_grow=True)
    worst = planning.detectable_drop(WEIGHTS, counts, margin=0.02)
    power, _ = paired_power(
        random.Random(23), 300, drop=drop, rule="index:2pp", counts=counts, concentration=0.25
    )
    print(
        f"\n{discordance:.1%} answered differently: planned drop {drop:.4f} (worst case "
        f"{worst:.4f}); rule index:2pp failed {power:.1%} of 300 comparisons"
    )
    assert drop < worst
    assert 0.72 <= power <= 0.88
    # and the power formula agrees with itself
    assert planning.detection_power(
        drop, WEIGHTS, counts, measured, margin=0.02, flips_grow=True
    ) == pytest.approx(0.8)
    # planning with the equal-model rate alone, as if a drop changed no further answer,
    # promises too much: the same simulation catches that smaller drop far less often
    naive = planning.detectable_drop(WEIGHTS, counts, measured, margin=0.02)
    assert naive < drop * 0.9


def test_the_count_for_a_half_width_gives_that_half_width() -> None:
    """Plan the count for ±0.05 under the weighted sampler, split it with the sampler's own
    allocation, and measure the spread of simulated indexes."""
    count = planning.count_for_half_width(0.05, WEIGHTS, WEIGHTS, VARIANCE)
    names = list(WEIGHTS)
    split, _ = allocate([10**6] * 3, [WEIGHTS[d] for d in names], count, "weighted")
    counts = dict(zip(names, split, strict=True))
    rng = random.Random(31)
    scores = [
        build_tables(simulated_run(rng, counts, ACCURACY), n_boot=0)["index"]["score"]
        for _ in range(1000)
    ]
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1))
    print(f"\ncount {count} for ±0.05: simulated ±{planning.Z95 * spread:.4f}")
    assert planning.Z95 * spread == pytest.approx(0.05, rel=0.07)
    # the worst case under the weighted sampler is the textbook 1.96² · 0.25 / h²
    assert planning.count_for_half_width(0.02, WEIGHTS, WEIGHTS) == 2401


# --------------------------------------------------------------------------- the warning


def test_small_heavy_datasets_are_named() -> None:
    # EvalScope's example: one sample carrying 60% of the weight
    small = planning.small_datasets({"a": 0.6, "b": 0.4}, {"a": 1, "b": 40})
    assert [(d.name, d.count) for d in small] == [("a", 1)]
    message = planning.small_sample_warning({"a": 0.6, "b": 0.4}, {"a": 1, "b": 40})
    assert message is not None
    assert "'a' 1 sample for 60%" in message
    assert "effective sample size is 2.7 of 41 samples" in message
    # the threshold: fewer than 30 samples and more than 25% of the weight
    assert [d.name for d in planning.small_datasets({"a": 26, "b": 74}, {"a": 29, "b": 60})]
    assert not planning.small_datasets({"a": 26, "b": 74}, {"a": 30, "b": 60})
    assert not planning.small_datasets({"a": 24, "b": 76}, {"a": 29, "b": 60})
    # a light dataset with so few samples that it alone is most of the index's variance
    light = planning.small_datasets({"a": 0.1, "b": 0.9}, {"a": 2, "b": 1000})
    assert [(d.name, round(d.variance_share, 2)) for d in light] == [("a", 0.86)]
    # many samples everywhere: nothing to say
    assert planning.small_sample_warning(WEIGHTS, {"qa": 500, "math": 300, "instr": 200}) is None


# --------------------------------------------------------------------------- tokens


def test_tokens_are_counted_or_approximated_and_say_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert planning.approximate_tokens("") == 0
    assert planning.approximate_tokens("abcde") == 2
    counter = token_counter()
    try:
        import tiktoken  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        # the dev extra installs the embedded model, whose tokenizer is the real one here
        assert counter.method == "the embedded model's tokenizer (SmolLM2)" and counter.exact
        assert counter.count("Hello world") == 2
        assert counter.count("") == 0
    else:
        assert counter.exact
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")
    if "tiktoken" not in counter.method:
        assert token_counter() is planning.APPROXIMATE
    assert planning.APPROXIMATE.method == "about 4 characters a token"
    words = planning.TokenCounter(lambda text: len(text.split()), "words", exact=True)
    # the text's tokens plus the chat format's few per message
    assert planning.prompt_tokens(["one two", "three"], words) == 3 + 2 * 4


# --------------------------------------------------------------------------- the command

SPEC = """\
name: plan_index
count: 40
seed: 3
model:
  name: m
  base_url: {base_url}
  generation: {{max_tokens: 100}}
datasets:
  - name: faq
    weight: 3
    adapter: general_qa
    fields: {{input: question, target: answer}}
    scorer: includes
    source: faq.jsonl
  - name: sums
    weight: 1
    adapter: general_qa
    fields: {{input: question, target: answer}}
    scorer: numeric
    source: sums.jsonl
"""


def make_project(folder: Path, base_url: str = "http://127.0.0.1:9/v1") -> Path:
    rows = {
        "faq": [{"question": f"Question number {i}?", "answer": "yes"} for i in range(60)],
        "sums": [{"question": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(60)],
    }
    for name, items in rows.items():
        text = "".join(json.dumps(row) + "\n" for row in items)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    spec = folder / "plan.yaml"
    spec.write_text(SPEC.format(base_url=base_url), encoding="utf-8")
    return spec


def plan_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> dict[str, Any]:
    assert main(["plan", *map(str, args), "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_plan_of_a_spec_prints_records_tokens_and_statistics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")  # the approximation, whatever is here
    spec = make_project(tmp_path)
    assert main(["plan", str(spec), "--half-width", "0.05"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("evalindex plan: plan_index, 40 records from 2 datasets")
    faq = next(line for line in lines if line.startswith("faq "))
    assert faq.split()[:3] == ["faq", "75.0%", "30"]
    assert "about 4 characters a token" in out
    assert "100 per answer at most (the spec's model.generation.max_tokens)" in out
    assert "cost: no prices; give --price IN,OUT" in out
    # 30 and 10 samples for 75% and 25%: in proportion, so n_eff is the count
    assert "effective sample size 40.0 of 40 records" in out
    half = planning.half_width(
        planning.index_variance({"faq": 3, "sums": 1}, {"faq": 30, "sums": 10})
    )
    assert f"index: 95% interval ±{half:.3f} (worst case)" in out
    assert "count: 385 records for an index interval of ±0.05 (split like the weights)" in out
    # 'sums' has 10 samples, not more than 25% of the weight: no warning
    assert err == ""


def test_plan_json_shape_and_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path)
    plan = plan_json(capsys, spec, "--price", "2,8", "--count", "20", "--seed", "5")
    assert set(plan) == {
        "index", "file", "kind", "sampler", "seed", "count", "records", "datasets", "tokens",
        "cost", "statistics", "warnings",
    }  # fmt: skip
    assert (plan["index"], plan["kind"], plan["seed"], plan["count"]) == (
        "plan_index",
        "spec",
        5,
        20,
    )
    assert [(d["name"], d["records"]) for d in plan["datasets"]] == [("faq", 15), ("sums", 5)]
    assert sum(d["weight"] for d in plan["datasets"]) == pytest.approx(1)
    tokens = plan["tokens"]
    assert tokens["prompt"] == sum(d["prompt_tokens"] for d in plan["datasets"]) > 20 * 4
    assert tokens["output"] == 20 * 100
    assert plan["cost"]["total"] == pytest.approx((tokens["prompt"] * 2 + 2000 * 8) / 1e6)
    assert plan["cost"]["price_from"] == "--price"
    stats = plan["statistics"]
    assert stats["effective_sample_size"] == pytest.approx(20)
    assert stats["detectable_drop"]["drop"] == pytest.approx(
        planning.detectable_drop({"faq": 3, "sums": 1}, {"faq": 15, "sums": 5})
    )
    assert stats["count_for_half_width"] is None
    # 5 samples carry 25%: not more than a quarter, but 'faq' (15 for 75%) is named
    assert len(plan["warnings"]) == 1 and "'faq' 15 samples for 75%" in plan["warnings"][0]


def test_plan_prices_from_the_spec_unless_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_project(tmp_path)
    text = spec.read_text("utf-8").replace(
        "  generation: {max_tokens: 100}\n",
        "  generation: {max_tokens: 100}\n  pricing: {input: 1.5, output: 6}\n",
    )
    spec.write_text(text, "utf-8")
    plan = plan_json(capsys, spec)
    tokens = plan["tokens"]
    assert plan["cost"]["price_from"] == "the spec's model.pricing"
    assert plan["cost"]["total"] == pytest.approx((tokens["prompt"] * 1.5 + 40 * 100 * 6) / 1e6)
    # the command line wins over the spec
    given = plan_json(capsys, spec, "--price", "2,8")
    assert given["cost"]["price_from"] == "--price"
    assert given["cost"]["total"] == pytest.approx((tokens["prompt"] * 2 + 40 * 100 * 8) / 1e6)


def test_plan_of_a_test_set_matches_the_plan_of_its_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_project(tmp_path)
    from_spec = plan_json(capsys, spec)
    testset = tmp_path / "frozen.jsonl"
    assert main(["sample", str(spec), "-o", str(testset)]) == 0
    capsys.readouterr()
    from_testset = plan_json(capsys, testset)
    assert from_testset["kind"] == "testset"
    assert from_testset["index"] == "plan_index"
    assert from_testset["datasets"] == [
        {**d, "output_tokens": d["records"] * 512} for d in from_spec["datasets"]
    ]  # a test set does not know the spec's max_tokens: the stated default
    assert (
        from_testset["tokens"]["output_from"]
        == "512 per answer (a default guess; give --output-tokens)"
    )
    assert from_testset["statistics"] == from_spec["statistics"]


def test_plan_from_a_saved_run_uses_its_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_project(tmp_path)
    usage = {"prompt_tokens": 5, "completion_tokens": 20}
    samples = [
        make_sample(f"faq/{i}", float(i % 10 != 0), weight=0.75, usage=usage) for i in range(30)
    ]
    run = tmp_path / "run.json"
    run.write_text(json.dumps(make_results(samples)), encoding="utf-8")
    plan = plan_json(capsys, spec, "--from", run, "--margin", "5%")
    faq, sums = plan["datasets"]
    observed = planning.Observed(mean=0.9, variance=0.09, count=30, completion_tokens=20)
    assert faq["scores_from"] == "observed"
    assert faq["score_variance"] == pytest.approx(observed.planning_variance)
    assert (sums["scores_from"], sums["score_variance"]) == ("worst case", 0.25)
    assert faq["output_tokens"] == 30 * 20  # observed answer length; sums: the spec's budget
    assert sums["output_tokens"] == 10 * 100
    stats = plan["statistics"]
    assert stats["scores_from"] == str(run)
    drop = stats["detectable_drop"]
    assert drop["margin"] == pytest.approx(0.05 * 0.9)  # 5% of the observed score
    assert drop["differences_from"] == "independent answers at the observed scores"
    assert stats["index_half_width"] < plan_json(capsys, spec)["statistics"]["index_half_width"]


def test_plan_with_a_discordance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_project(tmp_path)
    worst = plan_json(capsys, spec)["statistics"]["detectable_drop"]["drop"]
    rare = plan_json(capsys, spec, "--discordance", "0.1")["statistics"]["detectable_drop"]
    assert rare["differences_from"].startswith("10% of the samples answered differently")
    counts = {"faq": 30, "sums": 10}
    assert rare["drop"] == pytest.approx(
        planning.detectable_drop(
            {"faq": 3, "sums": 1}, counts, {"faq": 0.1, "sums": 0.1}, flips_grow=True
        )
    )
    assert rare["drop"] < worst


def test_plan_sends_no_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeOpenAI() as server:
        spec = make_project(tmp_path, base_url=server.base_url)
        assert main(["plan", str(spec)]) == 0
        assert server.requests == []
    assert "40 records" in capsys.readouterr().out


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_bad_input_exits_4_before_printing_anything(tmp_path: Path) -> None:
    spec = make_project(tmp_path)
    testset = tmp_path / "frozen.jsonl"
    assert main(["sample", str(spec), "-o", str(testset)]) == 0
    not_results = tmp_path / "not_results.json"
    not_results.write_text("[1, 2]", encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ndatasets: []\n", encoding="utf-8")
    cases = {
        "no such file": ["plan", tmp_path / "missing.yaml"],
        "lists no datasets": ["plan", broken],
        "only apply to a spec": ["plan", testset, "--count", "5"],
        "not_results.json": ["plan", spec, "--from", not_results],
        "relative to the base score": ["plan", spec, "--margin", "5%"],
    }
    for expected, args in cases.items():
        result = run_cli(*args)
        assert result.returncode == 4, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("evalindex: error: ")
        assert expected in result.stderr
    usage = run_cli("plan", spec, "--price", "cheap")
    assert usage.returncode == 2
    assert "expected INPUT,OUTPUT prices" in usage.stderr


# --------------------------------------------------------------------------- the warning elsewhere

HEAVY_SMALL = """\
name: lopsided
count: 20
datasets:
  - name: rare
    weight: 0.6
    adapter: general_qa
    fields: {input: question, target: answer}
    source: rare.jsonl
  - name: common
    weight: 0.4
    adapter: general_qa
    fields: {input: question, target: answer}
    source: common.jsonl
"""


def write_lopsided(folder: Path) -> Path:
    """A spec whose heavy dataset has one record: the sampler gives it all it has."""
    (folder / "rare.jsonl").write_text('{"question": "Only one?", "answer": "yes"}\n', "utf-8")
    common = "".join(
        json.dumps({"question": f"Question {i}?", "answer": "yes"}) + "\n" for i in range(60)
    )
    (folder / "common.jsonl").write_text(common, "utf-8")
    spec = folder / "lopsided.yaml"
    spec.write_text(HEAVY_SMALL, "utf-8")
    return spec


def test_sample_warns_when_few_samples_carry_much_weight(tmp_path: Path) -> None:
    result = run_cli("sample", write_lopsided(tmp_path), "-o", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if "few samples" in line)
    assert warning.startswith("evalindex: warning: few samples carry much of the index weight")
    assert "'rare' 1 sample for 60%" in warning
    assert "effective sample size is 2.7 of 20 samples" in warning
    (tmp_path / "balanced").mkdir()
    balanced = run_cli("sample", make_project(tmp_path / "balanced"), "-o", tmp_path / "b.jsonl")
    assert "few samples" not in balanced.stderr


@pytest.fixture
def lopsided(pytester: pytest.Pytester) -> pytest.Pytester:
    write_lopsided(pytester.path)
    make_project(pytester.path)
    return pytester


def test_pytest_header_warns_when_few_samples_carry_much_weight(
    lopsided: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(default="yes") as server:
        args = ["--index-base-url", server.base_url, "--index-model", "m", *run_mode]
        result = lopsided.runpytest("--index", "lopsided.yaml", *args)
        assert result.ret == 0
        warnings = [line for line in result.outlines if line.startswith("evalindex: warning:")]
        assert len(warnings) == 1
        assert warnings[0].startswith("evalindex: warning: index 'lopsided': few samples")
        assert "'rare' 1 sample for 60%" in warnings[0]
        assert "effective sample size is 2.7 of 20 samples" in warnings[0]
        # a header line: before pytest's rootdir line, long before the first test runs
        rootdir = next(i for i, line in enumerate(result.outlines) if line.startswith("rootdir:"))
        assert result.outlines.index(warnings[0]) < rootdir
        quiet = lopsided.runpytest("--index", "plan.yaml", *args)
        assert quiet.ret == 0
        assert not [line for line in quiet.outlines if "few samples" in line]
