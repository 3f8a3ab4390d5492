"""Loading an index: sample a spec or read a frozen test set, and resolve its scorers.

Each ``--index`` argument becomes one ``LoadedIndex``: its records (those of this
``--index-shard`` when the run is split over CI jobs), its gates, model defaults and
scorers, and, as the run goes on, its samples and results.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.options import RunOptions
from pytest_evalindex.results.verdicts import Verdicts
from pytest_evalindex.testset.records import Record

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import IndexSource, Results, Sample

# marker names pytest or common plugins give a meaning; a tag must not trigger them
RESERVED_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings",
     "tryfirst", "trylast", "xdist_group", "timeout", "flaky", "asyncio", "anyio"}
)  # fmt: skip


@dataclass
class LoadedIndex:
    """One ``--index`` argument, sampled (or read) into records."""

    path: Path
    name: str
    records: list[Record]
    header: dict[str, Any] | None
    spec_sha256: str | None
    # every record of the test set, also those another shard runs: what the hash covers
    all_records: list[Record] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    scorers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # record id -> its scorer, so running an item needs no lookup by scorer settings
    scorer_of: dict[str, Callable[..., Any]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    results: Results | None = None
    model_defaults: dict[str, Any] = field(default_factory=dict)
    strip_thinking: bool = True
    gates: list[Any] = field(default_factory=list)
    baseline: tuple[Path, Results] | None = None
    verdicts: Verdicts | None = None
    saved_to: Path | None = None
    # a published test set: its lock and, when run by a hub id, where it came from
    lock: dict[str, Any] | None = None
    index_source: IndexSource | None = None
    save_refused: str | None = None
    _testset_sha256: str | None = None
    # sample id -> its place in ``samples``, so a rerun's sample replaces the earlier one
    _sample_at: dict[str, int] = field(default_factory=dict)

    def add_sample(self, sample: Sample) -> None:
        """Keep a reported sample; the last report of a record wins (pytest-rerunfailures
        reports every attempt), so each record counts once."""
        at = self._sample_at.get(sample["id"])
        if at is None:
            self._sample_at[sample["id"]] = len(self.samples)
            self.samples.append(sample)
        else:
            self.samples[at] = sample

    @property
    def testset_sha256(self) -> str:
        """The hash of the whole test set; computed when first asked for (only the process
        that writes results needs it, and it costs a serialisation of every record)."""
        if self._testset_sha256 is None:
            canonical = "\n".join(
                json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in self.all_records
            )
            self._testset_sha256 = hashlib.sha256(canonical.encode()).hexdigest()
        return self._testset_sha256


def _index_source(shared: Any, lock: dict[str, Any] | None) -> IndexSource | None:
    """``run.index_source`` of the results: the hub id and revision a shared index was
    resolved to, and the lock it was checked against."""
    if shared is None and lock is None:
        return None
    where = shared.as_dict() if shared is not None else {}
    return {
        "id": where.get("id"),
        "hub": where.get("hub"),
        "repo": where.get("repo"),
        "requested": where.get("requested"),
        "revision": where.get("revision"),
        "lock_sha256": lock["sha256"] if lock else None,
    }


def scorer_key(record: Record) -> str:
    return json.dumps(record.scorer.model_dump(mode="json"), sort_keys=True)


def load_index(
    path: Path,
    options: RunOptions,
    scorer_context: Callable[[dict[str, Any]], dict[str, Any]] = lambda judge: {},
) -> LoadedIndex:
    """Sample a spec or read a frozen test set; resolve every scorer up front.

    ``scorer_context`` turns the spec's ``judge:`` settings into the values scorers may ask
    for (the judge model)."""
    from pytest_evalindex.scoring import resolve_scorer
    from pytest_evalindex.testset.jsonl import read_testset

    spec_sha: str | None = None
    header: dict[str, Any] | None
    lock: dict[str, Any] | None = None
    shared = None
    model_defaults: dict[str, Any] = {}
    judge_defaults: dict[str, Any] = {}
    strip_thinking = True
    gate_texts: list[str] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        from pytest_evalindex.spec.index import load_spec
        from pytest_evalindex.testset.sampling import sample_index

        spec = load_spec(path)
        result = sample_index(spec, count=options.count, seed=options.seed, sampler=options.sampler)
        records, header, name = result.records, result.header, spec.name
        from pytest_evalindex.data.sources import source_sha256

        spec_sha = source_sha256(str(path))
        strip_thinking = spec.strip_thinking
        if spec.model is not None:
            model_defaults = spec.model.model_dump(exclude_none=True)
        if spec.judge is not None:
            judge_defaults = spec.judge.model_dump(exclude_none=True)
        gate_texts = list(spec.gates)
    elif path.suffix.lower() == ".jsonl":
        header, records = read_testset(path)
        name = str((header or {}).get("spec") or path.stem)
        from pytest_evalindex.data.published import check_lock, source_of

        # a published test set that no longer matches its lock is refused here, before
        # any request
        shared = source_of(path)
        lock = check_lock(path, len(records), origin=shared.origin if shared else None)
    else:
        raise EvalIndexError("an index is a spec (.yaml/.yml) or a test set (.jsonl)", file=path)
    # positions and the test-set hash describe the whole set, so shards can be merged
    all_records = records
    position = {r.id: i for i, r in enumerate(records)}
    if options.shard is not None:
        from pytest_evalindex.results.shards import in_shard

        records = [r for r in records if in_shard(r.id, *options.shard)]
    from pytest_evalindex.results.gates import parse_gates

    loaded = LoadedIndex(
        path=path,
        name=name,
        records=records,
        header=header,
        spec_sha256=spec_sha,
        all_records=all_records,
        position=position,
        gates=parse_gates(gate_texts, file=str(path)) + list(options.gate),
        model_defaults=model_defaults,
        strip_thinking=strip_thinking,
        lock=lock,
        index_source=_index_source(shared, lock),
    )
    context = scorer_context(judge_defaults)
    # the records of a leaf share one ScorerRef object: key it once, not once a record
    key_of_ref: dict[int, str] = {}
    for record in records:
        key = key_of_ref.get(id(record.scorer))
        if key is None:
            key = key_of_ref[id(record.scorer)] = scorer_key(record)
        if key not in loaded.scorers:
            try:
                loaded.scorers[key] = resolve_scorer(record.scorer, context=context)
            except EvalIndexError as exc:
                if exc.file is None:
                    exc = EvalIndexError(exc.message, file=path, field=f"{record.dataset}: scorer")
                raise exc from None
        loaded.scorer_of[record.id] = loaded.scorers[key]
    return loaded


def marker_lines(indexes: Iterable[LoadedIndex]) -> list[str]:
    """The ``markers`` ini lines that declare the records' task types, tags and datasets."""
    names: dict[str, str] = {}
    for loaded in indexes:
        for record in loaded.records:
            for name in (record.task_type, *record.tags, record.dataset):
                if name not in RESERVED_MARKERS and name.isidentifier():
                    names.setdefault(name, f"{name}: evaluation index marker (evalindex)")
    return list(names.values())
