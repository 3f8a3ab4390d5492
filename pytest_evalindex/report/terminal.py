"""Plain-text index summary: pure functions from a results document to lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_evalindex.results.schema import (
    CostRow,
    IndexSummary,
    MetricRow,
    Results,
    Sample,
    TableRow,
    UsageCost,
    UsageRow,
    table_rows,
)
from pytest_evalindex.table_format import format_table

TABLE_ORDER = ("dataset", "task_type", "tag", "category")
COLUMNS = ("micro", "macro", "weighted", "count", "errors", "ci95")


def fmt_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def fmt_ci(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def render_table(title: str, rows: Iterable[TableRow]) -> list[str]:
    """Aligned columns: name, micro, macro, weighted, count, errors, 95% interval."""
    header = [title, "micro", "macro", "weighted", "count", "errors", "95% CI"]
    body = [
        [
            str(row["name"]),
            fmt_score(row.get("micro")),
            fmt_score(row.get("macro")),
            fmt_score(row.get("weighted")),
            str(row.get("count", 0)),
            str(row.get("errors", 0)),
            fmt_ci(row.get("ci95")),
        ]
        for row in rows
    ]
    return format_table(header, body)


def format_index_line(index: IndexSummary) -> str:
    return (
        f"index {index['name']}: {fmt_score(index.get('score'))} "
        f"95% CI {fmt_ci(index.get('ci95'))}  "
        f"count {index.get('count', 0)}  errors {index.get('errors', 0)}"
    )


def format_summary(results: Results) -> list[str]:
    """The index line first (and, for a run of part of the test set, how much of it ran),
    then one table per grouping."""
    lines = [format_index_line(results["index"])]
    from pytest_evalindex.results.partial import header_line, partial_of

    partial = partial_of(results)
    if partial is not None:
        lines.append(header_line(partial))
    for name in TABLE_ORDER:
        rows = table_rows(results, name)
        if rows:
            lines.append("")
            lines.extend(render_table(name, rows))
    metrics = results.get("metrics")
    if metrics:
        lines.append("")
        lines.extend(render_metrics(metrics))
    usage = results.get("usage")
    if usage:
        lines.append("")
        lines.extend(render_usage([*usage["dataset"], usage["total"]]))
        cost = usage.get("cost")
        if cost:
            lines.append("")
            lines.extend(render_cost(cost))
    return lines


def fmt_usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def cost_notes(cost: UsageCost) -> list[str]:
    """What the cached answers cost when first asked, and what the budget did."""
    notes = []
    cached = cost.get("cached") or 0.0
    if cached > 0:
        notes.append(
            f"cached answers cost nothing this run; they cost ${cached:.6f} when first asked"
        )
    budget = cost.get("budget")
    if budget is not None:
        spent = cost.get("total") or 0.0
        notes.append(f"budget: ${spent:.6f} spent of --index-budget ${budget:g}")
        unasked = cost.get("budget_reached") or 0
        if unasked:
            notes.append(
                f"budget reached: {unasked} record{'s' if unasked != 1 else ''} not asked "
                "(errors); raise --index-budget and rerun, the answers already paid for "
                "come from the cache"
            )
    return notes


def render_cost(cost: UsageCost) -> list[str]:
    """USD this run by dataset (model, judge, both) and what cached answers had cost."""
    header = ["cost (USD)", "model", "judge", "total", "cached"]
    total: CostRow = {
        "name": "total",
        "model": cost["model"],
        "judge": cost["judge"],
        "total": cost["total"],
        "cached": cost.get("cached"),
    }
    rows = [*cost.get("dataset", []), total]
    body = [
        [
            str(row["name"]),
            fmt_usd(row.get("model")),
            fmt_usd(row.get("judge")),
            fmt_usd(row.get("total")),
            fmt_usd(row.get("cached")),
        ]
        for row in rows
    ]
    return format_table(header, body) + cost_notes(cost)


# the name a metrics row over the whole index is shown under
ALL_DATASETS = "(all)"


def render_metrics(rows: Iterable[MetricRow]) -> list[str]:
    """Secondary metrics (IFEval loose and instruction-level, SimpleQA not attempted, ...):
    one line a (dataset, metric), the whole index's rows last."""
    header = ["metrics", "metric", "mean", "count"]
    body = [
        [
            ALL_DATASETS if row.get("dataset") is None else str(row["dataset"]),
            str(row["metric"]),
            fmt_score(row.get("mean")),
            str(row.get("count", 0)),
        ]
        for row in rows
    ]
    return format_table(header, body, left=2)


def render_usage(rows: Iterable[UsageRow]) -> list[str]:
    """Requests made, cache hits, tokens and latency percentiles."""
    header = ["usage", "requests", "cached", "prompt tok", "completion tok", "p50 s", "p95 s"]

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    body = [
        [
            str(row["name"]),
            str(row["requests"]),
            str(row["cached"]),
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
            seconds(row["latency_p50_s"]),
            seconds(row["latency_p95_s"]),
        ]
        for row in rows
    ]
    return format_table(header, body)


def shorten(text: str, limit: int = 300) -> str:
    """One line, at most ``limit`` characters, saying how much was cut."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else f"{flat[: limit - 24]} … [{len(flat)} chars]"


def format_missed(
    samples: Sequence[Sample], prompts: Mapping[str, Any], *, limit: int | None = 10
) -> list[str]:
    """Each not-passed sample: prompt (shortened), response, target, reason."""
    lines: list[str] = []
    shown = samples if limit is None else samples[:limit]
    for sample in shown:
        record = prompts.get(sample["id"])
        prompt = record.prompt_text() if record is not None else ""
        score = fmt_score(sample["score"])
        lines.append(f"{sample['outcome'].upper()} {sample['id']} (score {score})")
        lines.append(f"    prompt:   {shorten(prompt, 160)}")
        if sample["outcome"] != "error":
            lines.append(f"    response: {shorten(str(sample['response']), 160)}")
            lines.append(f"    target:   {shorten(str(sample['target']), 160)}")
        lines.append(f"    reason:   {shorten(str(sample['explanation']), 200)}")
    if limit is not None and len(samples) > limit:
        lines.append(f"... {len(samples) - limit} more not shown (use -v, or see the results JSON)")
    return lines
