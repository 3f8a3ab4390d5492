"""Adapters that turn raw rows into records: the generic ones and built-in benchmarks.

Each built-in adapter lives in its own module ``pytest_evalindex.data.adapters.<name>`` and
exposes ``ADAPTER``, an object with:

    name: str
    default_scorer: ScorerRef | None
    check(leaf: Leaf) -> None            raise EvalIndexError if the leaf cannot be read/scored
    record_id(row: dict, position: int) -> str   the id without the "<dataset>/" prefix
    subset(row: dict) -> str
    to_record(row: dict, position: int, leaf: Leaf) -> Record

    get_adapter(name: str) -> Adapter | None      lazy import by module name
    for_leaf(leaf: Leaf) -> Adapter
        The adapter configured for one leaf. ``record_id`` and ``subset`` take no leaf, so an
        adapter whose field names come from the spec (``general_qa``, ``general_mcq``) returns
        a copy bound to ``leaf.fields``; a benchmark with a fixed layout returns itself.
        ``BaseAdapter`` provides that default.
    default_source: str | None
        Where the benchmark's rows are when the spec gives no ``source`` (e.g. a pkg://
        URI); None: the spec must say. Read by ``spec.flatten``; ``BaseAdapter`` has None.
    known_adapters() -> list[str]
        Names of the modules in this package that define ``ADAPTER``, and of the adapters
        installed distributions offer through the ``pytest_evalindex.adapters`` entry points.
    make_record(leaf, record_id, *, user, ...) -> Record
        Builds a record with everything a leaf decides (id prefix, weight, tags, scorer...).

``position`` is the row's 0-based position in its source, counted before any subset filter,
so an id built from it does not move when ``args.subset_list`` changes.

A new built-in benchmark is one module here that subclasses ``BaseAdapter`` and sets
``ADAPTER = MyBenchmark()``; nothing else has to be registered. A benchmark of another
distribution is an entry point in the group ``pytest_evalindex.adapters`` that names such an
object (see ``pytest_evalindex.entry_points``); a built-in name wins over it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Message, Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


@runtime_checkable
class Adapter(Protocol):
    """What the sampler needs from a dataset reader (see the module docstring)."""

    # read-only, so an adapter may narrow them (e.g. a default scorer that is never None)
    @property
    def name(self) -> str: ...

    @property
    def default_scorer(self) -> ScorerRef | None: ...

    def check(self, leaf: Leaf) -> None: ...

    def for_leaf(self, leaf: Leaf) -> Adapter: ...

    def record_id(self, row: dict[str, Any], position: int) -> str: ...

    def subset(self, row: dict[str, Any]) -> str: ...

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record: ...


class BaseAdapter:
    """Defaults for a benchmark with a fixed row layout; subclasses override what differs."""

    name: str = ""
    default_scorer: ScorerRef | None = None
    default_source: str | None = None

    def check(self, leaf: Leaf) -> None:
        """Nothing to check by default."""

    def for_leaf(self, leaf: Leaf) -> Adapter:
        return self

    def record_id(self, row: dict[str, Any], position: int) -> str:
        return str(position)

    def subset(self, row: dict[str, Any]) -> str:
        return "default"

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        raise NotImplementedError


def get_adapter(name: str) -> Adapter | None:
    """The adapter called ``name``, or None if there is none.

    A built-in one is the ``ADAPTER`` of module ``pytest_evalindex.data.adapters.<name>``;
    only for another name are the installed ``pytest_evalindex.adapters`` entry points
    looked at (see ``pytest_evalindex.entry_points``). Only the missing module itself gives
    None: an import error raised while running an existing module is a bug in that module
    and propagates; a broken entry point is an EvalIndexError naming its distribution.
    """
    if name in _builtin_names():
        return _builtin_adapter(name)
    from pytest_evalindex import entry_points

    adapter: Adapter | None = entry_points.load(
        entry_points.ADAPTERS,
        name,
        builtins=_builtin_names(),
        accept=lambda value: isinstance(value, Adapter),
        expected="an adapter (an object with name, default_scorer, check, for_leaf, "
        "record_id, subset and to_record, like a BaseAdapter)",
    )
    return adapter


def _builtin_names() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def _builtin_adapter(name: str) -> Adapter | None:
    if not name.isidentifier() or name.startswith("_"):
        return None
    module_name = f"{__name__}.{name}"
    if importlib.util.find_spec(module_name) is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    adapter: Adapter | None = getattr(module, "ADAPTER", None)
    return adapter


def known_adapters() -> list[str]:
    """Sorted names of the built-in adapters and of those installed distributions offer."""
    from pytest_evalindex import entry_points

    names = [name for name in _builtin_names() if _builtin_adapter(name) is not None]
    return sorted(names + entry_points.installed_names(entry_points.ADAPTERS, _builtin_names()))


def make_record(
    leaf: Leaf,
    record_id: str,
    *,
    user: str | Sequence[Message],
    adapter: Adapter,
    subset: str = "default",
    system: str | None = None,
    target: str | list[str] | None = None,
    choices: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Record:
    """A record of ``leaf``: the leaf decides id prefix, tags, weight and scorer.

    ``user`` is the user message text, or a whole conversation (then ``system`` is put
    first unless the conversation already starts with a system message).
    """
    messages: list[Message] = []
    if isinstance(user, str):
        if system:
            messages.append(Message(role="system", content=system))
        messages.append(Message(role="user", content=user))
    else:
        if system and (not user or user[0].role != "system"):
            messages.append(Message(role="system", content=system))
        messages.extend(user)
    scorer = leaf.scorer or adapter.default_scorer
    if scorer is None:
        raise EvalIndexError(
            f"adapter {adapter.name!r} has no default scorer; say which scorer grades "
            f"dataset {leaf.name!r}",
            file=leaf.spec_file,
            field=f"{leaf.field_path}.scorer" if leaf.field_path else "scorer",
        )
    return Record(
        id=f"{leaf.name}/{record_id}",
        dataset=leaf.name,
        subset=subset,
        task_type=leaf.task_type,
        tags=list(leaf.tags),
        categories=list(leaf.categories),
        weight=leaf.weight,
        input=messages,
        target=target,
        choices=choices,
        scorer=scorer,
        metadata=metadata or {},
    )
