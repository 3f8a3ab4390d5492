"""The statistics behind every interval and p-value: bootstrap, sign-flip test, binomials.

Results tables and run comparisons both resample *cells*: the scores (or per-sample
differences) of one dataset inside one row, given as (value, count) pairs because scores take
few distinct values. A cell's resampled sum is multinomial in those counts, so it is drawn as
a sequence of exact binomials, one or two draws per cell instead of one per sample.

- :class:`StratifiedBootstrap`: the percentile interval of a row's ``weighted`` value of one
  run, resampling inside each dataset so each dataset keeps its share ("resampling within
  each leaf"). Binomials come from :func:`binomial` (inversion for small means, Hörmann's
  BTRS rejection otherwise).
- :class:`PairedStatistics`: for two runs of one test set, the paired percentile interval of
  a row's difference and the two-sided p-value of a stratified sign-flip test. Binomials come
  from :class:`BinomialTables` (inverted cumulative tables, cheaper when the same (n, p) is
  drawn thousands of times).

Each cell has its own random stream, seeded from the seed, the dataset and the cell's values,
so a result depends only on the seed and the row's own data; only ``Random.random()`` is drawn
from, the one method whose sequence Python promises to keep across versions, so intervals do
not move when Python is upgraded. The two classes draw from differently seeded streams with
different samplers: their streams are part of the results and must not be unified.
"""

from __future__ import annotations

import bisect
import functools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import repeat

CI_LEVEL = 0.95

Cell = Counter[float]
"""One dataset's values inside one row: value -> how many samples have it."""
CellItems = tuple[tuple[float, int], ...]


def cell_items(cell: Counter[float]) -> CellItems:
    """Values most frequent first (a fixed order, and the cheapest for sequential binomials)."""
    return tuple(sorted(cell.items(), key=lambda item: (-item[1], item[0])))


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def percentile_interval(ordered: Sequence[float], level: float = CI_LEVEL) -> list[float]:
    """The central ``level`` percentile interval of sorted replicates."""
    tail = (1.0 - level) / 2
    return [quantile(ordered, tail), quantile(ordered, 1.0 - tail)]


class StratifiedBootstrap:
    """Percentile intervals of rows' weighted values; one run's cells, each resampled once
    (the same cell under several rows is drawn once and cached)."""

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
        return percentile_interval(sorted(r / denominator for r in replicates))

    def _cell_sums(self, dataset: str, cell: Counter[float]) -> list[float]:
        items = cell_items(cell)
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


class PairedStatistics:
    """Paired bootstrap intervals and sign-flip p-values of rows' differences between two runs;
    replicates per cell are cached, rows share most of their cells."""

    def __init__(self, seed: int, n_boot: int) -> None:
        self.seed = seed
        self.n_boot = n_boot
        self.binomials = BinomialTables()
        self._resampled: dict[tuple[str, tuple[tuple[float, int], ...]], list[float]] = {}
        self._flipped: dict[tuple[str, tuple[tuple[float, int], ...]], list[float]] = {}

    def interval_and_p(
        self,
        diffs: Mapping[str, Counter[float]],
        weights: Mapping[str, float],
        denominator: float,
    ) -> tuple[list[float] | None, float | None]:
        if self.n_boot <= 0:
            return None, None
        n = self.n_boot
        resampled = [0.0] * n
        flipped = [0.0] * n
        observed = 0.0
        largest = 0.0  # the largest possible |numerator|, to scale the rounding tolerance
        for dataset, cell in diffs.items():
            factor = weights[dataset]
            items = cell_items(cell)
            observed += factor * sum(value * count for value, count in items)
            largest += factor * sum(abs(value) * count for value, count in items)
            sums = self._resampled_sums(dataset, items)
            resampled = [r + factor * s for r, s in zip(resampled, sums, strict=True)]
            flips = self._flipped_sums(dataset, items)
            flipped = [r + factor * s for r, s in zip(flipped, flips, strict=True)]
        ci95 = percentile_interval(sorted(r / denominator for r in resampled))
        threshold = abs(observed) - 1e-9 * largest
        as_extreme = sum(1 for f in flipped if abs(f) >= threshold)
        return ci95, (1 + as_extreme) / (1 + n)

    def _resampled_sums(self, dataset: str, items: tuple[tuple[float, int], ...]) -> list[float]:
        key = (dataset, items)
        sums = self._resampled.get(key)
        if sums is None:
            rng = random.Random(f"{self.seed}\x00bootstrap\x00{dataset}\x00{items!r}")
            sums = resampled_cell_sums(items, self.n_boot, rng, self.binomials)
            self._resampled[key] = sums
        return sums

    def _flipped_sums(self, dataset: str, items: tuple[tuple[float, int], ...]) -> list[float]:
        key = (dataset, items)
        sums = self._flipped.get(key)
        if sums is None:
            rng = random.Random(f"{self.seed}\x00signflip\x00{dataset}\x00{items!r}")
            sums = sign_flipped_sums(items, self.n_boot, rng, self.binomials)
            self._flipped[key] = sums
        return sums


class BinomialTables:
    """Exact Binomial(n, p) draws by inverting cumulative tables built once per (n, p).

    Replicates draw from the same few (n, p) thousands of times: a table costs a few
    operations per standard deviation of the distribution, then each draw is one uniform
    number and a bisection, several times cheaper than a rejection sampler. A table covers
    every value whose probability is at least 1e-16 of the most likely value's; what it
    leaves out has a total probability far below one draw in 10**12.
    """

    _RELATIVE_CUTOFF = 1e-16

    def __init__(self) -> None:
        self._tables: dict[tuple[int, float], tuple[int, list[float]]] = {}

    def draw(self, uniform: float, n: int, p: float) -> int:
        """The Binomial(n, p) value at cumulative probability ``uniform`` (in [0, 1))."""
        first, cumulative = self.table(n, p)
        return first + bisect.bisect_right(cumulative, uniform)

    def table(self, n: int, p: float) -> tuple[int, list[float]]:
        """(smallest value covered, cumulative probabilities from it on)."""
        table = self._tables.get((n, p))
        if table is None:
            table = self._tables[(n, p)] = self._build(n, p)
        return table

    def _build(self, n: int, p: float) -> tuple[int, list[float]]:
        if n <= 0 or p <= 0.0:
            return 0, [1.0]
        if p >= 1.0:
            return n, [1.0]
        mode = min(n, math.floor((n + 1) * p))
        log_mode = (
            math.lgamma(n + 1)
            - math.lgamma(mode + 1)
            - math.lgamma(n - mode + 1)
            + mode * math.log(p)
            + (n - mode) * math.log1p(-p)
        )
        peak = math.exp(log_mode)
        cutoff = peak * self._RELATIVE_CUTOFF
        odds = p / (1.0 - p)
        above = [peak]  # P(mode), P(mode + 1), ...
        k, probability = mode, peak
        while k < n:
            probability *= (n - k) / (k + 1) * odds
            k += 1
            if probability < cutoff:
                break
            above.append(probability)
        below: list[float] = []  # P(mode - 1), P(mode - 2), ...
        k, probability = mode, peak
        while k > 0:
            probability *= k / ((n - k + 1) * odds)
            k -= 1
            if probability < cutoff:
                break
            below.append(probability)
        masses = [*reversed(below), *above]
        total = math.fsum(masses)
        cumulative = []
        running = 0.0
        for mass in masses:
            running += mass / total
            cumulative.append(running)
        cumulative[-1] = 1.0
        return mode - len(below), cumulative


# resampling cells with more distinct values than this goes through resampled_sums:
# sequential binomials need a table for every count left after the first draws
_TABLED_VALUES = 3


def resampled_cell_sums(
    items: Sequence[tuple[float, int]],
    n_draws: int,
    rng: random.Random,
    binomials: BinomialTables | None = None,
) -> list[float]:
    """``n_draws`` sums of bootstrap resamples of a multiset given as (value, count) pairs,
    most frequent first: how often each value is drawn is multinomial, drawn as a sequence
    of binomials (:func:`resampled_sums` does the same with a rejection sampler)."""
    if len(items) > _TABLED_VALUES:
        return resampled_sums(items, n_draws, rng)
    size = sum(count for _value, count in items)
    if len(items) == 1:
        value, count = items[0]
        return [value * count] * n_draws
    tables = binomials or BinomialTables()
    leading: list[tuple[float, float]] = []  # (value, P(value | not one of those before))
    remaining = size
    for value, count in items[:-1]:
        leading.append((value, count / remaining))
        remaining -= count
    last_value = items[-1][0]
    uniform, draw = rng.random, tables.draw
    sums = []
    for _ in range(n_draws):
        left = size
        total = 0.0
        for value, probability in leading:
            drawn = draw(uniform(), left, probability)
            total += value * drawn
            left -= drawn
        sums.append(total + last_value * left)
    return sums


def sign_flipped_sums(
    items: Sequence[tuple[float, int]],
    n_draws: int,
    rng: random.Random,
    binomials: BinomialTables | None = None,
) -> list[float]:
    """``n_draws`` sums of the values (given as (value, count) pairs) with random signs.

    The values sharing an absolute value ``v`` (``k`` of them) add up to
    ``v * (2 * Binomial(k, 1/2) - k)``: one draw per distinct absolute value.
    """
    groups: Counter[float] = Counter()
    for value, count in items:
        if value != 0:
            groups[abs(value)] += count
    if not groups:
        return [0.0] * n_draws
    tables = binomials or BinomialTables()
    # v * (2 * (first + i) - k) for the i-th entry of the table of Binomial(k, 1/2)
    inverted = []
    for value, count in groups.items():
        first, cumulative = tables.table(count, 0.5)
        inverted.append((2.0 * value, value * (2 * first - count), cumulative))
    uniform, find = rng.random, bisect.bisect_right
    if len(inverted) == 1:
        ((scale, offset, cumulative),) = inverted
        return [offset + scale * find(cumulative, uniform()) for _ in range(n_draws)]
    return [
        sum(offset + scale * find(cumulative, uniform()) for scale, offset, cumulative in inverted)
        for _ in range(n_draws)
    ]
