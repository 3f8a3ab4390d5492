"""The end of a run: gates, the comparison with a baseline, flaky samples, the saved run.

Pure functions from a results document (and the options that ask for each check) to lines
for the terminal and a list of failures; the session only prints them and sets the exit
status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_evalindex.results.compare import (
    CompareFailVerdict,
    check_compare_fail,
    compare_results,
    format_comparison,
)
from pytest_evalindex.results.gates import Gate, GateVerdict, evaluate_gates, format_verdicts
from pytest_evalindex.results.repeats import flaky_samples, format_flaky
from pytest_evalindex.results.schema import Comparison, Results


@dataclass
class Verdicts:
    """What the end of a run has to say about one index."""

    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    base_results: Results | None = None
    refused: str | None = None  # a comparison that could not be made (bad input)
    # the same verdicts as objects, for reports that lay them out themselves (markdown)
    gate_verdicts: list[GateVerdict] = field(default_factory=list)
    compare_verdicts: list[CompareFailVerdict] = field(default_factory=list)


def judge_run(
    results: Results,
    *,
    gates: Sequence[Gate],
    baseline: tuple[Path, Results] | None,
    compare_rules: Sequence[Any],
    alpha: float,
    intersection: bool,
    seed: int,
) -> Verdicts:
    verdicts = Verdicts()
    samples = results["samples"]
    outcomes = {s["id"]: [r["outcome"] for r in s["repeats"]] for s in samples if "repeats" in s}
    flaky = flaky_samples(outcomes)
    if flaky:
        verdicts.sections.append(("flaky samples", format_flaky(flaky, total=len(samples))))
    if gates:
        gate_verdicts = evaluate_gates(gates, results)
        verdicts.gate_verdicts = list(gate_verdicts)
        verdicts.sections.append(("gates", format_verdicts(gate_verdicts)))
        verdicts.failures += [f"gate {v.gate}: {v.reason}" for v in gate_verdicts if not v.passed]
    if baseline is not None:
        path, base = baseline
        from pytest_evalindex.results.compare import ComparisonError

        try:
            comparison = compare_results(
                base,
                results,
                seed=seed,
                alpha=alpha,
                intersection=intersection,
                base_label=path.stem,
                new_label="this run",
            )
        except ComparisonError as exc:
            verdicts.refused = f"comparison with {path} refused: {exc}"
            return verdicts
        verdicts.comparison, verdicts.base_results = comparison, base
        lines = format_comparison(comparison)
        if compare_rules:
            rule_verdicts = check_compare_fail(comparison, compare_rules, alpha)
            verdicts.compare_verdicts = list(rule_verdicts)
            lines += ["", *(("FAIL " if v.failed else "ok   ") + v.message for v in rule_verdicts)]
            verdicts.failures += [v.message for v in rule_verdicts if v.failed]
        verdicts.sections.append((f"comparison with {path.name}", lines))
    return verdicts
