"""Planning a run before it is made: how precise will the index be, and what will it cost?

Everything here is a pure function of per-dataset numbers: the normalised weight ``W_d``
(the weights of the datasets present, rescaled to sum to 1, as the index itself is
``sum_d W_d * mean_d / sum_d W_d``), the sample count ``n_d`` and the variance ``v_d`` of one
sample's score.

- The index estimator's variance is ``sum_d W_d**2 * v_d / n_d``; a 95% interval's
  half-width is ``z * sqrt(that)`` with ``z`` = 1.96. For pass/fail scores ``v_d = p(1-p)``,
  at most 0.25 (the worst case, used unless observed scores are given); for any score in
  [0, 1] the variance is at most 0.25 as well, so the worst case holds for every scorer.
- The effective sample size (Kish) is ``n_eff = 1 / sum_d (W_d**2 / n_d)``: the number of
  equally weighted samples that would measure the index as precisely. It equals the total
  count when samples are drawn in proportion to the weights, and falls when a heavy dataset
  has few samples.
- A paired comparison (``--index-compare-fail``, ``evalindex compare --fail``) fails when the
  drop exceeds the rule's margin and the sign-flip test is significant. With ``u_d`` the
  variance of one sample's difference between the two runs, the delta's standard error is
  ``se = sqrt(sum_d W_d**2 * u_d / n_d)``; the test is significant (two-sided, level alpha)
  about when the observed drop exceeds ``z_{alpha/2} * se``. The smallest true drop that
  fails the rule with probability ``power`` is ``max(margin, z_{alpha/2} * se) + z_power *
  se``. Worst case: every answer an independent coin flip in each run, so half the samples
  are answered differently (``u_d = 0.5``); with observed scores, independent answers at the
  observed accuracy (``u_d = 2 * v_d``); a team that knows how often its answers change from
  run to run (the flips ``evalindex compare`` lists for two runs of one model) can give that
  rate, usually far below 0.5 with greedy decoding; a true drop ``x`` then changes about
  ``x`` more answers, so ``u_d = rate + x`` and the drop is solved for.
- Observed scores (a saved run) replace the worst case by each dataset's score variance,
  shrunk towards 0.25 by two pseudo-samples so that a dataset that happened to score all
  right still counts as uncertain.
- The count needed for a half-width ``h`` keeps the allocation's shares ``a_d = n_d / N``:
  ``N = z**2 * sum_d W_d**2 * v_d / a_d / h**2``.

tests/test_plan.py checks these formulas against simulated runs scored by the real
estimators (``results.aggregate`` and ``results.compare``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from pytest_evalindex.results.statistics import CI_LEVEL

if TYPE_CHECKING:
    from pytest_evalindex.testset.records import Record

WORST_VARIANCE = 0.25  # p(1-p) at p = 0.5: no score in [0, 1] varies more
WORST_DIFFERENCE_VARIANCE = 0.5  # two independent coin flips differ half the time
DEFAULT_POWER = 0.8

# the small-sample warning: a dataset with fewer samples than this ...
SMALL_SAMPLE = 30
# ... that carries more than this share of the index weight ...
LARGE_WEIGHT = 0.25
# ... or alone makes up more than this share of the index's variance
LARGE_VARIANCE_SHARE = 0.5


def z_value(tail: float) -> float:
    """The standard normal quantile leaving ``tail`` above it."""
    return NormalDist().inv_cdf(1.0 - tail)


Z95 = z_value((1.0 - CI_LEVEL) / 2)


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights rescaled to sum to 1, as the index divides by the weights present."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must have a positive sum")
    return {name: weight / total for name, weight in weights.items()}


def index_variance(
    weights: Mapping[str, float],
    counts: Mapping[str, int],
    variances: Mapping[str, float] | None = None,
) -> float:
    """The variance of the index estimator, ``sum_d W_d**2 * v_d / n_d`` (worst case
    ``v_d`` = 0.25 for a dataset ``variances`` does not name)."""
    shares = normalised(weights)
    given = variances or {}
    return sum(
        shares[d] ** 2 * given.get(d, WORST_VARIANCE) / counts[d] for d in shares if counts[d]
    )


def half_width(variance: float, z: float = Z95) -> float:
    """The half-width of a normal interval for an estimator of this variance."""
    return z * math.sqrt(variance)


def dataset_half_width(count: int, variance: float = WORST_VARIANCE, z: float = Z95) -> float:
    """One dataset's interval half-width: ``z * sqrt(v / n)``; infinite with no sample."""
    return z * math.sqrt(variance / count) if count else math.inf


def effective_sample_size(weights: Mapping[str, float], counts: Mapping[str, int]) -> float:
    """Kish's effective sample size of the index, ``1 / sum_d (W_d**2 / n_d)``; 0 when a
    weighted dataset has no sample (the index cannot be measured)."""
    shares = normalised(weights)
    if any(counts.get(d, 0) <= 0 for d in shares):
        return 0.0
    return 1.0 / sum(shares[d] ** 2 / counts[d] for d in shares)


def variance_shares(weights: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
    """Each dataset's share of the index's worst-case variance, ``(W_d**2 / n_d) / sum``."""
    shares = normalised(weights)
    terms = {d: shares[d] ** 2 / counts[d] if counts.get(d) else math.inf for d in shares}
    total = sum(terms.values())
    if math.isinf(total):
        return {d: 1.0 if math.isinf(t) else 0.0 for d, t in terms.items()}
    return {d: t / total for d, t in terms.items()}


def detectable_drop(
    weights: Mapping[str, float],
    counts: Mapping[str, int],
    difference_variances: Mapping[str, float] | None = None,
    *,
    margin: float = 0.0,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    flips_grow: bool = False,
) -> float:
    """The smallest true index drop a paired compare-fail rule with this ``margin`` catches
    with probability ``power`` (two-sided test at ``alpha``).

    ``flips_grow``: ``difference_variances`` are the share of samples two runs of the same
    model answer differently, and a drop changes that many more answers on top (a model that
    loses 4 points must get at least 4% of the samples wrong that it got right), so the
    variance at a drop ``x`` is ``u_d + x``; the drop is then found by fixed-point iteration.
    """
    z_alpha, z_power = z_value(alpha / 2), z_value(1.0 - power)

    def needed(drop: float) -> float:
        se = math.sqrt(paired_variance(weights, counts, difference_variances, drop, flips_grow))
        return max(margin, z_alpha * se) + z_power * se

    drop = needed(0.0)
    if flips_grow:
        # the map is increasing and concave in the drop: the iteration rises to its fixed point
        for _ in range(200):
            following = needed(drop)
            if abs(following - drop) < 1e-12:
                break
            drop = following
    return drop


def detection_power(
    drop: float,
    weights: Mapping[str, float],
    counts: Mapping[str, int],
    difference_variances: Mapping[str, float] | None = None,
    *,
    margin: float = 0.0,
    alpha: float = 0.05,
    flips_grow: bool = False,
) -> float:
    """The probability that a paired compare-fail rule fails for a true drop ``drop``."""
    se = math.sqrt(paired_variance(weights, counts, difference_variances, drop, flips_grow))
    if se == 0:
        return 1.0 if drop > margin else 0.0
    return 1.0 - NormalDist().cdf((max(margin, z_value(alpha / 2) * se) - drop) / se)


def paired_variance(
    weights: Mapping[str, float],
    counts: Mapping[str, int],
    difference_variances: Mapping[str, float] | None = None,
    drop: float = 0.0,
    flips_grow: bool = False,
) -> float:
    """The variance of a paired delta, ``sum_d W_d**2 * u_d / n_d`` (worst case ``u_d`` =
    0.5 for a dataset ``difference_variances`` does not name); with ``flips_grow``, ``u_d``
    grows by ``drop`` (see :func:`detectable_drop`)."""
    shares = normalised(weights)
    given = difference_variances or {}
    grown = drop if flips_grow else 0.0
    return sum(
        shares[d] ** 2 * min(1.0, given.get(d, WORST_DIFFERENCE_VARIANCE) + grown) / counts[d]
        for d in shares
        if counts[d]
    )


def count_for_half_width(
    target: float,
    weights: Mapping[str, float],
    allocation: Mapping[str, float],
    variances: Mapping[str, float] | None = None,
    z: float = Z95,
) -> int:
    """The total count whose index interval has half-width ``target`` when the count is
    split in the proportions ``allocation`` (any positive numbers, e.g. the weights for the
    ``weighted`` sampler or the current counts)."""
    if target <= 0:
        raise ValueError("the half-width must be positive")
    shares = normalised(weights)
    split = normalised(allocation)
    given = variances or {}
    per_unit = sum(
        shares[d] ** 2 * given.get(d, WORST_VARIANCE) / split[d] for d in shares if shares[d]
    )
    # a hair below the exact quotient so 2401.0000000000005 is 2401, not 2402
    return max(1, math.ceil(z * z * per_unit / (target * target) - 1e-9))


@dataclass(frozen=True)
class SmallDataset:
    """A dataset whose few samples carry a large share of the index."""

    name: str
    count: int
    weight: float  # normalised
    variance_share: float


def small_datasets(weights: Mapping[str, float], counts: Mapping[str, int]) -> list[SmallDataset]:
    """The datasets that make the index imprecise through too few samples.

    A dataset is named when it has fewer than ``SMALL_SAMPLE`` (30) samples and either
    carries more than ``LARGE_WEIGHT`` (25%) of the index weight or alone makes up more
    than ``LARGE_VARIANCE_SHARE`` (half) of the index's variance. A dataset with no sample
    at all is not named here: the index then cannot be measured, which the sampler says.
    """
    shares = normalised(weights)
    present = {d: n for d, n in counts.items() if n > 0 and d in shares}
    if len(present) < len(shares) or not present:
        return []
    of_variance = variance_shares(shares, present)
    return [
        SmallDataset(d, present[d], shares[d], of_variance[d])
        for d in shares
        if present[d] < SMALL_SAMPLE
        and (shares[d] > LARGE_WEIGHT or of_variance[d] > LARGE_VARIANCE_SHARE)
    ]


def small_sample_warning(weights: Mapping[str, float], counts: Mapping[str, int]) -> str | None:
    """One line naming the datasets :func:`small_datasets` finds, with the index's
    effective sample size and worst-case interval; None when there are none."""
    small = small_datasets(weights, counts)
    if not small:
        return None
    n_eff = effective_sample_size(weights, counts)
    total = sum(n for d, n in counts.items() if d in weights)
    listed = ", ".join(
        f"{d.name!r} {d.count} {'sample' if d.count == 1 else 'samples'} for {d.weight:.0%}"
        for d in small
    )
    worst = half_width(WORST_VARIANCE / n_eff)
    return (
        f"few samples carry much of the index weight ({listed}): the index's effective "
        f"sample size is {n_eff:.1f} of {total} samples, so its 95% interval is up to "
        f"±{worst:.2f}"
    )


def dataset_weights_and_counts(
    records: Iterable[tuple[str, float]],
) -> tuple[dict[str, float], dict[str, int]]:
    """(dataset -> weight, dataset -> count) from (dataset, weight) pairs, one per record;
    a dataset's weight is the first one seen, as the results tables take it."""
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    for dataset, weight in records:
        weights.setdefault(dataset, weight)
        counts[dataset] = counts.get(dataset, 0) + 1
    return weights, counts


# --------------------------------------------------------------------------- tokens

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators a chat template adds to each message
DEFAULT_OUTPUT_TOKENS = 512


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a text; ``method`` says how, for the output."""

    count: Callable[[str], int]
    method: str
    exact: bool


def approximate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


APPROXIMATE = TokenCounter(
    approximate_tokens, f"about {CHARS_PER_TOKEN} characters a token", exact=False
)


def prompt_tokens(messages: Iterable[str], counter: TokenCounter) -> int:
    """A prompt's tokens: each message's text plus the chat format's few per message."""
    return sum(counter.count(text) + MESSAGE_OVERHEAD_TOKENS for text in messages)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Observed:
    """What a saved run measured on one dataset."""

    mean: float
    variance: float  # of one sample's score (population variance)
    count: int
    completion_tokens: float | None  # mean per answer, None when the run did not say

    @property
    def planning_variance(self) -> float:
        """The observed variance shrunk towards the worst case by two pseudo-samples: a
        dataset that scored all right (variance 0) on 50 samples is not certain to."""
        return (self.count * self.variance + 2 * WORST_VARIANCE) / (self.count + 2)


def observed_from_results(results: Mapping[str, Any]) -> dict[str, Observed]:
    """Per dataset, the scored samples' mean, variance and completion tokens."""
    scores: dict[str, list[float]] = {}
    tokens: dict[str, list[int]] = {}
    for sample in results.get("samples") or []:
        score = sample.get("score")
        if sample.get("outcome") == "error" or score is None:
            continue
        scores.setdefault(sample["dataset"], []).append(float(score))
        used = (sample.get("usage") or {}).get("completion_tokens")
        if isinstance(used, int) and used > 0:
            tokens.setdefault(sample["dataset"], []).append(used)
    observed = {}
    for dataset, values in scores.items():
        mean = math.fsum(values) / len(values)
        variance = math.fsum((v - mean) ** 2 for v in values) / len(values)
        used_tokens = tokens.get(dataset)
        observed[dataset] = Observed(
            mean,
            variance,
            len(values),
            math.fsum(used_tokens) / len(used_tokens) if used_tokens else None,
        )
    return observed


@dataclass(frozen=True)
class PlanSettings:
    """What the user asked of the plan (see ``evalindex plan --help``)."""

    counter: TokenCounter = APPROXIMATE
    output_tokens: int | None = None  # per answer, as the user gave it
    spec_max_tokens: int | None = None  # the spec's model.generation.max_tokens
    prices: tuple[float, float] | None = None  # USD per million input, output tokens
    price_from: str | None = None
    observed: Mapping[str, Observed] | None = None
    observed_from: str | None = None
    discordance: float | None = None
    margin: float = 0.0
    alpha: float = 0.05
    power: float = DEFAULT_POWER
    target_half_width: float | None = None


def build_plan(
    records: Sequence[Record],
    settings: PlanSettings,
    *,
    weights: Mapping[str, float] | None = None,
    sampler: str | None = None,
) -> dict[str, Any]:
    """The plan document of a test set: per dataset and in total, records, tokens, cost and
    the statistics of the decision. ``weights`` are the spec's leaf weights (datasets may
    have no record); without them each dataset's weight is its records' (a test set)."""
    record_weights, counts = dataset_weights_and_counts((r.dataset, r.weight) for r in records)
    leaf_weights = dict(weights) if weights is not None else record_weights
    for dataset in leaf_weights:
        counts.setdefault(dataset, 0)
    shares = normalised(leaf_weights)
    observed = dict(settings.observed or {})
    variances = {d: observed[d].planning_variance for d in shares if d in observed}

    tokens_in = dict.fromkeys(shares, 0)
    for record in records:
        tokens_in[record.dataset] += prompt_tokens(
            (m.content for m in record.input), settings.counter
        )
    per_answer, output_from = _output_tokens(settings, observed, shares)
    tokens_out = {d: counts[d] * per_answer[d] for d in shares}

    datasets = [
        {
            "name": d,
            "weight": shares[d],
            "records": counts[d],
            "prompt_tokens": tokens_in[d],
            "output_tokens": round(tokens_out[d]),
            "score_variance": variances.get(d, WORST_VARIANCE),
            "scores_from": "observed" if d in variances else "worst case",
            "half_width": _finite(dataset_half_width(counts[d], variances.get(d, WORST_VARIANCE))),
        }
        for d in shares
    ]
    total_in, total_out = sum(tokens_in.values()), round(sum(tokens_out.values()))
    cost = None
    if settings.prices is not None:
        price_in, price_out = settings.prices
        cost = {
            "input": total_in * price_in / 1e6,
            "output": total_out * price_out / 1e6,
            "total": (total_in * price_in + total_out * price_out) / 1e6,
            "price": {"input": price_in, "output": price_out},
            "price_from": settings.price_from,
        }

    measurable = all(counts[d] > 0 for d in shares)
    if settings.discordance is not None:
        differences = dict.fromkeys(shares, settings.discordance)
        differences_from = (
            f"{settings.discordance:.0%} of the samples answered differently by two runs of "
            "one model, and those a drop changes"
        )
    else:
        differences = {d: 2 * v for d, v in variances.items()}
        differences_from = (
            "independent answers at the observed scores"
            if differences
            else "worst case: every answer a coin flip, half the samples answered differently"
        )
    statistics: dict[str, Any] = {
        "scores_from": settings.observed_from if variances else "worst case",
        "index_half_width": None,
        "effective_sample_size": effective_sample_size(shares, counts),
        "detectable_drop": None,
        "count_for_half_width": None,
    }
    if measurable:
        statistics["index_half_width"] = half_width(index_variance(shares, counts, variances))
        statistics["detectable_drop"] = {
            "margin": settings.margin,
            "alpha": settings.alpha,
            "power": settings.power,
            "drop": detectable_drop(
                shares,
                counts,
                differences,
                margin=settings.margin,
                alpha=settings.alpha,
                power=settings.power,
                flips_grow=settings.discordance is not None,
            ),
            "differences_from": differences_from,
        }
    if settings.target_half_width is not None:
        total = sum(counts.values())
        proportional = sampler == "weighted" and all(
            abs(counts[d] - total * shares[d]) <= 1 for d in shares
        )
        allocation = shares if proportional or not measurable else counts
        statistics["count_for_half_width"] = {
            "half_width": settings.target_half_width,
            "count": count_for_half_width(
                settings.target_half_width, shares, allocation, variances
            ),
            "allocation": "the weights" if allocation is shares else "this test set's counts",
        }
    small = small_sample_warning(shares, counts)
    warnings = [small] if small else []
    return {
        "records": len(records),
        "datasets": datasets,
        "tokens": {
            "prompt": total_in,
            "output": total_out,
            "method": settings.counter.method,
            "exact": settings.counter.exact,
            "output_from": output_from,
        },
        "cost": cost,
        "statistics": statistics,
        "warnings": warnings,
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _output_tokens(
    settings: PlanSettings, observed: Mapping[str, Observed], shares: Mapping[str, float]
) -> tuple[dict[str, float], str]:
    """Output tokens per answer for each dataset, and where the number comes from."""
    if settings.output_tokens is not None:
        return dict.fromkeys(shares, float(settings.output_tokens)), (
            f"{settings.output_tokens} per answer (--output-tokens)"
        )
    seen = {d: o.completion_tokens for d, o in observed.items() if o.completion_tokens}
    fallback = settings.spec_max_tokens or DEFAULT_OUTPUT_TOKENS
    if seen:
        per = {d: float(seen.get(d) or fallback) for d in shares}
        return per, f"the mean per answer observed in {settings.observed_from}"
    if settings.spec_max_tokens:
        return dict.fromkeys(shares, float(fallback)), (
            f"{fallback} per answer at most (the spec's model.generation.max_tokens)"
        )
    return dict.fromkeys(shares, float(fallback)), (
        f"{fallback} per answer (a default guess; give --output-tokens)"
    )


def testset_warning(
    records: Iterable[Record], weights: Mapping[str, float] | None = None
) -> str | None:
    """:func:`small_sample_warning` for a test set's records (weights: the records' own,
    or the spec's leaf weights)."""
    record_weights, counts = dataset_weights_and_counts((r.dataset, r.weight) for r in records)
    if not counts:
        return None
    return small_sample_warning(weights if weights is not None else record_weights, counts)
