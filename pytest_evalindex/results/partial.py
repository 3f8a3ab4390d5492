"""Whether a run covered the whole test set, and what a run of part of it may not do.

A run of part of the test set (``-k``, ``-m``, ``--lf``, node ids, ``-x`` stopping early, a
shard, an interruption, ...) has an index over only the records it ran. Its results
document says so in ``run.partial`` (``{"ran", "of", "why"}``, ``null`` for a whole run),
and it can never pass a gate, become a saved baseline or replace ``.evalindex/last.json``.

Pure functions; :func:`selection_causes` reads the run's options from duck-typed pytest
objects without importing pytest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_evalindex.results.schema import PartialRun, Results

# the results files of a run under the results root: the last whole run, and the last
# partial one (which never overwrites the whole run's file)
WHOLE_RESULTS = "last.json"
PARTIAL_RESULTS = "last.partial.json"

# xdist ends the controller's loop with this exception for -x and a worker's stop as well
# as for a worker's Ctrl-C; only the last is an interruption
_XDIST_KEYBOARD_INTERRUPT = "received keyboard-interrupt"


def partial_run(*, ran: int, of: int, causes: Sequence[str]) -> PartialRun | None:
    """``run.partial``: None when the run has a sample for every record of the test set,
    else how many it ran, of how many, and why (the causes joined, "other" if none is
    known: a plugin's deselection, a crashed worker)."""
    if ran >= of:
        return None
    return {"ran": ran, "of": of, "why": ", ".join(dict.fromkeys(causes)) or "other"}


def partial_of(results: Results) -> PartialRun | None:
    """The ``run.partial`` of a results document (None for whole runs and older files)."""
    partial = (results.get("run") or {}).get("partial")
    return partial if isinstance(partial, dict) else None


def selection_causes(
    config: Any,
    session: Any,
    *,
    index_paths: Iterable[Path],
    shard: bool,
    interrupted: bool,
    stopped: bool = False,
) -> list[str]:
    """The options and events of this pytest run that leave records out, in a fixed order.

    ``config`` and ``session`` are pytest's; an option only counts when it is set (``-k``
    that matches everything is harmless: the counts then say the run is whole)."""
    option = config.option
    causes = []
    if getattr(option, "keyword", ""):
        causes.append("-k")
    if getattr(option, "markexpr", ""):
        causes.append("-m")
    if getattr(option, "lf", False):
        causes.append("--lf")
    if getattr(option, "stepwise", False):
        causes.append("--sw")
    if names_node_ids(config.args, config.invocation_params.dir, index_paths):
        causes.append("node ids")
    if getattr(option, "deselect", None):
        causes.append("--deselect")
    maxfail = int(getattr(option, "maxfail", 0) or 0)
    if maxfail and getattr(session, "testsfailed", 0) >= maxfail:
        causes.append("-x" if maxfail == 1 else f"--maxfail={maxfail}")
    if shard:
        causes.append("shard")
    if interrupted:
        causes.append("interrupted")
    elif stopped or getattr(session, "shouldstop", False):
        # ``stopped``: this plugin stopped the run, perhaps in an xdist worker, whose
        # shouldstop the controller's session never gets
        causes.append("stopped")
    return causes


def names_node_ids(args: Iterable[str], invocation: Path, index_paths: Iterable[Path]) -> bool:
    """True when an argument names part of an index file (``spec.yaml::gsm8k`` or one item)."""
    indexes = {Path(p).resolve() for p in index_paths}
    for arg in args:
        path, sep, _rest = str(arg).partition("::")
        if sep and (Path(invocation) / path).resolve() in indexes:
            return True
    return False


def is_keyboard_interrupt(
    exc: BaseException, stopped_type: type[BaseException] | None = None
) -> bool:
    """Ctrl-C or SIGTERM, as opposed to xdist ending its loop for ``-x`` or a stopped worker,
    or pytest ending its loop because a plugin set ``session.shouldstop`` (both raise a
    KeyboardInterrupt subclass for those too: pytest's is ``stopped_type``)."""
    if type(exc).__module__.split(".")[0] == "xdist":
        return _XDIST_KEYBOARD_INTERRUPT in str(exc)
    if stopped_type is not None and isinstance(exc, stopped_type):
        return False
    return isinstance(exc, KeyboardInterrupt)


def describe(partial: PartialRun) -> str:
    """``2 of 30 records, --lf``."""
    return f"{partial['ran']} of {partial['of']} records, {partial['why']}"


def header_line(partial: PartialRun) -> str:
    return f"partial: {partial['ran']} of {partial['of']} records ({partial['why']})"


def gate_failure(partial: PartialRun) -> str:
    """The failure a partial run adds when gates or compare-fail rules are configured."""
    return f"partial run ({describe(partial)}): gates need the whole index"


def save_refusal(partial: PartialRun) -> str:
    return (
        f"not saved: a partial run ({describe(partial)}) is no baseline; "
        "run the whole index to save one (--index-json keeps this run's results)"
    )


def comparison_note(partial: PartialRun) -> str:
    return (
        f"partial run: the comparison covers only the {partial['ran']} of {partial['of']} "
        "records this run has"
    )


def interrupted_line(kept: int | None, cache_dir: str) -> str:
    """What a rerun will find: ``kept`` answers of this run's records in the cache (None:
    the cache is off)."""
    if kept is None:
        return "interrupted: the response cache is off (--index-no-cache); a rerun asks again"
    if kept == 0:
        return f"interrupted: no answer is kept in {cache_dir}; a rerun starts over"
    noun = "answer is" if kept == 1 else "answers are"
    return f"interrupted: {kept} {noun} kept in {cache_dir}; run the same command again to resume"


def merged_partial(
    partials: Sequence[PartialRun | None], *, ran: int, of: int | None
) -> PartialRun | None:
    """``run.partial`` of shards merged into one document: whole when every record is
    there; else the causes the shards name, less "shard" (unless a shard is missing)."""
    if of is None or ran >= of:
        return None
    causes: list[str] = []
    for partial in partials:
        if partial:
            causes += [c.strip() for c in str(partial.get("why", "")).split(",") if c.strip()]
    kept = [c for c in dict.fromkeys(causes) if c != "shard"]
    return {"ran": ran, "of": of, "why": ", ".join(kept) or "shard"}


def whole_size(partials: Sequence[PartialRun | None]) -> int | None:
    """The whole test set's size, from the ``of`` the shards' documents record."""
    sizes = {int(p["of"]) for p in partials if p and isinstance(p.get("of"), int)}
    return max(sizes) if sizes else None


def last_results_name(partial: PartialRun | None) -> tuple[str, str | None]:
    """The file under the results root this run writes, and the stale one it removes: a
    whole run writes ``last.json`` and removes the last partial run's file; a partial run
    writes ``last.partial.json`` and leaves the last whole run's ``last.json`` alone."""
    if partial is None:
        return WHOLE_RESULTS, PARTIAL_RESULTS
    return PARTIAL_RESULTS, None


def compare_on_shared(results: Results, base: Results | None) -> bool:
    """Whether a comparison should pair only the samples this run has: a partial run of
    the same test set as the base run (a different test set is still refused)."""
    if base is None or partial_of(results) is None:
        return False
    sha = (results.get("run") or {}).get("testset_sha256")
    return sha is not None and sha == (base.get("run") or {}).get("testset_sha256")
