"""Scorers and adapters that other installed distributions provide, through entry points.

A distribution declares them in its packaging metadata, e.g. in ``pyproject.toml``::

    [project.entry-points."pytest_evalindex.scorers"]
    my_scorer = "my_package.scoring:my_scorer"

    [project.entry-points."pytest_evalindex.adapters"]
    my_bench = "my_package.bench:ADAPTER"

A spec then names ``my_scorer`` or ``my_bench`` like a built-in. The entry points are looked
at only for a name that is not built in, and only the one named is imported, so installed
extensions cost nothing to runs that do not use them.

A built-in name always wins: an entry point that reuses one is never loaded, and a
``ShadowedEntryPointWarning`` says so whenever the entry points of its group are looked at.
Two distributions offering the same name, or an entry point that fails to import, are bad
input (``EvalIndexError``) naming the distributions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pytest_evalindex.errors import EvalIndexError

SCORERS = "pytest_evalindex.scorers"
ADAPTERS = "pytest_evalindex.adapters"

_KIND = {SCORERS: "scorer", ADAPTERS: "adapter"}


class ShadowedEntryPointWarning(UserWarning):
    """An installed distribution offers a scorer or adapter under a built-in name."""


def distribution_of(entry: EntryPoint) -> str:
    """The name of the distribution that declares ``entry``, for messages."""
    dist = getattr(entry, "dist", None)
    return str(dist.name) if dist is not None else "an unknown distribution"


def installed(group: str, builtins: Collection[str] = ()) -> dict[str, list[EntryPoint]]:
    """The entry points of ``group`` by name, without importing any; built-in names left out.

    Each built-in name that an entry point reuses gets a ``ShadowedEntryPointWarning``.
    """
    found: dict[str, list[EntryPoint]] = {}
    for entry in entry_points(group=group):
        if entry.name in builtins:
            warnings.warn(
                f"{_KIND[group]} {entry.name!r} of distribution {distribution_of(entry)!r} is "
                f"ignored: the built-in {_KIND[group]} of that name is used",
                ShadowedEntryPointWarning,
                stacklevel=2,
            )
            continue
        found.setdefault(entry.name, []).append(entry)
    return found


def installed_names(group: str, builtins: Collection[str] = ()) -> list[str]:
    """Sorted names that installed distributions offer in ``group``, built-ins left out."""
    with warnings.catch_warnings():  # listing names for a message is no place to warn
        warnings.simplefilter("ignore", ShadowedEntryPointWarning)
        return sorted(installed(group, builtins))


def load(
    group: str,
    name: str,
    *,
    builtins: Collection[str],
    accept: Callable[[Any], bool],
    expected: str,
) -> Any | None:
    """The object the entry point ``name`` of ``group`` points at, or None if none is installed.

    Raises EvalIndexError, naming the distribution, when two distributions offer ``name``,
    its import fails, or ``accept`` refuses what it gives (``expected`` says what it must be).
    """
    entries = installed(group, builtins).get(name)
    if not entries:
        return None
    kind = _KIND[group]
    if len(entries) > 1:
        who = " and ".join(repr(d) for d in sorted(distribution_of(e) for e in entries))
        raise EvalIndexError(
            f"{kind} {name!r} is offered by more than one installed distribution ({who}); "
            "uninstall one of them"
        )
    entry = entries[0]
    where = f"{kind} {name!r} of distribution {distribution_of(entry)!r}"
    try:
        value = entry.load()
    except Exception as exc:  # whatever the extension's import raises is its bad packaging
        raise EvalIndexError(
            f"{where} cannot be loaded from {entry.value!r}: {type(exc).__name__}: {exc}"
        ) from exc
    if not accept(value):
        raise EvalIndexError(
            f"{where} points at {entry.value!r}, a {type(value).__name__}, not {expected}"
        )
    return value
