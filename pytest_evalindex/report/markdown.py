"""The markdown summary of a run, for CI job pages (GitHub's ``$GITHUB_STEP_SUMMARY``).

:func:`format_markdown` is a pure function of a results document and its verdicts: the index
with its interval, the verdicts, the tables, the secondary metrics, the comparison with a
baseline and the usage. Model output is untrusted and never shown (no response, no target,
no explanation); every name that comes from data (datasets, tags, sample ids) is escaped,
so nothing in it can add markup, links, images or HTML, or break a table.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pytest_evalindex.report.terminal import ALL_DATASETS, cost_notes, fmt_ci, fmt_score, fmt_usd
from pytest_evalindex.results.schema import Results, RunInfo, UsageCost, table_rows
from pytest_evalindex.results.verdicts import Verdicts

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
TABLES = (("dataset", "By dataset"), ("subset", "By subset"), ("task_type", "By task type"),
          ("tag", "By tag"), ("category", "By category"))  # fmt: skip
MAX_FLIPS = 10

# every character with a meaning somewhere in (GitHub-flavoured) markdown or HTML
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-!|~&=:$\"'])")


def md_text(value: Any) -> str:
    """``value`` as literal markdown text on one line: safe inside a table cell."""
    flat = " ".join(str(value).split())
    return _SPECIAL.sub(r"\\\1", flat)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> list[str]:
    """A markdown table; cells are expected escaped already (numbers need nothing)."""
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _outcome_counts(results: Results) -> str:
    counts = {"passed": 0, "missed": 0, "error": 0}
    for sample in results.get("samples") or ():
        outcome = sample.get("outcome")
        if outcome in counts:
            counts[outcome] += 1
    return f"{counts['passed']} passed, {counts['missed']} missed, {counts['error']} errors"


def _partial_line(run: RunInfo) -> str | None:
    partial = run.get("partial")
    if not partial:
        return None
    if isinstance(partial, Mapping):
        ran, of, why = partial.get("ran"), partial.get("of"), partial.get("why")
        text = f"ran {md_text(ran)} of {md_text(of)} records" if ran is not None else "ran a part"
        if why:
            text += f" ({md_text(why)})"
    else:
        text = md_text(partial)
    return f"> **Partial run:** {text}; the index covers only what ran."


def _fail_under_failure(results: Results, fail_under: float | None) -> str | None:
    if fail_under is None:
        return None
    score = (results.get("index") or {}).get("score")
    if score is not None and score >= fail_under:
        return None
    shown = "no scored samples" if score is None else f"{score:.4f}"
    return f"index {shown} is below --index-fail-under {fail_under:g}"


def _verdict_lines(results: Results, verdicts: Verdicts, fail_under: float | None) -> list[str]:
    lines: list[str] = []
    failures = list(verdicts.failures)
    below = _fail_under_failure(results, fail_under)
    if below is not None:
        failures.append(below)
    if verdicts.refused:
        lines.append(f"**ERROR** {md_text(verdicts.refused)}")
    if failures:
        lines.append("**Result: FAIL**")
        lines.append("")
        lines.extend(f"- FAIL {md_text(failure)}" for failure in failures)
    elif fail_under is not None or verdicts.gate_verdicts or verdicts.compare_verdicts:
        lines.append("**Result: PASS**")
    if fail_under is not None and below is None:
        lines.append("")
        lines.append(f"- PASS index >= --index-fail-under {fail_under:g}")
    if verdicts.gate_verdicts:
        lines += ["", "### Gates", ""]
        rows = [
            [
                md_text(v.gate),
                fmt_score(v.value),
                fmt_ci(v.ci95),
                "PASS" if v.passed else "**FAIL**",
            ]
            for v in verdicts.gate_verdicts
        ]
        lines.extend(_table(["gate", "value", "95% CI", "result"], rows))
    return lines


def _tables(results: Results) -> list[str]:
    lines: list[str] = []
    for name, title in TABLES:
        rows = table_rows(results, name)
        # one subset per dataset says nothing the dataset table does not
        if not rows or (name == "subset" and len(rows) <= len(table_rows(results, "dataset"))):
            continue
        body = [
            [
                md_text(row.get("name")),
                fmt_score(row.get("micro")),
                fmt_score(row.get("macro")),
                fmt_score(row.get("weighted")),
                fmt_ci(row.get("ci95")),
                str(row.get("count", 0)),
                str(row.get("errors", 0)),
            ]
            for row in rows
        ]
        header = [name, "micro", "macro", "weighted", "95% CI", "count", "errors"]
        lines += ["", f"### {title}", "", *_table(header, body)]
    return lines


def _metrics(results: Results) -> list[str]:
    rows = results.get("metrics") or []
    if not rows:
        return []
    body = [
        [
            ALL_DATASETS if row.get("dataset") is None else md_text(row["dataset"]),
            md_text(row.get("metric")),
            fmt_score(row.get("mean")),
            str(row.get("count", 0)),
        ]
        for row in rows
    ]
    header = ["dataset", "metric", "mean", "count"]
    return ["", "### Secondary metrics", "", *_table(header, body, right_from=2)]


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _comparison(verdicts: Verdicts, max_flips: int) -> list[str]:
    comparison = verdicts.comparison
    if not comparison:
        return []
    base = comparison.get("base") or {}
    alpha = float(comparison.get("alpha", 0.05))
    lines = ["", f"### Comparison with {md_text(base.get('label') or 'base')}", ""]
    base_model = (base.get("run") or {}).get("model")
    if base_model:
        lines.append(f"Base model: {md_text(base_model)}.")
    lines.append(f"Paired samples: {comparison.get('paired_count', 0)}.")
    for note in comparison.get("notes") or ():
        lines.append(f"Note: {md_text(note)}.")
    body = []
    for row in comparison.get("rows") or ():
        ci = row.get("ci95")
        p_value = row.get("p_value")
        p_text = "-" if p_value is None else f"{p_value:.2g}" + (" \\*" if p_value < alpha else "")
        body.append(
            [
                md_text(row.get("table")),
                md_text(row.get("name")),
                fmt_score(row.get("base")),
                fmt_score(row.get("new")),
                _signed(row.get("delta")),
                "-" if not ci else f"[{ci[0]:+.4f}, {ci[1]:+.4f}]",
                p_text,
            ]
        )
    header = ["table", "name", "base", "new", "delta", "95% CI", "p"]
    lines += ["", *_table(header, body, right_from=2), ""]
    lines.append(f"\\* p < {alpha:g} (paired sign-flip test)")
    if verdicts.compare_verdicts:
        lines.append("")
        lines.extend(
            f"- {'FAIL' if v.failed else 'ok'} {md_text(v.message)}"
            for v in verdicts.compare_verdicts
        )
    flips = comparison.get("flips")
    for ids, title in (
        (flips["passed_to_missed"] if flips else [], "passed → missed"),
        (flips["missed_to_passed"] if flips else [], "missed → passed"),
    ):
        if not ids:
            continue
        shown = ", ".join(md_text(i) for i in ids[:max_flips])
        more = f", and {len(ids) - max_flips} more" if len(ids) > max_flips else ""
        lines += ["", f"**{title} ({len(ids)}):** {shown}{more}"]
    return lines


def _usage(results: Results) -> list[str]:
    usage = results.get("usage") or {}
    rows = [*(usage.get("dataset") or ()), *([usage["total"]] if usage.get("total") else [])]
    if not rows:
        return []

    def seconds(value: Any) -> str:
        return "-" if value is None else f"{float(value):.3f}"

    body = [
        [
            md_text(row.get("name")),
            str(row.get("requests", 0)),
            str(row.get("cached", 0)),
            str(row.get("prompt_tokens", 0)),
            str(row.get("completion_tokens", 0)),
            seconds(row.get("latency_p50_s")),
            seconds(row.get("latency_p95_s")),
        ]
        for row in rows
    ]
    header = ["usage", "requests", "cached", "prompt tokens", "completion tokens", "p50 s",
              "p95 s"]  # fmt: skip
    lines = ["", "### Usage", "", *_table(header, body)]
    cost = usage.get("cost")
    if isinstance(cost, Mapping):
        lines += _cost(cost)
    return lines


def _cost(cost: Mapping[str, Any]) -> list[str]:
    """USD by dataset (model, judge, total, cached answers' first cost) and the notes."""

    def usd(value: Any) -> str:
        return fmt_usd(float(value)) if isinstance(value, (int, float)) else "-"

    rows = [*(cost.get("dataset") or ()), {**cost, "name": "total"}]
    body = [
        [
            md_text(row.get("name")),
            *(usd(row.get(k)) for k in ("model", "judge", "total", "cached")),
        ]
        for row in rows
        if isinstance(row, Mapping)
    ]
    header = ["cost (USD)", "model", "judge", "total", "cached (first asked)"]
    notes = [md_text(note) for note in cost_notes(cast(UsageCost, cost))]
    lines = ["", "### Cost", "", *_table(header, body)]
    for note in notes:
        lines += ["", note]
    return lines


def format_markdown(
    results: Results,
    verdicts: Verdicts | None = None,
    *,
    fail_under: float | None = None,
    max_flips: int = MAX_FLIPS,
) -> str:
    """One index's summary as markdown (ends with a newline)."""
    verdicts = verdicts or Verdicts()
    index = results.get("index") or {}
    run = results.get("run") or {}
    lines = [f"## evalindex: {md_text(index.get('name') or 'index')}", ""]
    lines.append(
        f"**Index {fmt_score(index.get('score'))}** (95% CI {fmt_ci(index.get('ci95'))}), "
        f"count {index.get('count', 0)}, errors {index.get('errors', 0)}"
    )
    details = [_outcome_counts(results)]
    if run.get("model"):
        details.append(f"model {md_text(run['model'])}")
    lines += ["", "; ".join(details)]
    partial = _partial_line(run)
    if partial:
        lines += ["", partial]
    verdict_lines = _verdict_lines(results, verdicts, fail_under)
    if verdict_lines:
        lines += ["", *verdict_lines]
    lines += _tables(results)
    lines += _metrics(results)
    lines += _comparison(verdicts, max_flips)
    lines += _usage(results)
    return "\n".join(lines) + "\n"


def run_markdown(
    indexes: Sequence[tuple[Results, Verdicts | None]],
    *,
    fail_under: float | None = None,
) -> str:
    """The summary of every index of a run, one section each."""
    return "\n".join(
        format_markdown(results, verdicts, fail_under=fail_under) for results, verdicts in indexes
    )


def write_markdown(path: str | os.PathLike[str], text: str) -> Path:
    """Write the summary to ``path`` atomically; parent directories are created."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(text, "utf-8")
    os.replace(temporary, target)
    return target


def append_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append the summary to ``$GITHUB_STEP_SUMMARY`` when it is set; a file that cannot be
    written is a warning on stderr, not a failed run."""
    target = environ.get(STEP_SUMMARY_ENV)
    if not target:
        return None
    try:
        with open(target, "a", encoding="utf-8") as file:
            file.write(("\n" if file.tell() else "") + text)
    except OSError as exc:
        print(f"evalindex: warning: cannot append to ${STEP_SUMMARY_ENV}: {exc}", file=sys.stderr)
        return None
    return Path(target)


def publish_markdown(
    path: str | os.PathLike[str] | None,
    indexes: Sequence[tuple[Results, Verdicts | None]],
    *,
    fail_under: float | None = None,
) -> None:
    """Write the summary where asked: ``path`` and ``$GITHUB_STEP_SUMMARY``."""
    if not indexes or (path is None and not os.environ.get(STEP_SUMMARY_ENV)):
        return
    text = run_markdown(indexes, fail_under=fail_under)
    if path is not None:
        write_markdown(path, text)
    append_step_summary(text)
