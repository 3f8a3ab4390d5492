"""Sampling a frozen test set from an index spec: allocation, then selection.

Allocation (:func:`allocate`) splits ``count`` over the leaves: ``weighted`` in proportion to
the normalised weights, ``stratified`` to the leaves' record counts, ``uniform`` equally.
A leaf whose exact share exceeds its size gives all it has and the rest is shared among the
others in proportion to their own basis (water-filling); the shares are then rounded with the
largest-remainder rule, ties going to the earlier leaf, so the total is exactly
``min(count, total records)``. The arithmetic is exact (fractions), so the result does not
depend on floating point.

Selection ranks every record of a leaf by
``sha256(f"{seed}:{dataset}:{record_id}".encode("utf-8")).hexdigest()``, where ``dataset`` is
the leaf name and ``record_id`` the adapter's id *without* the ``"<dataset>/"`` prefix, and
keeps the ``n_d`` smallest. The rank of a record depends on nothing but its own id, so every
machine and Python version selects the same records, and appending rows to a source only
lets a new row displace a selected one.

Each source is read in one streaming pass (``args.json_key`` goes to
:func:`pytest_evalindex.data.sources.iter_rows`), shared by every leaf that reads it. For each leaf
the pass counts the rows that pass ``args.subset_list`` and keeps the ``count`` best-ranked
rows in a bounded heap, so memory is O(count) per leaf whatever the size of the source.
Only the selected rows become records. Record ids must be unique within a leaf; the check
covers the rows the pass keeps as candidates (a duplicate id there is an error naming both
rows), not the rest of the source, which would take memory in proportion to the source.

Output order: leaves in spec (flatten) order, within a leaf by source position.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_evalindex.argtypes import SAMPLERS
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record

if TYPE_CHECKING:
    from pytest_evalindex.data.adapters import Adapter
    from pytest_evalindex.spec.index import IndexSpec, Leaf

RowReader = Callable[["Leaf"], Iterable[dict[str, Any]]]


@dataclass
class SampleResult:
    records: list[Record]
    header: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- allocation


def _largest_remainder(quotas: Sequence[Fraction], total: int) -> list[int]:
    """Integers summing to ``total`` (= sum of quotas): floors, then +1 by largest remainder."""
    floors = [q.numerator // q.denominator for q in quotas]
    extra = total - sum(floors)
    # sort key: larger remainder first, then earlier leaf
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - floors[i]), i))
    for i in order[:extra]:
        floors[i] += 1
    return floors


def allocate(
    sizes: Sequence[int],
    weights: Sequence[float],
    count: int,
    sampler: str,
    *,
    names: Sequence[str] | None = None,
) -> tuple[list[int], list[str]]:
    """How many records each leaf gives, and warnings about leaves that ran short.

    ``weights`` are used by the ``weighted`` sampler only. ``names`` label the warnings
    (default ``leaf 0``, ``leaf 1``...).
    """
    if sampler not in SAMPLERS:
        raise EvalIndexError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if len(sizes) != len(weights):
        raise ValueError("sizes and weights must have one entry per leaf")
    if count < 0:
        raise EvalIndexError(f"count must be 0 or more, got {count}")
    labels = list(names) if names is not None else [f"leaf {i}" for i in range(len(sizes))]
    if sampler == "weighted":
        if not all(math.isfinite(w) and w > 0 for w in weights):
            raise EvalIndexError(f"weights must be positive and finite, got {list(weights)}")
        # weights are floats: 0.4 is 0.4000000000000000222..., which would make a share of
        # exactly 12 look like 12.000000000000001 and cap the leaf; use the decimal meant
        basis = [Fraction(w).limit_denominator(10**9) for w in weights]
    elif sampler == "stratified":
        basis = [Fraction(s) for s in sizes]
    else:
        basis = [Fraction(1)] * len(sizes)

    available = sum(sizes)
    total = min(count, available)
    warnings: list[str] = []
    if available < count:
        warnings.append(
            f"only {available} records in all datasets, fewer than the {count} asked for; "
            "taking all of them"
        )

    # water-filling: a leaf whose exact share exceeds its size is capped at its size and
    # the others share what is left in proportion to their basis, until nothing is capped
    capped: set[int] = set()
    remaining = Fraction(total)
    while True:
        active = [i for i in range(len(sizes)) if i not in capped and basis[i] > 0]
        active_basis = sum((basis[i] for i in active), Fraction(0))
        over = [i for i in active if remaining * basis[i] / active_basis > sizes[i]]
        if not over:
            break
        for i in over:
            capped.add(i)
            remaining -= sizes[i]
    quotas = [Fraction(0)] * len(sizes)
    for i in capped:
        quotas[i] = Fraction(sizes[i])
    if remaining:
        active_basis = sum((basis[i] for i in range(len(sizes)) if i not in capped), Fraction(0))
        for i in range(len(sizes)):
            if i not in capped:
                quotas[i] = remaining * basis[i] / active_basis
    allocation = _largest_remainder(quotas, total)

    if available >= count:
        basis_total = sum(basis, Fraction(0))
        for i in sorted(capped):
            share = count * basis[i] / basis_total
            if share <= sizes[i]:
                continue  # capped only by what others handed on, not short of its own share
            warnings.append(
                f"{labels[i]}: only {sizes[i]} records for a share of {float(share):.1f}; "
                f"the other {float(share - sizes[i]):.1f} go to the other datasets"
            )
    return allocation, warnings


# --------------------------------------------------------------------------- selection


def rank(seed: int, dataset: str, record_id: str) -> str:
    """The selection rank of a record: smaller is selected first."""
    return hashlib.sha256(f"{seed}:{dataset}:{record_id}".encode()).hexdigest()


class _LeafScan:
    """One leaf's share of a pass: counts its rows, keeps the ``keep`` best-ranked ones."""

    def __init__(self, leaf: Leaf, adapter: Adapter, seed: int, keep: int) -> None:
        self.leaf = leaf
        self.adapter = adapter
        self.keep = keep
        self.prefix = f"{seed}:{leaf.name}:"
        subset_list = leaf.args.get("subset_list")
        if isinstance(subset_list, str):  # `subset_list: billing` means one subset
            subset_list = [subset_list]
        self.subsets = None if subset_list is None else {str(s) for s in subset_list}
        self.size = 0
        # max-heap by rank (negated ints) of (−rank, position, digest, row)
        self.heap: list[tuple[int, int, bytes, dict[str, Any]]] = []
        self.position_of: dict[bytes, int] = {}
        self.threshold = b""  # digest of the worst kept row once the heap is full

    def feed(self, position: int, row: dict[str, Any]) -> None:
        if self.subsets is not None and self.adapter.subset(row) not in self.subsets:
            return
        self.size += 1
        if self.keep == 0:
            return
        record_id = self.adapter.record_id(row, position)
        digest = hashlib.sha256((self.prefix + record_id).encode()).digest()
        full = len(self.heap) >= self.keep
        if full and digest > self.threshold:
            return
        first = self.position_of.get(digest)
        if first is not None:
            raise EvalIndexError(
                f"dataset {self.leaf.name!r}: rows {first} and {position} (counting from 0) "
                f"have the same record id {record_id!r}; ids must be unique",
                file=self.leaf.source,
            )
        entry = (-int.from_bytes(digest, "big"), position, digest, row)
        if full:
            dropped = heapq.heapreplace(self.heap, entry)
            del self.position_of[dropped[2]]
        else:
            heapq.heappush(self.heap, entry)
        self.position_of[digest] = position
        if len(self.heap) >= self.keep:
            self.threshold = self.heap[0][2]

    def selected(self, n: int) -> list[tuple[int, dict[str, Any]]]:
        """The ``n`` best-ranked rows as (position, row), in source order."""
        best = heapq.nlargest(n, self.heap)  # largest −rank = smallest rank
        return sorted(((position, row) for _, position, _, row in best), key=lambda e: e[0])


def _default_reader(leaf: Leaf) -> Iterable[dict[str, Any]]:
    from pytest_evalindex.data.sources import iter_rows

    assert leaf.source is not None
    return iter_rows(leaf.source, json_key=leaf.args.get("json_key"))


def _adapter_for(leaf: Leaf) -> Adapter:
    from pytest_evalindex.data.adapters import get_adapter, known_adapters

    adapter = get_adapter(leaf.adapter)
    field_path = f"{leaf.field_path}." if leaf.field_path else ""
    if adapter is None:
        raise EvalIndexError(
            f"unknown adapter {leaf.adapter!r}; known: {', '.join(known_adapters())}",
            file=leaf.spec_file,
            field=f"{field_path}adapter",
        )
    adapter.check(leaf)
    if leaf.source is None:
        raise EvalIndexError(
            f"dataset {leaf.name!r} has no source; say where its rows are",
            file=leaf.spec_file,
            field=f"{field_path}source",
        )
    return adapter.for_leaf(leaf)


def sample_leaves(
    leaves: Sequence[Leaf],
    *,
    count: int,
    seed: int,
    sampler: str,
    read_rows: RowReader | None = None,
) -> tuple[list[Record], list[str]]:
    """Allocate ``count`` over ``leaves`` and select each leaf's records.

    ``read_rows(leaf)`` yields the leaf's raw rows (default: its source through
    :func:`pytest_evalindex.data.sources.iter_rows`). Leaves with the same source and
    ``args.json_key`` share one pass when the default reader is used.
    """
    if sampler not in SAMPLERS:
        raise EvalIndexError(f"unknown sampler {sampler!r}; expected one of {', '.join(SAMPLERS)}")
    if count < 0:
        raise EvalIndexError(f"count must be 0 or more, got {count}")
    scans = [_LeafScan(leaf, _adapter_for(leaf), seed, count) for leaf in leaves]

    if read_rows is None:
        # group leaves by what they read so each source is read once
        passes: dict[tuple[str, Any], list[_LeafScan]] = {}
        for scan in scans:
            key = (str(scan.leaf.source), scan.leaf.args.get("json_key"))
            passes.setdefault(key, []).append(scan)
        for group in passes.values():
            _run_pass(_default_reader(group[0].leaf), group)
    else:
        for scan in scans:
            _run_pass(read_rows(scan.leaf), [scan])

    allocation, warnings = allocate(
        [scan.size for scan in scans],
        [leaf.weight for leaf in leaves],
        count,
        sampler,
        names=[f"dataset {leaf.name!r}" for leaf in leaves],
    )
    records: list[Record] = []
    for scan, n in zip(scans, allocation, strict=True):
        for position, row in scan.selected(n):
            try:
                records.append(scan.adapter.to_record(row, position, scan.leaf))
            except EvalIndexError as exc:
                raise _at_line(exc, row, position) from None
    return records, warnings


def _at_line(exc: EvalIndexError, row: Any, position: int) -> EvalIndexError:
    """An adapter's complaint about "row N" of a text file, told as the file's line."""
    from pytest_evalindex.data.sources import row_line

    line = row_line(row)
    if line is None or exc.line is not None:
        return exc
    message = exc.message.replace(f"row {position} (counting from 0)", "the row")
    return EvalIndexError(message, file=exc.file, line=line, field=exc.field)


def _run_pass(rows: Iterable[dict[str, Any]], scans: Sequence[_LeafScan]) -> None:
    position, row = 0, None
    try:
        if len(scans) == 1:
            feed = scans[0].feed
            for position, row in enumerate(rows):
                feed(position, row)
            return
        for position, row in enumerate(rows):
            for scan in scans:
                scan.feed(position, row)
    except EvalIndexError as exc:
        raise _at_line(exc, row, position) from None


# --------------------------------------------------------------------------- the index


def display_source(leaf: Leaf) -> str:
    """The source as the header shows it: local paths relative to the spec's folder.

    That keeps machine-specific absolute paths out of the test set, so the same spec
    sampled in two checkouts gives byte-identical files.
    """
    source = leaf.source or ""
    if "://" in source or leaf.spec_file is None or not Path(source).is_absolute():
        return source
    try:
        # normpath like sources.resolve_source, so symlinked folders are spelt the same way
        spec_dir = os.path.normpath(Path(leaf.spec_file).absolute().parent)
        relative = os.path.relpath(source, spec_dir)
    except ValueError:  # another drive on Windows
        return source
    return Path(relative).as_posix()


def sample_index(
    spec: IndexSpec,
    *,
    count: int | None = None,
    seed: int | None = None,
    sampler: str | None = None,
) -> SampleResult:
    """Sample the frozen test set of ``spec``; arguments override the spec's own values."""
    import pytest_evalindex
    from pytest_evalindex.data.sources import source_sha256
    from pytest_evalindex.spec.index import flatten

    count = spec.count if count is None else count
    seed = spec.seed if seed is None else seed
    sampler = spec.sampler if sampler is None else sampler
    leaves = flatten(spec)
    records, warnings = sample_leaves(leaves, count=count, seed=seed, sampler=sampler)
    sources: dict[str, dict[str, str]] = {}
    digests: dict[str, str] = {}
    for leaf in leaves:
        assert leaf.source is not None  # checked while sampling
        if leaf.source not in digests:
            digests[leaf.source] = source_sha256(leaf.source)
        sources[leaf.name] = {"source": display_source(leaf), "sha256": digests[leaf.source]}
    header: dict[str, Any] = {
        "spec": spec.name,
        "seed": seed,
        "sampler": sampler,
        "count": count,
        "selected": len(records),
        "version": pytest_evalindex.__version__,
        "sources": sources,
    }
    return SampleResult(records=records, header=header, warnings=warnings)
