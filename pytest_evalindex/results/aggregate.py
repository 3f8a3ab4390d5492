"""Samples to tables: micro, macro, weighted means and bootstrap intervals of every row.

Pure functions over sample dicts shaped like the ``samples`` of the results JSON. Keys used:
``dataset``, ``subset``, ``task_type``, ``tags``, ``categories``, ``weight`` (the normalised
leaf weight W_d, the same on every sample of a dataset; the first one seen is used),
``outcome`` and ``score``. A sample is *scored* when its outcome is not ``"error"`` and its
score is not None; every other sample counts as an error.

Rows appear in the order their names first appear in the input. The input order is the
caller's business (the plugin passes samples in test-set order, which is the same with or
without xdist); nothing here sorts.

Confidence intervals (``ci95``) are seeded percentile bootstrap intervals of each row's
``weighted`` value (for a single dataset that is its micro), resampled inside each
(dataset, row) cell so each dataset's share of the row stays fixed ("resampling within each
leaf"). The rows hand their cells to
:class:`pytest_evalindex.results.statistics.StratifiedBootstrap`, which says how they are drawn.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from pytest_evalindex.results.schema import (
    IndexSummary,
    MetricRow,
    Results,
    RunInfo,
    Sample,
    TableRow,
    Tables,
)
from pytest_evalindex.results.statistics import StratifiedBootstrap, cell_items

TABLES = ("dataset", "subset", "task_type", "tag", "category")
SCHEMA_VERSION = 1


@dataclass
class _Group:
    """The samples of one row, as per-dataset cells of score counts."""

    name: str
    errors: int = 0
    # dataset -> score value -> how many scored samples of that dataset have it
    cells: dict[str, Counter[float]] = field(default_factory=dict)
    # (dataset, subset) -> [sum of scores, count]
    units: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, dataset: str, subset: str, score: float | None) -> None:
        if score is None:
            self.errors += 1
            return
        cell = self.cells.get(dataset)
        if cell is None:
            cell = self.cells[dataset] = Counter()
        cell[score] += 1
        unit = self.units.get((dataset, subset))
        if unit is None:
            unit = self.units[(dataset, subset)] = [0.0, 0]
        unit[0] += score
        unit[1] += 1


class IndexTables(TypedDict):
    index: IndexSummary
    tables: Tables


def build_tables(
    samples: Sequence[Sample],
    *,
    index_name: str = "index",
    seed: int = 0,
    n_boot: int = 1000,
) -> IndexTables:
    """``{"index": row, "tables": {table: [row, ...]}}`` for ``samples``.

    Table rows are ``{"name", "micro", "macro", "weighted", "count", "errors", "ci95"}``;
    the index row has ``score`` (its weighted value) too. ``n_boot=0`` skips the intervals.
    """
    index = _Group(index_name)
    groups: dict[str, dict[str, _Group]] = {table: {} for table in TABLES}
    dataset_weight: dict[str, float] = {}
    for sample in samples:
        dataset = str(sample["dataset"])
        subset = str(sample.get("subset") or "default")
        score = _score_of(sample)
        weight = sample.get("weight")
        dataset_weight.setdefault(dataset, 1.0 if weight is None else float(weight))
        memberships = {
            "dataset": [dataset],
            "subset": [f"{dataset}/{subset}"],
            "task_type": [str(sample.get("task_type") or "default")],
            "tag": _unique(str(t) for t in sample.get("tags") or ()),
            "category": _category_paths(sample.get("categories") or ()),
        }
        index.add(dataset, subset, score)
        for table, names in memberships.items():
            for name in names:
                group = groups[table].get(name)
                if group is None:
                    group = groups[table][name] = _Group(name)
                group.add(dataset, subset, score)

    scored_per_dataset = {d: sum(cell.values()) for d, cell in index.cells.items()}
    # w_i = W_d / n_d, the weight of one scored sample of dataset d
    sample_weight = {d: dataset_weight[d] / n for d, n in scored_per_dataset.items()}
    bootstrap = StratifiedBootstrap(seed, n_boot)

    root = _row(index, sample_weight, bootstrap)
    index_row: IndexSummary = {
        "name": root["name"],
        "score": root["weighted"],
        "ci95": root["ci95"],
        "count": root["count"],
        "errors": root["errors"],
        "micro": root["micro"],
        "macro": root["macro"],
        "weighted": root["weighted"],
    }
    rows = {
        table: [_row(group, sample_weight, bootstrap) for group in groups[table].values()]
        for table in TABLES
    }
    tables: Tables = {
        "dataset": rows["dataset"],
        "subset": rows["subset"],
        "task_type": rows["task_type"],
        "tag": rows["tag"],
        "category": rows["category"],
    }
    return {"index": index_row, "tables": tables}


def build_results(
    samples: Sequence[Sample],
    *,
    index_name: str,
    run: RunInfo,
    seed: int = 0,
    n_boot: int = 1000,
) -> Results:
    """The whole results document: index, tables, usage, metrics, samples and run."""
    from pytest_evalindex.results.usage import usage_summary

    tables = build_tables(samples, index_name=index_name, seed=seed, n_boot=n_boot)
    return {
        "schema_version": SCHEMA_VERSION,
        "index": tables["index"],
        "tables": tables["tables"],
        "usage": usage_summary(samples),
        "metrics": metric_rows(samples),
        "samples": list(samples),
        "run": run.copy(),
    }


def metric_rows(samples: Sequence[Sample]) -> list[MetricRow]:
    """Secondary metrics (a sample's ``metrics``) averaged per dataset and over the index.

    Rows ``{"dataset", "metric", "mean", "count"}``: first every dataset's metrics (datasets
    and metrics in the order they first appear), then one row per metric with ``"dataset":
    None`` over every sample that has it. ``count`` is the number of samples averaged; an
    error sample has no metrics and is left out. A sample asked several times contributes
    the mean over its scored repeats, so it weighs as one sample, like its score does.
    Values that are not numbers are skipped (metrics come from user scorers too).
    """
    per_dataset: dict[tuple[str, str], list[float]] = {}
    overall: dict[str, list[float]] = {}
    for sample in samples:
        if sample.get("outcome") == "error":
            continue
        values = _sample_metrics(sample)
        dataset = str(sample.get("dataset"))
        for name, value in values.items():
            cell = per_dataset.setdefault((dataset, name), [0.0, 0])
            cell[0] += value
            cell[1] += 1
            whole = overall.setdefault(name, [0.0, 0])
            whole[0] += value
            whole[1] += 1
    rows: list[MetricRow] = []
    by_dataset: dict[str, list[MetricRow]] = {}
    for (dataset, name), (total, count) in per_dataset.items():
        row: MetricRow = {
            "dataset": dataset,
            "metric": name,
            "mean": total / count,
            "count": int(count),
        }
        by_dataset.setdefault(dataset, []).append(row)
    for dataset_rows in by_dataset.values():
        rows.extend(dataset_rows)
    for name, (total, count) in overall.items():
        rows.append({"dataset": None, "metric": name, "mean": total / count, "count": int(count)})
    return rows


def _sample_metrics(sample: Sample) -> dict[str, float]:
    """A sample's numeric metrics; with repeats, each averaged over the repeats that have it."""
    repeats = sample.get("repeats")
    answers = (
        [r for r in repeats if isinstance(r, Mapping) and r.get("outcome") != "error"]
        if isinstance(repeats, list)
        else [sample]
    )
    sums: dict[str, list[float]] = {}
    for answer in answers:
        metrics = answer.get("metrics")
        if not isinstance(metrics, Mapping):
            continue
        for name, value in metrics.items():
            number = _number(value)
            if number is not None:
                cell = sums.setdefault(str(name), [0.0, 0])
                cell[0] += number
                cell[1] += 1
    return {name: total / count for name, (total, count) in sums.items()}


def _number(value: Any) -> float | None:
    if not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _score_of(sample: Sample) -> float | None:
    score = sample.get("score")
    if sample.get("outcome") == "error" or score is None:
        return None
    return float(score)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _category_paths(categories: Iterable[Any]) -> list[str]:
    """["a", "b", "c"] -> ["a", "a/b", "a/b/c"]."""
    paths: list[str] = []
    for part in categories:
        paths.append(f"{paths[-1]}/{part}" if paths else str(part))
    return _unique(paths)


def _cell_sum(cell: Counter[float]) -> float:
    return sum(value * count for value, count in cell_items(cell))


def _row(
    group: _Group, sample_weight: Mapping[str, float], bootstrap: StratifiedBootstrap
) -> TableRow:
    count = sum(sum(cell.values()) for cell in group.cells.values())
    row: TableRow = {
        "name": group.name,
        "micro": None,
        "macro": None,
        "weighted": None,
        "count": count,
        "errors": group.errors,
        "ci95": None,
    }
    if count == 0:
        return row
    sums = {d: _cell_sum(cell) for d, cell in group.cells.items()}
    row["micro"] = sum(sums.values()) / count
    row["macro"] = sum(total / n for total, n in group.units.values()) / len(group.units)
    denominator = sum(sample_weight[d] * sum(cell.values()) for d, cell in group.cells.items())
    if denominator > 0:
        row["weighted"] = sum(sample_weight[d] * sums[d] for d in group.cells) / denominator
        row["ci95"] = bootstrap.interval(group.cells, sample_weight, denominator)
    return row
