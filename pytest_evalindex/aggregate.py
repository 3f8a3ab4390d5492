"""Samples to tables (DESIGN §6, §7): micro, macro, weighted means and bootstrap intervals.

Pure functions over sample dicts shaped like the ``samples`` of the results JSON. Keys used:
``dataset``, ``subset``, ``task_type``, ``tags``, ``categories``, ``weight`` (the normalised
leaf weight W_d, the same on every sample of a dataset; the first one seen is used),
``outcome`` and ``score``. A sample is *scored* when its outcome is not ``"error"`` and its
score is not None; every other sample counts as an error.

Rows appear in the order their names first appear in the input. The input order is the
caller's business (the plugin passes samples in test-set order, which is the same with or
without xdist); nothing here sorts.

Confidence intervals (``ci95``) are seeded percentile bootstrap intervals of each row's
``weighted`` value (for a single dataset that is its micro). A replicate resamples, with
replacement, inside each (dataset, row) cell: as many samples as the cell has, so each
dataset's share of the row stays fixed, exactly as DESIGN asks ("resampling within each
leaf"). The sum of a resampled cell is all a replicate needs, and its distribution depends
only on how many times each distinct score value is drawn, which is multinomial with the
cell's value frequencies. Scores take few distinct values (usually 0 and 1), so drawing those
counts with sequential binomials costs one or two draws per cell instead of one per sample;
the binomial sampler is exact (inversion for small means, Hörmann's BTRS rejection method
otherwise). Cells with many distinct values are resampled sample by sample. Each cell has
its own random stream seeded from ``seed``, the dataset name and the cell's values, so an
interval depends only on the seed and the row's own samples. Only ``Random.random()`` is
drawn from, the one method whose sequence Python promises to keep across versions, so an
interval does not move when Python is upgraded.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

TABLES = ("dataset", "subset", "task_type", "tag", "category")
SCHEMA_VERSION = 1
CI_LEVEL = 0.95


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


def build_tables(
    samples: Sequence[Mapping[str, Any]],
    *,
    index_name: str = "index",
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
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
    bootstrap = _Bootstrap(seed, n_boot)

    index_row = _row(index, sample_weight, bootstrap)
    index_row["score"] = index_row["weighted"]
    tables = {
        table: [_row(group, sample_weight, bootstrap) for group in groups[table].values()]
        for table in TABLES
    }
    ordered_index = {key: index_row[key] for key in ("name", "score", "ci95", "count", "errors")}
    ordered_index.update(index_row)
    return {"index": ordered_index, "tables": tables}


def build_results(
    samples: Sequence[Mapping[str, Any]],
    *,
    index_name: str,
    run: Mapping[str, Any],
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """The whole results document of DESIGN §7, plus ``usage`` and ``metrics``."""
    from pytest_evalindex.usage import usage_summary

    tables = build_tables(samples, index_name=index_name, seed=seed, n_boot=n_boot)
    return {
        "schema_version": SCHEMA_VERSION,
        "index": tables["index"],
        "tables": tables["tables"],
        "usage": usage_summary(samples),
        "metrics": metric_rows(samples),
        "samples": list(samples),
        "run": dict(run),
    }


def metric_rows(samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
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
    rows: list[dict[str, Any]] = []
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for (dataset, name), (total, count) in per_dataset.items():
        row = {"dataset": dataset, "metric": name, "mean": total / count, "count": int(count)}
        by_dataset.setdefault(dataset, []).append(row)
    for dataset_rows in by_dataset.values():
        rows.extend(dataset_rows)
    for name, (total, count) in overall.items():
        rows.append({"dataset": None, "metric": name, "mean": total / count, "count": int(count)})
    return rows


def _sample_metrics(sample: Mapping[str, Any]) -> dict[str, float]:
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


def _score_of(sample: Mapping[str, Any]) -> float | None:
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
    return sum(value * count for value, count in _cell_items(cell))


def _cell_items(cell: Counter[float]) -> list[tuple[float, int]]:
    """Values most frequent first (a fixed order, and the cheapest for sequential binomials)."""
    return sorted(cell.items(), key=lambda item: (-item[1], item[0]))


def _row(
    group: _Group, sample_weight: Mapping[str, float], bootstrap: _Bootstrap
) -> dict[str, Any]:
    count = sum(sum(cell.values()) for cell in group.cells.values())
    row: dict[str, Any] = {
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


class _Bootstrap:
    """Resampled cell sums, cached: the same cell under several rows is drawn once."""

    def __init__(self, seed: int, n_boot: int) -> None:
        self.seed = seed
        self.n_boot = n_boot
        self._sums: dict[tuple[str, tuple[tuple[float, int], ...]], list[float]] = {}

    def interval(
        self,
        cells: Mapping[str, Counter[float]],
        sample_weight: Mapping[str, float],
        denominator: float,
    ) -> list[float] | None:
        if self.n_boot <= 0:
            return None
        replicates = [0.0] * self.n_boot
        for dataset, cell in cells.items():
            factor = sample_weight[dataset]
            sums = self._cell_sums(dataset, cell)
            replicates = [r + factor * s for r, s in zip(replicates, sums, strict=True)]
        replicates = sorted(r / denominator for r in replicates)
        tail = (1.0 - CI_LEVEL) / 2
        return [_quantile(replicates, tail), _quantile(replicates, 1.0 - tail)]

    def _cell_sums(self, dataset: str, cell: Counter[float]) -> list[float]:
        items = tuple(_cell_items(cell))
        key = (dataset, items)
        cached = self._sums.get(key)
        if cached is None:
            rng = random.Random(f"{self.seed}\x00{dataset}\x00{items!r}")
            cached = self._sums[key] = resampled_sums(items, self.n_boot, rng)
        return cached


# below this many samples per distinct value, drawing sample by sample is as cheap
_SAMPLES_PER_VALUE_FOR_MULTINOMIAL = 8


def resampled_sums(
    items: Sequence[tuple[float, int]], n_boot: int, rng: random.Random
) -> list[float]:
    """``n_boot`` sums of bootstrap resamples of a multiset given as (value, count) pairs."""
    size = sum(count for _value, count in items)
    if len(items) == 1:
        value, count = items[0]
        return [value * count] * n_boot
    if size < _SAMPLES_PER_VALUE_FOR_MULTINOMIAL * len(items):
        population = [value for value, count in items for _ in range(count)]
        uniform, floor, scale = rng.random, math.floor, float(size)
        return [
            sum([population[floor(uniform() * scale)] for _ in repeat(None, size)])
            for _ in range(n_boot)
        ]
    leading_values = [value for value, _count in items[:-1]]
    # P(value j | not one of the values before j): the sequential-binomial form of a multinomial
    conditional: list[float] = []
    remaining = size
    for _value, count in items[:-1]:
        conditional.append(count / remaining)
        remaining -= count
    last_value = items[-1][0]
    sums = []
    for _ in range(n_boot):
        left = size
        total = 0.0
        for value, probability in zip(leading_values, conditional, strict=True):
            drawn = binomial(rng, left, probability)
            total += value * drawn
            left -= drawn
            if left == 0:
                break
        sums.append(total + last_value * left)
    return sums


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p < 10.0:
        return _binomial_inversion(rng, n, p)
    return _binomial_btrs(rng, n, p)


def _binomial_inversion(rng: random.Random, n: int, p: float) -> int:
    """Walk the cumulative distribution from 0; about n*p + 1 steps."""
    odds = p / (1.0 - p)
    first = (1.0 - p) ** n  # P(X = 0); at least about e**-10 here, so no underflow
    while True:
        u = rng.random()
        k = 0
        probability = first
        while u > probability and k < n:
            u -= probability
            k += 1
            probability *= odds * (n - k + 1) / k
        if u <= probability:
            return k
        # rounding left u above the whole distribution: draw again


def _binomial_btrs(rng: random.Random, n: int, p: float) -> int:
    """Transformed rejection with squeeze (W. Hörmann, "The generation of binomial random
    variates", J. Statist. Comput. Simul. 46, 1993). Needs n*p >= 10 and p <= 0.5."""
    a, b, c, squeeze_limit, alpha, log_odds, mode, log_mode_term = _btrs_constants(n, p)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        if us <= 0.0:  # random() returned exactly 0.0
            continue
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0 or k > n:
            continue
        if us >= 0.07 and v <= squeeze_limit:
            return k
        v *= alpha / (a / (us * us) + b)
        log_ratio = (
            log_mode_term - math.lgamma(k + 1) - math.lgamma(n - k + 1) + (k - mode) * log_odds
        )
        if v <= 0.0 or math.log(v) <= log_ratio:
            return k


# a bootstrap draws Binomial(n, p) with the same n and p once per replicate: set up once
@functools.lru_cache(maxsize=1024)
def _btrs_constants(
    n: int, p: float
) -> tuple[float, float, float, float, float, float, int, float]:
    q = 1.0 - p
    spread = math.sqrt(n * p * q)
    b = 1.15 + 2.53 * spread
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = n * p + 0.5
    squeeze_limit = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spread
    log_odds = math.log(p / q)
    mode = math.floor((n + 1) * p)
    log_mode_term = math.lgamma(mode + 1) + math.lgamma(n - mode + 1)
    return a, b, c, squeeze_limit, alpha, log_odds, mode, log_mode_term


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
