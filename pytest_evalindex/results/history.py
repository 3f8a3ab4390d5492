"""The history of saved runs: the listing ``evalindex runs`` prints and the leaderboard.

Saved runs live under the results root as ``runs/<index>/NNNN_<label>.json`` (see
:mod:`pytest_evalindex.results.baselines`). :func:`list_runs` reads them into
:class:`SavedRun` summaries, newest first; runs that sampled the same test set (the same
``run.testset_sha256``) share a comparability mark. :func:`leaderboard` takes the latest run
of each model of one index and asks, with the paired comparison of
:func:`pytest_evalindex.results.compare.compare_results` on the samples both runs share,
whether each is significantly below the best one.

Nothing here invents a value: a run without a git commit or a cost shows ``-``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.baselines import read_results, saved_runs
from pytest_evalindex.results.compare import ComparisonError, compare_results
from pytest_evalindex.results.schema import Results
from pytest_evalindex.table_format import format_table

NO_VALUE = "-"


@dataclass(frozen=True)
class SavedRun:
    """What the listing and the history page show of one saved run."""

    # the index's folder under runs/ (its name made safe as a path), as INDEX is typed
    index: str
    number: int
    label: str
    path: Path
    saved_at: str | None
    model: str | None
    commit: str | None
    dirty: bool | None
    testset_sha256: str | None
    score: float | None
    ci95: tuple[float, float] | None
    count: int | None
    errors: int | None
    # task type -> its weighted score, in the order of the run's table
    task_types: dict[str, float | None] = field(default_factory=dict)
    cost: float | None = None
    # a letter shared by the listed runs of the same test set; None when no other run has it
    comparable: str | None = None

    @property
    def key(self) -> str:
        """A stable name for the run within its root: ``<index>/<NNNN>``."""
        return f"{self.index}/{self.number:04d}"


@dataclass(frozen=True)
class RunListing:
    """Saved runs, newest first, and why any saved file was left out."""

    runs: list[SavedRun]
    skipped: list[str] = field(default_factory=list)


def list_runs(root: Path, index: str | None = None) -> RunListing:
    """The saved runs under ``root`` (of ``index`` only, when given), newest first.

    Raises :class:`EvalIndexError` when there is nothing to list: no results root, no saved
    run, or no saved run of ``index`` (the message names the indexes that have some). A file
    that is not a results document is left out and named in ``skipped``.
    """
    root = Path(root)
    runs_root = root / "runs"
    hint = "save one with: pytest --index SPEC --index-save [NAME]"
    if not runs_root.is_dir():
        raise EvalIndexError(f"no saved runs: {runs_root} does not exist; {hint}")
    indexes = sorted(p.name for p in runs_root.iterdir() if p.is_dir() and saved_runs(root, p.name))
    if index is not None:
        if index not in indexes:
            known = f" (indexes with saved runs: {', '.join(indexes)})" if indexes else ""
            raise EvalIndexError(f"no saved runs of index {index!r} under {runs_root}{known}")
        indexes = [index]
    if not indexes:
        raise EvalIndexError(f"no saved runs under {runs_root}; {hint}")
    found: list[tuple[str, int, int, SavedRun]] = []
    skipped: list[str] = []
    for name in indexes:
        for number, path in saved_runs(root, name):
            try:
                document = read_results(path)
                written_ns = path.stat().st_mtime_ns
            except EvalIndexError as exc:
                skipped.append(str(exc))
                continue
            except OSError as exc:
                skipped.append(f"{path}: {exc.strerror or exc}")
                continue
            run = summarise(document, path=path, index=name, number=number)
            found.append((run.saved_at or "", written_ns, number, run))
    # newest first: by the time saved (whole seconds), then when the file was written (runs
    # of two indexes saved in the same second), then the number, which only grows
    found.sort(key=lambda entry: entry[:3], reverse=True)
    return RunListing(mark_comparable([entry[3] for entry in found]), skipped)


def summarise(document: Results, *, path: Path, index: str, number: int) -> SavedRun:
    """The listing's view of one saved results document."""
    run: Mapping[str, Any] = document.get("run") or {}
    saved: Mapping[str, Any] = run.get("saved") or {}
    git = _git_of(run)
    summary: Mapping[str, Any] = document.get("index") or {}
    interval = summary.get("ci95")
    task_types = {
        str(row.get("name")): _number(row.get("weighted"))
        for row in (document.get("tables") or {}).get("task_type") or []
        if isinstance(row, Mapping)
    }
    cost: Mapping[str, Any] = (document.get("usage") or {}).get("cost") or {}
    return SavedRun(
        index=index,
        number=number,
        label=str(saved.get("name") or path.stem.split("_", 1)[-1]),
        path=path,
        saved_at=_text(saved.get("saved_at")) or _text(run.get("started_at")),
        model=_text(run.get("model")),
        commit=_text(git.get("commit")),
        dirty=git["dirty"] if isinstance(git.get("dirty"), bool) else None,
        testset_sha256=_text(run.get("testset_sha256")),
        score=_number(summary.get("score")),
        ci95=(float(interval[0]), float(interval[1]))
        if isinstance(interval, list) and len(interval) == 2 and None not in interval
        else None,
        count=summary.get("count") if isinstance(summary.get("count"), int) else None,
        errors=summary.get("errors") if isinstance(summary.get("errors"), int) else None,
        task_types=task_types,
        cost=_number(cost.get("total")),
    )


def _git_of(run: Mapping[str, Any]) -> Mapping[str, Any]:
    """The git facts of a run: ``run.saved.git`` (written by --index-save), else a
    ``run.git`` a newer writer may add; empty when neither is there."""
    saved = run.get("saved")
    for candidate in (saved.get("git") if isinstance(saved, Mapping) else None, run.get("git")):
        if isinstance(candidate, Mapping):
            return candidate
    return {}


def mark_comparable(runs: Sequence[SavedRun]) -> list[SavedRun]:
    """``runs`` with a letter on every run whose test set another listed run also ran."""
    counts: dict[str, int] = {}
    for run in runs:
        if run.testset_sha256:
            counts[run.testset_sha256] = counts.get(run.testset_sha256, 0) + 1
    letters: dict[str, str] = {}
    marked = []
    for run in runs:
        sha = run.testset_sha256
        mark = None
        if sha and counts[sha] > 1:
            if sha not in letters:
                letters[sha] = _letter(len(letters))
            mark = letters[sha]
        marked.append(replace(run, comparable=mark))
    return marked


def _letter(position: int) -> str:
    """A, B, ..., Z, AA, AB, ...: enough marks for any number of test sets."""
    letters = string.ascii_uppercase
    name = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, len(letters))
        name = letters[rest] + name
    return name


# --------------------------------------------------------------------------- the listing


def format_runs(listing: RunListing) -> list[str]:
    """The lines ``evalindex runs`` prints: one table row a run, then what the marks mean."""
    runs = listing.runs
    task_types = list(dict.fromkeys(name for run in runs for name in run.task_types))
    header = [
        "run", "saved (UTC)", "model", "commit", "test set", "cmp", "index", "95% CI",
        *task_types, "cost",
    ]  # fmt: skip
    rows = [
        [
            f"{run.key}_{run.label}",
            format_time(run.saved_at),
            run.model or NO_VALUE,
            format_commit(run),
            run.testset_sha256[:12] if run.testset_sha256 else NO_VALUE,
            run.comparable or NO_VALUE,
            _fmt(run.score),
            format_interval(run.ci95),
            *(_fmt(run.task_types.get(name)) for name in task_types),
            format_cost(run.cost),
        ]
        for run in runs
    ]
    lines = format_table(header, rows, left=6)
    if any(run.comparable for run in runs):
        lines += [
            "",
            "cmp: runs with the same letter ran the same test set and can be compared "
            "sample by sample (evalindex compare BASE.json NEW.json).",
        ]
    return lines


def format_time(value: str | None) -> str:
    """``2026-01-02T03:04:05+00:00`` as ``2026-01-02 03:04``; other text as it is."""
    if not value:
        return NO_VALUE
    if len(value) >= 16 and value[10] == "T":
        return f"{value[:10]} {value[11:16]}"
    return value


def format_commit(run: SavedRun) -> str:
    if not run.commit:
        return NO_VALUE
    return run.commit[:10] + ("-dirty" if run.dirty else "")


def format_interval(interval: tuple[float, float] | None) -> str:
    return NO_VALUE if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]"


def format_cost(cost: float | None) -> str:
    return NO_VALUE if cost is None else f"${cost:.4f}"


def format_p(p_value: float | None) -> str:
    if p_value is None:
        return NO_VALUE
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _fmt(value: float | None) -> str:
    return NO_VALUE if value is None else f"{value:.4f}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class Standing:
    """One model's latest run on the leaderboard, compared with the best model's."""

    run: SavedRun
    rank: int
    best: bool
    # the paired comparison against the best run, on the samples both scored
    paired_count: int | None = None
    delta: float | None = None
    ci95: tuple[float, float] | None = None
    p_value: float | None = None
    # "best", "below" (significantly), "not below" (not significantly), or "no pairs"
    verdict: str = "best"
    note: str | None = None


def latest_per_model(runs: Sequence[SavedRun]) -> list[SavedRun]:
    """The latest run of each model among ``runs`` (of one index), in listing order."""
    latest: dict[str | None, SavedRun] = {}
    for run in runs:
        current = latest.get(run.model)
        if current is None or (run.saved_at or "", run.number) > (
            current.saved_at or "",
            current.number,
        ):
            latest[run.model] = run
    return list(latest.values())


def leaderboard(
    runs: Sequence[SavedRun],
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_boot: int = 2000,
    documents: Mapping[Path, Results] | None = None,
) -> list[Standing]:
    """The latest run of each model, best index score first, each compared with the best.

    ``runs`` are runs of one index. A model is *significantly below* the best when the
    paired comparison on the samples both runs scored gives a negative change with a
    p-value below ``alpha``. Two runs that share no scored sample get the verdict
    ``"no pairs"``. ``documents`` may hold results already read (by path).
    """
    latest = latest_per_model(runs)
    if not latest:
        return []
    ordered = sorted(
        latest,
        key=lambda run: (run.score is not None, run.score or 0.0, run.saved_at or "", run.number),
        reverse=True,
    )
    loaded = dict(documents or {})

    def document(run: SavedRun) -> Results:
        if run.path not in loaded:
            loaded[run.path] = read_results(run.path)
        return loaded[run.path]

    best = ordered[0]
    standings = [Standing(run=best, rank=1, best=True)]
    for rank, run in enumerate(ordered[1:], start=2):
        try:
            comparison = compare_results(
                document(best),
                document(run),
                seed=seed,
                n_boot=n_boot,
                alpha=alpha,
                intersection=True,
                base_label=best.key,
                new_label=run.key,
            )
        except ComparisonError as exc:
            standings.append(
                Standing(run=run, rank=rank, best=False, verdict="no pairs", note=str(exc))
            )
            continue
        row = comparison["rows"][0]
        delta, p_value = row["delta"], row["p_value"]
        below = delta is not None and delta < 0 and p_value is not None and p_value < alpha
        interval = row["ci95"]
        standings.append(
            Standing(
                run=run,
                rank=rank,
                best=False,
                paired_count=comparison["paired_count"],
                delta=delta,
                ci95=(interval[0], interval[1]) if interval else None,
                p_value=p_value,
                verdict="below" if below else "not below",
                note="; ".join(comparison["notes"]) or None,
            )
        )
    return standings


VERDICT_TEXT = {
    "best": "best",
    "below": "significantly below the best",
    "not below": "not significantly below the best",
    "no pairs": "no shared scored samples with the best",
}


def format_leaderboard(index: str, standings: Sequence[Standing]) -> list[str]:
    """The leaderboard of one index as terminal lines."""
    rows = [
        [
            str(s.rank),
            s.run.model or NO_VALUE,
            f"{s.run.key}_{s.run.label}",
            VERDICT_TEXT[s.verdict],
            _fmt(s.run.score),
            NO_VALUE if s.delta is None else f"{s.delta:+.4f}",
            format_interval(s.ci95),
            format_p(s.p_value),
            NO_VALUE if s.paired_count is None else str(s.paired_count),
        ]
        for s in standings
    ]
    header = ["#", "model", "latest run", "", "index", "Δ vs best", "95% CI", "p", "paired"]
    title = f"leaderboard of {index} (the latest run of each model):"
    return [title, *format_table(header, rows, left=4)]
