"""Gate expressions: thresholds on a results document that pass or fail a run.

A gate names a value of the results document, a comparison and a threshold::

    index >= 0.5                 the index score
    task_type:instruction>=90%   a row of a table: task_type, tag, dataset, subset, category
    subset:mmlu/physics >= 0.4   subsets are named DATASET/SUBSET
    category:reasoning_index/math>=0.6
    tag:zh.micro >= 0.4          another value of the row (see METRICS)
    errors <= 3                  error samples of the whole run
    count >= 100                 scored samples of the whole run

A row gate compares the row's ``weighted`` value unless a metric suffix names another one
(the index's ``weighted`` is its ``score``). ``.ci_low`` / ``.ci_high`` compare an end of the
row's 95% bootstrap interval, so ``index.ci_low>=0.5`` asks for a run that is confidently
above 0.5, not just above it by luck. ``.count`` and ``.errors`` work on every row.

Scores are written as 0.5 or 50%; counts as whole numbers. Operators: >=, >, <=, <, ==.
Spaces are allowed anywhere around the parts. A bad expression raises
``argparse.ArgumentTypeError``, so :func:`parse_gate` can be an argparse ``type=``.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.schema import Results, table_rows
from pytest_evalindex.table_format import format_table

# values are sums of float products: 3/10 may come out as 0.30000000000000004, which must
# neither pass "> 0.3" nor fail "<= 0.3"; differences this small are rounding, never data
_TOLERANCE = 1e-9
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, threshold: value >= threshold - _TOLERANCE,
    ">": lambda value, threshold: value > threshold + _TOLERANCE,
    "<=": lambda value, threshold: value <= threshold + _TOLERANCE,
    "<": lambda value, threshold: value < threshold - _TOLERANCE,
    "==": lambda value, threshold: abs(value - threshold) <= _TOLERANCE,
}
ROW_TABLES = ("task_type", "tag", "dataset", "subset", "category")
SCORE_METRICS = ("weighted", "micro", "macro", "ci_low", "ci_high")
COUNT_METRICS = ("count", "errors")
METRICS = SCORE_METRICS + COUNT_METRICS

# the plural a message uses when it lists the rows a table has
TABLE_PLURALS = {
    "task_type": "task types",
    "tag": "tags",
    "dataset": "datasets",
    "subset": "subsets",
    "category": "categories",
}
_EXAMPLE = "e.g. 'index>=0.5', 'tag:zh>=35%' or 'errors<=3'"
# the first run of comparison characters splits the expression
_SPLIT = re.compile(r"^(?P<left>[^<>=!]*?)\s*(?P<op>[<>=!]+)\s*(?P<right>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Gate:
    """A parsed gate. ``table`` is ``"index"`` or one of :data:`ROW_TABLES`."""

    text: str
    table: str
    name: str | None
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return self.text

    @property
    def target(self) -> str:
        """What the gate reads, e.g. ``tag:zh`` or ``index``."""
        return "index" if self.table == "index" else f"{self.table}:{self.name}"


@dataclass(frozen=True)
class GateVerdict:
    """A gate evaluated on one results document."""

    gate: str
    value: float | None
    ci95: list[float] | None
    passed: bool
    reason: str


def parse_gate(text: str) -> Gate:
    """Parse a gate expression (the module docstring has the syntax)."""
    match = _SPLIT.match(text.strip())
    if match is None:
        raise _bad(text, f"no comparison; expected {_EXAMPLE}")
    left, op, right = match["left"].strip(), match["op"], match["right"].strip()
    if op not in OPERATORS:
        raise _bad(text, f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}")
    if not left:
        raise _bad(text, f"nothing before {op!r}; expected {_EXAMPLE}")
    if not right:
        raise _bad(text, f"no threshold after {op!r}; expected a number such as 0.5 or 50%")
    table, name, metric = _parse_target(text, left)
    count_metric = metric in COUNT_METRICS
    threshold = _parse_count(text, right) if count_metric else _parse_score(text, right)
    return Gate(text.strip(), table, name, metric, op, threshold)


def parse_gates(texts: Iterable[Any], *, file: str | None = None) -> list[Gate]:
    """The ``gates:`` list of a spec; a bad entry is an EvalIndexError naming ``gates[i]``."""
    gates = []
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise EvalIndexError(
                f"a gate is a string such as 'index >= 0.5', got {text!r}",
                file=file,
                field=f"gates[{position}]",
            )
        try:
            gates.append(parse_gate(text))
        except argparse.ArgumentTypeError as exc:
            raise EvalIndexError(str(exc), file=file, field=f"gates[{position}]") from None
    return gates


def evaluate_gates(gates: Sequence[Gate], results: Results) -> list[GateVerdict]:
    """Each gate against ``results`` (a results document); a missing row fails its gate."""
    return [_evaluate(gate, results) for gate in gates]


def failed(verdicts: Iterable[GateVerdict]) -> list[GateVerdict]:
    return [verdict for verdict in verdicts if not verdict.passed]


def format_verdicts(verdicts: Sequence[GateVerdict]) -> list[str]:
    """An aligned table (gate, value, 95% CI, result), then the reason of each failure."""
    if not verdicts:
        return []
    header = ["gate", "value", "95% CI", "result"]
    body = [
        [v.gate, _fmt_value(v.value), _fmt_ci(v.ci95), "PASS" if v.passed else "FAIL"]
        for v in verdicts
    ]
    lines = format_table(header, body)
    lines.extend(f"FAIL {v.gate}: {v.reason}" for v in verdicts if not v.passed)
    return lines


# --------------------------------------------------------------------------- parsing


def _bad(text: str, message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"gate {text.strip()!r}: {message}")


def _parse_target(text: str, left: str) -> tuple[str, str | None, str]:
    """``index``, ``errors``, ``count``, ``index.micro`` or ``TABLE:NAME[.metric]``."""
    kind, colon, rest = (part.strip() for part in left.partition(":"))
    if not colon:
        base, metric = _split_metric(kind)
        if base == "index":
            return "index", None, metric or "weighted"
        if base in COUNT_METRICS and metric is None:
            return "index", None, base
        if base in ROW_TABLES:
            raise _bad(text, f"{base!r} needs a name, e.g. '{base}:NAME>=0.5'")
        raise _bad(text, f"unknown target {kind!r}; expected index, errors, count or {_kinds()}")
    if kind not in ROW_TABLES:
        raise _bad(text, f"unknown table {kind!r}; expected {_kinds()}")
    name, metric = _split_metric(rest)
    name = name.strip()
    if not name:
        raise _bad(text, f"no name after '{kind}:'")
    if kind == "subset" and "/" not in name:
        raise _bad(text, "a subset is named DATASET/SUBSET, e.g. 'subset:mmlu/physics>=0.5'")
    return kind, name, metric or "weighted"


def _split_metric(target: str) -> tuple[str, str | None]:
    """``zh.micro`` -> (``zh``, ``micro``); a name may contain other dots."""
    base, dot, suffix = target.rpartition(".")
    if dot and suffix.strip() in METRICS:
        return base.strip(), suffix.strip()
    return target.strip(), None


def _kinds() -> str:
    return ", ".join(f"{kind}:NAME" for kind in ROW_TABLES)


def _parse_score(text: str, right: str) -> float:
    percent = right.endswith("%")
    number = right[:-1].strip() if percent else right
    try:
        value = float(number)
    except ValueError:
        raise _bad(text, f"threshold {right!r} is not a number such as 0.5 or 50%") from None
    if percent:
        value /= 100.0
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        hint = f"; did you mean {value:g}%?" if not percent and 1.0 < value <= 100.0 else ""
        raise _bad(text, f"a score threshold is between 0 and 1 (or 0% and 100%){hint}")
    return value


def _parse_count(text: str, right: str) -> int:
    try:
        value = int(right)
    except ValueError:
        raise _bad(text, f"a count threshold is a whole number, got {right!r}") from None
    if value < 0:
        raise _bad(text, f"a count threshold is 0 or more, got {value}")
    return value


# --------------------------------------------------------------------------- evaluation


def _evaluate(gate: Gate, results: Results) -> GateVerdict:
    if gate.table == "index":
        row: Mapping[str, Any] = results.get("index") or {}
    else:
        rows = table_rows(results, gate.table)
        found = next((r for r in rows if r.get("name") == gate.name), None)
        if found is None:
            names = ", ".join(str(r.get("name")) for r in rows) or "none"
            reason = (
                f"no {gate.table} named {gate.name!r} in this run "
                f"({TABLE_PLURALS[gate.table]}: {names})"
            )
            return GateVerdict(gate.text, None, None, False, reason)
        row = found
    value = _metric_value(row, gate.metric)
    ci95 = row.get("ci95") if gate.metric in ("weighted", "ci_low", "ci_high") else None
    if value is None:
        what = "no interval" if gate.metric.startswith("ci_") else "no scored samples"
        reason = f"{gate.target} has {what} (count {row.get('count', 0)})"
        return GateVerdict(gate.text, None, ci95, False, reason)
    passed = OPERATORS[gate.op](value, gate.threshold)
    shown = f"{gate.target} {gate.metric} {_fmt_value(value)}"
    relation = gate.op if passed else _NEGATED[gate.op]
    reason = f"{shown} {relation} {_fmt_value(gate.threshold)}"
    return GateVerdict(gate.text, value, list(ci95) if ci95 else None, passed, reason)


_NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}


def _metric_value(row: Mapping[str, Any], metric: str) -> float | None:
    if metric in ("ci_low", "ci_high"):
        ci = row.get("ci95")
        return None if not ci else float(ci[0 if metric == "ci_low" else 1])
    if metric in COUNT_METRICS:
        return int(row.get(metric) or 0)
    value = row.get("weighted", row.get("score")) if metric == "weighted" else row.get(metric)
    return None if value is None else float(value)


def _fmt_value(value: float | None) -> str:
    """Counts are ints and print as such; scores print with four decimals."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _fmt_ci(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"
