"""The shape of a results document, and of a comparison document, as types.

A results document is what a run writes (``--index-json``, ``.evalindex/last.json``, saved
runs) and what everything after the run reads: merging shards, gates, comparisons,
baselines, the terminal tables, the HTML page, the markdown summary and JUnit properties.
The types are ``TypedDict``: at run time every value stays a plain dict, list, str, number,
bool or None, so samples cross the xdist wire and go to the JSON writer as they are, while
the code that builds and reads them is checked.

Documents read from files are only as good as the file: code that reads one checks what it
relies on (see ``pytest_evalindex.results.baselines.check_results``). ``docs/results.schema.json``
describes the same document as a JSON Schema; a test keeps the two in step.
"""

# No ``from __future__ import annotations`` here: TypedDict reads NotRequired from evaluated
# annotations only, and the JSON Schema test relies on ``__required_keys__``.
import sys
from collections.abc import Mapping
from typing import Literal, cast

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover - Python 3.10: typing.TypedDict does not know NotRequired
    from typing_extensions import NotRequired, TypedDict

Outcome = Literal["passed", "missed", "error"]
Interval = list[float]
"""A 95% interval, ``[low, high]``."""


class Usage(TypedDict, total=False):
    """Tokens of one answer (or of all repeats of a sample). Empty when a user's model
    reported none; it may report more counts than these two, which are kept as they are."""

    prompt_tokens: int
    completion_tokens: int
    # prompt tokens the provider served from its prompt cache (only when it says so)
    cached_tokens: int


class JudgeCall(TypedDict):
    """One verdict a judge gave on a sample (kept only when the judge has prices)."""

    usage: Usage
    # from the response cache: it cost nothing this run
    cached: bool
    # USD at the judge's prices: what the verdict cost, or cost when first asked
    cost: float


class InputMessage(TypedDict):
    """One message of the prompt as it was sent (records may carry more keys)."""

    role: str
    content: str


class Repeat(TypedDict):
    """One of several answers to a sample (``--index-repeat``). A repeat that failed has
    only ``outcome`` ("error"), ``score`` (None) and ``explanation``."""

    response: NotRequired[str | None]
    reasoning: NotRequired[str | None]
    usage: NotRequired[Usage]
    latency_s: NotRequired[float]
    cached: NotRequired[bool]
    score: float | None
    explanation: str
    outcome: Outcome
    metrics: NotRequired[dict[str, float]]


class Sample(TypedDict):
    """One record of the test set, asked and scored (or an error)."""

    id: str
    # the record's place in the test set: samples are written in this order
    position: int
    dataset: str
    subset: str
    task_type: str
    tags: list[str]
    categories: list[str]
    # the dataset's normalised leaf weight W_d
    weight: float
    outcome: Outcome
    score: float | None
    response: str | None
    reasoning: str | None
    target: str | list[str] | None
    input: list[InputMessage]
    explanation: str
    usage: Usage
    latency_s: float
    cached: bool
    # secondary numbers a scorer reports beside the score (e.g. a judge's rubric items)
    metrics: NotRequired[dict[str, float]]
    # with --index-repeat K > 1: every answer; the sample's own answer fields are the first's
    repeats: NotRequired[list[Repeat]]
    # with a priced judge: every verdict asked while the sample was scored
    judge_calls: NotRequired[list[JudgeCall]]


class TableRow(TypedDict):
    """One row of a results table (a dataset, subset, task type, tag or category path)."""

    name: str
    micro: float | None
    macro: float | None
    weighted: float | None
    count: int
    errors: int
    ci95: Interval | None


class IndexSummary(TypedDict):
    """The whole index: its score is the root's ``weighted``, always reported first."""

    name: str
    score: float | None
    ci95: Interval | None
    count: int
    errors: int
    micro: float | None
    macro: float | None
    weighted: float | None


class Tables(TypedDict):
    """Rows of every grouping, in the order their names first appear in the test set."""

    dataset: list[TableRow]
    subset: list[TableRow]
    task_type: list[TableRow]
    tag: list[TableRow]
    category: list[TableRow]


class UsageRow(TypedDict):
    """Requests, tokens and latency of a dataset (or ``total``); tokens only of requests
    made in this run (cached answers cost nothing)."""

    name: str
    samples: int
    requests: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    latency_p50_s: float | None
    latency_p95_s: float | None


class Prices(TypedDict):
    """USD per million tokens (``model.pricing``, ``judge.pricing``, ``--index-price``)."""

    input: float
    output: float
    cached_input: NotRequired[float | None]


class CostRow(TypedDict):
    """What a dataset (or ``total``) cost in USD this run: the model's answers, the judge's
    verdicts, both, and what the answers taken from the cache cost when first asked.
    ``model`` or ``judge`` is None when it has no prices."""

    name: str
    model: float | None
    judge: float | None
    total: float | None
    cached: float | None


class UsageCost(TypedDict):
    """What the run cost in USD, when prices are known. ``by_dataset`` maps a dataset to
    its total (model and judge)."""

    model: float | None
    judge: float | None
    total: float | None
    by_dataset: dict[str, float | None]
    dataset: NotRequired[list[CostRow]]
    # what the cached answers and verdicts cost when first asked (nothing this run)
    cached: NotRequired[float]
    # the model's prices the cost was computed with
    prices: NotRequired[Prices | None]
    # --index-budget, and how many records it left unasked
    budget: NotRequired[float | None]
    budget_reached: NotRequired[int]


class UsageSummary(TypedDict):
    total: UsageRow
    dataset: list[UsageRow]
    cost: NotRequired[UsageCost]


class MetricRow(TypedDict):
    """A secondary metric averaged over a dataset, or over the index (``dataset`` None)."""

    dataset: str | None
    metric: str
    mean: float
    count: int


class PartialRun(TypedDict):
    """A run of part of the test set: how many records it ran, of how many, and why."""

    ran: int
    of: int
    why: str


class SandboxInfo(TypedDict):
    """The code sandbox of a run with code-scored datasets."""

    mode: str
    isolation: str
    # why ``auto`` fell back to the basic sandbox, else None
    note: str | None


class SavedInfo(TypedDict):
    """Added by ``--index-save``: the saved run's name, number, time, git and machine."""

    name: str
    number: int
    saved_at: str
    git: NotRequired[dict[str, object]]
    machine: dict[str, object]


class IndexSource(TypedDict):
    """A published index: the hub id and revision it was resolved to (None for a folder on
    disk) and the sha256 its lock gives the test set."""

    id: str | None
    hub: str | None
    repo: str | None
    requested: str | None
    revision: str | None
    lock_sha256: str | None


class RunInfo(TypedDict):
    """How the run was made: model, test set, seeds, sandbox, time and versions."""

    model: str | None
    base_url: str | None
    index_file: str
    spec_sha256: str | None
    testset_sha256: str | None
    seed: int | None
    sampler: str | None
    bootstrap_seed: int
    # "I/N" for one shard of a run split with --index-shard, else None; not in merged runs
    shard: NotRequired[str | None]
    # a published index (a hub id or a folder with a lock): id, revision, lock sha256
    index_source: NotRequired[IndexSource | None]
    sandbox: SandboxInfo | None
    started_at: str
    duration_s: float
    versions: dict[str, str]
    partial: PartialRun | None
    saved: NotRequired[SavedInfo]
    # in a document merged from shards: how many were merged
    shards: NotRequired[int]


class Results(TypedDict):
    """The results document of one index."""

    schema_version: int
    index: IndexSummary
    tables: Tables
    usage: UsageSummary
    metrics: list[MetricRow]
    samples: list[Sample]
    run: RunInfo


# --------------------------------------------------------------------------- comparisons


class ComparisonSide(TypedDict):
    """One of the two runs compared: its label, run metadata and index row."""

    label: str
    run: RunInfo
    index: IndexSummary


class ComparisonRow(TypedDict):
    """A row of both runs on the paired samples: values, difference, interval, p-value."""

    table: str
    name: str
    base: float | None
    new: float | None
    delta: float | None
    ci95: Interval | None
    p_value: float | None
    count: int


class Flips(TypedDict):
    passed_to_missed: list[str]
    missed_to_passed: list[str]


class Comparison(TypedDict):
    """The comparison document (``evalindex compare --json``)."""

    schema_version: int
    base: ComparisonSide
    new: ComparisonSide
    paired_count: int
    alpha: float
    rows: list[ComparisonRow]
    flips: Flips
    only_in_base: list[str]
    only_in_new: list[str]
    errors_excluded: int
    notes: list[str]


def table_rows(results: Results, table: str) -> list[TableRow]:
    """The rows of the table named ``table`` (chosen at run time, e.g. by a gate), or []
    when the document has none."""
    tables = cast("Mapping[str, list[TableRow]]", results.get("tables") or {})
    return tables.get(table) or []
