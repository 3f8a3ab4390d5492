"""Two runs of one test set, compared sample by sample: deltas, intervals, p-values, flips.

:func:`compare_results` pairs the samples of a base and a new results document by id and
keeps the pairs scored in both runs. Every row (the index, then each table's rows) gets the
``weighted`` value of both runs on those pairs (with ``n_d`` = paired samples of
dataset ``d``; groups and weights are the new run's), their difference, a 95% interval of the
difference and a two-sided p-value for "no difference".

Why paired: both runs answered the same prompts, so the noise of which items happened to be
drawn, and how hard they are, is shared and cancels in the per-sample differences. Only the
samples whose outcome changed carry information; when answers are consistent from run to run
(greedy decoding) that makes the paired interval about half as wide as two separate ones.

Interval: a paired percentile bootstrap. With the weights fixed, a row's delta is
``sum_d c_d * sum_{i in row, d} (new_i - base_i) / D`` (``c_d = W_d / n_d``, ``D`` the row's
weight total), so a replicate resamples the per-sample differences with replacement inside
each (dataset, row) cell, as many as the cell has: each pair is drawn as a unit and each
dataset keeps its sample count, as aggregate.py does for one run.

p-value: a paired sign-flip (randomisation) test, stratified like the interval. Under "the two
runs are exchangeable on every sample" each difference is as likely to have had the other
sign, so the null distribution of the delta comes from flipping each difference's sign with
probability 1/2 (for pass/fail scores this is McNemar's exact test, weighted over datasets).
``p = (1 + #{|flipped delta| >= |observed delta|}) / (1 + n_boot)``; counting the observed
data as one of the draws keeps the test valid (under the null, P(p <= alpha) <= alpha) for any
number of replicates. Unlike a bootstrap of the null-centred delta, it needs no large-sample
approximation, which matters for small rows with a handful of changed samples. The interval
and the test answer different questions (how large, and could it be zero); near the boundary
one may exclude zero while the other is not quite significant. Gates
(:func:`check_compare_fail`) use the p-value.

Both draw counts, never samples one at a time: a cell's resampled sum is a multinomial over
its distinct difference values, drawn as a sequence of binomials, and a cell's sign-flipped
sum is ``v * (2 * Binomial(k, 1/2) - k)`` for each distinct absolute difference ``v`` shared
by ``k`` pairs. The binomials are exact draws by inversion of tables built once per (n, p)
(``BinomialTables``). Random streams are seeded from ``seed``, the dataset and the
cell's contents, so the result depends only on the seed and the data, and only
``Random.random()`` is used, whose sequence Python keeps stable across versions. The
statistics themselves live in :class:`pytest_evalindex.results.statistics.PairedStatistics`.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.aggregate import TABLES
from pytest_evalindex.results.gates import ROW_TABLES, TABLE_PLURALS
from pytest_evalindex.results.schema import (
    Comparison,
    ComparisonRow,
    ComparisonSide,
    Flips,
    IndexSummary,
    Results,
    RunInfo,
    Sample,
)
from pytest_evalindex.results.statistics import PairedStatistics
from pytest_evalindex.table_format import format_table

COMPARISON_SCHEMA_VERSION = 1
# sample fields that decide a sample's rows and weight
_GROUPING_FIELDS = ("dataset", "subset", "task_type", "tags", "categories", "weight")


class ComparisonError(EvalIndexError, ValueError):
    """Two results documents that cannot be compared as they are."""


# --------------------------------------------------------------------------- comparison


@dataclass
class _Row:
    table: str
    name: str
    # dataset -> [base sum, new sum, count]
    sums: dict[str, list[float]] = field(default_factory=dict)
    # dataset -> difference value -> pairs
    diffs: dict[str, Counter[float]] = field(default_factory=dict)

    def add(self, dataset: str, base: float, new: float) -> None:
        cell = self.sums.get(dataset)
        if cell is None:
            cell = self.sums[dataset] = [0.0, 0.0, 0]
            self.diffs[dataset] = Counter()
        cell[0] += base
        cell[1] += new
        cell[2] += 1
        self.diffs[dataset][new - base] += 1


def compare_results(
    base: Results,
    new: Results,
    *,
    seed: int = 0,
    n_boot: int = 2000,
    alpha: float = 0.05,
    intersection: bool = False,
    base_label: str | None = None,
    new_label: str | None = None,
) -> Comparison:
    """The comparison document of ``new`` against ``base`` (builtins only).

    Raises :class:`ComparisonError` when the runs did not sample the same ids (unless
    ``intersection``) or share no sample scored in both. ``n_boot=0`` skips the interval
    and the test (``ci95`` and ``p_value`` are None).
    """
    base_by_id = _samples_by_id(base, "base")
    new_by_id = _samples_by_id(new, "new")
    only_in_base = [i for i in base_by_id if i not in new_by_id]
    only_in_new = [i for i in new_by_id if i not in base_by_id]
    shared = len(new_by_id) - len(only_in_new)
    if (only_in_base or only_in_new) and not intersection:
        base_sha = (base.get("run") or {}).get("testset_sha256")
        new_sha = (new.get("run") or {}).get("testset_sha256")
        raise ComparisonError(testset_refusal(base_sha, new_sha, only_in_base, only_in_new, shared))

    pairs: list[tuple[Sample, Sample]] = []
    errors_excluded = 0
    regrouped = 0
    for sample_id, new_sample in new_by_id.items():
        base_sample = base_by_id.get(sample_id)
        if base_sample is None:
            continue
        if _score(base_sample) is None or _score(new_sample) is None:
            errors_excluded += 1
            continue
        pairs.append((base_sample, new_sample))
        if any(base_sample.get(f) != new_sample.get(f) for f in _GROUPING_FIELDS):
            regrouped += 1
    if not pairs:
        raise ComparisonError(
            f"no sample is scored in both runs ({shared} shared ids, {errors_excluded} of "
            "them an error in one run or both); there is nothing to compare"
        )

    index_name = str((new.get("index") or {}).get("name") or "index")
    rows = _rows(pairs, index_name)
    weights = _sample_weights(pairs)
    stats = PairedStatistics(seed, n_boot)
    notes = []
    if regrouped:
        notes.append(
            f"{regrouped} paired samples have a different dataset, subset, task type, tags, "
            "categories or weight in the two runs; the new run's are used for both"
        )
    if errors_excluded:
        notes.append(f"{errors_excluded} shared samples are an error in one run or both")
    return {
        "schema_version": COMPARISON_SCHEMA_VERSION,
        "base": _side(base, base_label, "base"),
        "new": _side(new, new_label, "new"),
        "paired_count": len(pairs),
        "alpha": alpha,
        "rows": [_compare_row(row, weights, stats) for row in rows],
        "flips": _flips(pairs),
        "only_in_base": only_in_base,
        "only_in_new": only_in_new,
        "errors_excluded": errors_excluded,
        "notes": notes,
    }


def _samples_by_id(results: Results, which: str) -> dict[str, Sample]:
    by_id: dict[str, Sample] = {}
    for sample in results.get("samples") or ():
        sample_id = str(sample["id"])
        if sample_id in by_id:
            raise ComparisonError(f"the {which} run has sample id {sample_id!r} twice")
        by_id[sample_id] = sample
    return by_id


def testset_refusal(
    base_sha: str | None,
    new_sha: str | None,
    only_in_base: Sequence[str],
    only_in_new: Sequence[str],
    shared: int,
) -> str:
    """Why two runs (their test sets' sha256 and the ids only one of them has) are not
    compared."""
    testsets = ""
    if base_sha and new_sha and base_sha != new_sha:
        testsets = f" (test set sha256 {base_sha[:12]}… vs {new_sha[:12]}…)"
    examples = ", ".join(repr(i) for i in [*only_in_base[:2], *only_in_new[:2]])
    return (
        f"the two runs did not sample the same test set{testsets}: {len(only_in_base)} "
        f"sample ids only in the base run, {len(only_in_new)} only in the new run "
        f"(e.g. {examples}). Run both on the same frozen test set (evalindex sample), or "
        f"compare the {shared} shared samples with --index-compare-intersection "
        "(evalindex compare --intersection)"
    )


def _score(sample: Sample) -> float | None:
    score = sample.get("score")
    if sample.get("outcome") == "error" or score is None:
        return None
    return float(score)


def _side(results: Results, label: str | None, default: str) -> ComparisonSide:
    # documents from files are checked only for what comparing needs: copy what is there
    run = cast(RunInfo, dict(results.get("run") or {}))
    if label is None:
        saved: Mapping[str, Any] = run.get("saved") or {}
        if saved.get("number") is not None:
            label = f"{int(saved['number']):04d}_{saved.get('name') or 'run'}"
        else:
            label = default
    index = cast(IndexSummary, dict(results.get("index") or {}))
    return {"label": label, "run": run, "index": index}


def memberships(sample: Mapping[str, Any]) -> dict[str, list[str]]:
    """The rows of each table a sample counts under (aggregate.py's grouping)."""
    dataset = str(sample["dataset"])
    paths: list[str] = []
    for part in sample.get("categories") or ():
        paths.append(f"{paths[-1]}/{part}" if paths else str(part))
    return {
        "dataset": [dataset],
        "subset": [f"{dataset}/{sample.get('subset') or 'default'}"],
        "task_type": [str(sample.get("task_type") or "default")],
        "tag": list(dict.fromkeys(str(tag) for tag in sample.get("tags") or ())),
        "category": list(dict.fromkeys(paths)),
    }


def _rows(pairs: Sequence[tuple[Sample, Sample]], index_name: str) -> list[_Row]:
    """The index row, then each table's rows in the order they first appear."""
    index = _Row("index", index_name)
    tables: dict[str, dict[str, _Row]] = {table: {} for table in TABLES}
    for base_sample, new_sample in pairs:
        dataset = str(new_sample["dataset"])
        base_score, new_score = _score(base_sample), _score(new_sample)
        assert base_score is not None and new_score is not None  # pairs are scored
        index.add(dataset, base_score, new_score)
        for table, names in memberships(new_sample).items():
            for name in names:
                row = tables[table].get(name)
                if row is None:
                    row = tables[table][name] = _Row(table, name)
                row.add(dataset, base_score, new_score)
    return [index, *(row for table in TABLES for row in tables[table].values())]


def _sample_weights(
    pairs: Sequence[tuple[Sample, Sample]],
) -> dict[str, float]:
    """dataset -> W_d / n_d over the paired samples."""
    leaf_weight: dict[str, float] = {}
    paired: Counter[str] = Counter()
    for _base, new_sample in pairs:
        dataset = str(new_sample["dataset"])
        weight = new_sample.get("weight")
        leaf_weight.setdefault(dataset, 1.0 if weight is None else float(weight))
        paired[dataset] += 1
    return {d: leaf_weight[d] / n for d, n in paired.items()}


def _compare_row(row: _Row, weights: Mapping[str, float], stats: PairedStatistics) -> ComparisonRow:
    count = sum(int(cell[2]) for cell in row.sums.values())
    denominator = sum(weights[d] * cell[2] for d, cell in row.sums.items())
    if count == 0 or denominator <= 0:
        return {
            "table": row.table,
            "name": row.name,
            "base": None,
            "new": None,
            "delta": None,
            "ci95": None,
            "p_value": None,
            "count": count,
        }
    base_value = sum(weights[d] * cell[0] for d, cell in row.sums.items()) / denominator
    new_value = sum(weights[d] * cell[1] for d, cell in row.sums.items()) / denominator
    ci95, p_value = stats.interval_and_p(row.diffs, weights, denominator)
    return {
        "table": row.table,
        "name": row.name,
        "base": base_value,
        "new": new_value,
        "delta": new_value - base_value,
        "ci95": ci95,
        "p_value": p_value,
        "count": count,
    }


def _flips(
    pairs: Sequence[tuple[Sample, Sample]],
) -> Flips:
    flips: Flips = {"passed_to_missed": [], "missed_to_passed": []}
    for base_sample, new_sample in pairs:
        before, after = base_sample.get("outcome"), new_sample.get("outcome")
        if before == "passed" and after == "missed":
            flips["passed_to_missed"].append(str(new_sample["id"]))
        elif before == "missed" and after == "passed":
            flips["missed_to_passed"].append(str(new_sample["id"]))
    return flips


# --------------------------------------------------------------------------- compare-fail


@dataclass(frozen=True)
class CompareFailRule:
    """How far a row may drop. ``unit`` is ``pp``, ``%`` (relative) or ``score``."""

    text: str
    table: str
    name: str | None
    unit: str
    margin: float

    def __str__(self) -> str:
        return self.text

    @property
    def target(self) -> str:
        return "index" if self.table == "index" else f"{self.table}:{self.name}"

    def allowed_drop(self, base: float) -> float:
        """The largest drop, in score units, this rule lets through from ``base``."""
        return self.margin * base if self.unit == "%" else self.margin


@dataclass(frozen=True)
class CompareFailVerdict:
    rule: str
    delta: float | None
    ci95: list[float] | None
    p_value: float | None
    failed: bool
    message: str


_RULE_EXAMPLE = "e.g. 'index:2pp', 'task_type:instruction:5%' or 'tag:zh:0.03'"


def parse_compare_fail(text: str) -> CompareFailRule:
    """``TARGET:MARGIN``: TARGET is ``index`` or ``TABLE:NAME``; MARGIN is ``2pp``
    (percentage points), ``5%`` (of the base value) or ``0.03`` (score units)."""
    stripped = text.strip()

    def bad(message: str) -> argparse.ArgumentTypeError:
        return argparse.ArgumentTypeError(f"compare-fail rule {stripped!r}: {message}")

    target, colon, margin_text = (part.strip() for part in stripped.rpartition(":"))
    if not colon or not target:
        raise bad(f"expected TARGET:MARGIN, {_RULE_EXAMPLE}")
    if target == "index":
        table, name = "index", None
    else:
        table, colon, name = (part.strip() for part in target.partition(":"))
        if not colon or table not in ROW_TABLES:
            kinds = ", ".join(f"{kind}:NAME" for kind in ROW_TABLES)
            raise bad(f"unknown target {target!r}; expected index or {kinds}")
        if not name:
            raise bad(f"no name after '{table}:'")
    if margin_text.endswith("pp"):
        unit, number = "pp", margin_text[:-2]
    elif margin_text.endswith("%"):
        unit, number = "%", margin_text[:-1]
    else:
        unit, number = "score", margin_text
    try:
        margin = float(number.strip())
    except ValueError:
        raise bad(f"margin {margin_text!r} is not 2pp, 5% or 0.03") from None
    if not math.isfinite(margin) or margin < 0:
        raise bad(f"margin {margin_text!r} must be 0 or more")
    if unit in ("pp", "%"):
        margin /= 100.0
    if unit != "%" and margin > 1.0:
        hint = f"; did you mean {margin:g}pp?" if unit == "score" and margin <= 100 else ""
        raise bad(f"an absolute margin is at most 1 (100pp){hint}")
    return CompareFailRule(stripped, table, name, unit, margin)


def check_compare_fail(
    comparison: Comparison,
    rules: Iterable[CompareFailRule],
    alpha: float | None = None,
) -> list[CompareFailVerdict]:
    """Each rule against a comparison document.

    A rule fails only when its row dropped by more than the margin AND the change is
    significant (p < alpha; ``alpha`` defaults to the comparison's). A rule whose row is
    missing or has no paired samples fails too: it could not be checked. Without a p-value
    (``n_boot=0``) the margin alone decides.
    """
    if alpha is None:
        alpha = float(comparison.get("alpha", 0.05))
    rows = comparison.get("rows") or []
    return [_check_rule(rule, rows, alpha) for rule in rules]


def _check_rule(
    rule: CompareFailRule, rows: Sequence[ComparisonRow], alpha: float
) -> CompareFailVerdict:
    row = next(
        (
            r
            for r in rows
            if r["table"] == rule.table and (rule.name is None or r["name"] == rule.name)
        ),
        None,
    )
    if row is None:
        names = ", ".join(str(r["name"]) for r in rows if r["table"] == rule.table) or "none"
        message = (
            f"no {rule.table} named {rule.name!r} in the comparison "
            f"({TABLE_PLURALS[rule.table]}: {names})"
        )
        return CompareFailVerdict(rule.text, None, None, None, True, message)
    delta, base, ci95, p_value = row["delta"], row["base"], row["ci95"], row["p_value"]
    if delta is None or base is None:
        message = f"{rule.target} has no sample scored in both runs"
        return CompareFailVerdict(rule.text, None, None, None, True, message)
    drop = -delta
    allowed = rule.allowed_drop(base)
    exceeds = drop > allowed + 1e-12
    significant = p_value is None or p_value < alpha
    evidence = _evidence(rule, delta, ci95, p_value)
    allowed_text = _fmt_margin(rule)
    if drop > 0:
        size = _fmt_change(rule, drop, base)
        message = f"{rule.target} dropped {size} ({evidence})"
    else:
        message = f"{rule.target} rose {_fmt_change(rule, -drop, base)} ({evidence})"
    if exceeds and significant:
        message += f" > allowed {allowed_text}"
    elif exceeds:
        message += f" > allowed {allowed_text}, but not significant at alpha={alpha:g}"
    else:
        message += f", within allowed {allowed_text}"
    return CompareFailVerdict(
        rule.text, delta, list(ci95) if ci95 else None, p_value, exceeds and significant, message
    )


def _evidence(
    rule: CompareFailRule, delta: float, ci95: Sequence[float] | None, p_value: float | None
) -> str:
    parts = []
    if rule.unit == "%":
        parts.append(f"{_signed_pp(delta)}")
    if ci95:
        if rule.unit == "score":
            parts.append(f"95% CI {ci95[0]:+.3f} to {ci95[1]:+.3f}")
        else:
            parts.append(f"95% CI {ci95[0] * 100:+.1f} to {ci95[1] * 100:+.1f}pp")
    if p_value is not None:
        parts.append(f"p={format_p(p_value)}")
    return ", ".join(parts) if parts else "no interval"


def _fmt_change(rule: CompareFailRule, size: float, base: float) -> str:
    if rule.unit == "score":
        return f"{size:.3f}"
    if rule.unit == "%":
        return f"{size / base * 100:.1f}% of {base:.4f}" if base > 0 else f"{size * 100:.1f}pp"
    return f"{size * 100:.1f}pp"


def _fmt_margin(rule: CompareFailRule) -> str:
    if rule.unit == "pp":
        return f"{rule.margin * 100:g}pp"
    if rule.unit == "%":
        return f"{rule.margin * 100:g}%"
    return f"{rule.margin:g}"


def _signed_pp(delta: float) -> str:
    return f"{delta * 100:+.1f}pp"


def format_p(p_value: float) -> str:
    """Two significant digits: 0.0005, 0.003, 0.047, 0.12, 1."""
    return f"{p_value:.2g}"


def failed_rules(verdicts: Iterable[CompareFailVerdict]) -> list[CompareFailVerdict]:
    return [verdict for verdict in verdicts if verdict.failed]


# --------------------------------------------------------------------------- terminal


def format_comparison(comparison: Comparison, *, max_flips: int = 20) -> list[str]:
    """The run labels, the rows table (table, name, base, new, delta, 95% CI, p), flips."""
    base, new = comparison["base"], comparison["new"]
    alpha = float(comparison.get("alpha", 0.05))
    lines = [
        f"base: {_describe(base)}",
        f"new:  {_describe(new)}",
        f"paired samples: {comparison['paired_count']}"
        + (
            f"  only in base: {len(comparison['only_in_base'])}"
            if comparison["only_in_base"]
            else ""
        )
        + (f"  only in new: {len(comparison['only_in_new'])}" if comparison["only_in_new"] else ""),
    ]
    lines.extend(f"note: {note}" for note in comparison.get("notes") or ())
    header = ["table", "name", "base", "new", "delta", "95% CI", "p"]
    body = [
        [
            row["table"],
            str(row["name"]),
            _fmt(row["base"]),
            _fmt(row["new"]),
            "-" if row["delta"] is None else f"{row['delta']:+.4f}",
            "-" if not row["ci95"] else f"[{row['ci95'][0]:+.4f}, {row['ci95'][1]:+.4f}]",
            _fmt_p(row["p_value"], alpha),
        ]
        for row in comparison["rows"]
    ]
    lines.append("")
    lines.extend(format_table(header, body, left=2))
    lines.append(f"* p < {alpha:g} (paired sign-flip test)")
    flips = comparison["flips"]
    for ids, title in (
        (flips["passed_to_missed"], "passed -> missed"),
        (flips["missed_to_passed"], "missed -> passed"),
    ):
        if not ids:
            continue
        lines.append("")
        lines.append(f"{title} ({len(ids)}):")
        lines.extend(f"  {sample_id}" for sample_id in ids[:max_flips])
        if len(ids) > max_flips:
            lines.append(f"  ... {len(ids) - max_flips} more (see the comparison JSON)")
    return lines


def _describe(side: ComparisonSide) -> str:
    run = side.get("run") or {}
    index = side.get("index") or {}
    parts = [str(side.get("label"))]
    if run.get("model"):
        parts.append(f"model {run['model']}")
    if run.get("started_at"):
        parts.append(str(run["started_at"]))
    if index.get("score") is not None:
        parts.append(f"index {index['score']:.4f}")
    return ", ".join(parts)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_p(p_value: float | None, alpha: float) -> str:
    if p_value is None:
        return "-"
    return f"{format_p(p_value)}{' *' if p_value < alpha else '  '}"
