"""The history page: saved runs over time, a leaderboard per index, links to every run.

One self-contained file, built like the case-analysis page (:mod:`pytest_evalindex.report.html`):
the stylesheet and script (``assets/history.css``, ``assets/history.js``) are inlined, the
data is a JSON block escaped so no string can end it, the script builds the page with DOM
calls and ``textContent`` only, and a Content-Security-Policy admits just those two inline
blocks (by hash) and no network. Model names, labels and index names are data, never markup.

The data block holds ``{"title", "alpha", "indexes": [{"name", "runs", "leaderboard"}]}``;
each run carries ``json_href`` (a relative link from the page to the saved results file)
and ``html_href`` (to its case-analysis page, when one sits beside it as ``NNNN_label.html``,
else null). The chart is inline SVG drawn by the script. When drawn, the page sets
``document.documentElement.dataset.ready = "true"``.
"""

from __future__ import annotations

import html
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pytest_evalindex.report.html import _asset, _csp_hash, script_json
from pytest_evalindex.results.history import RunListing, SavedRun, Standing, leaderboard


@dataclass(frozen=True)
class HistoryPage:
    """A rendered history page and the leaderboard of each index it shows."""

    text: str
    leaderboards: dict[str, list[Standing]]


def render_history(
    listing: RunListing,
    *,
    page_dir: str | os.PathLike[str] = ".",
    alpha: float = 0.05,
    seed: int = 0,
    n_boot: int = 2000,
    title: str | None = None,
) -> HistoryPage:
    """The history page of ``listing`` (saved runs, newest first).

    Links to the runs' files are relative to ``page_dir``, the folder the page will be
    written to. ``alpha``, ``seed`` and ``n_boot`` go to the leaderboard's paired
    comparisons.
    """
    by_index: dict[str, list[SavedRun]] = {}
    for run in listing.runs:
        by_index.setdefault(run.index, []).append(run)
    leaderboards = {
        index: leaderboard(runs, alpha=alpha, seed=seed, n_boot=n_boot)
        for index, runs in sorted(by_index.items())
    }
    names = list(leaderboards)
    page_title = title or (
        f"{names[0]} · evalindex history" if len(names) == 1 else "evalindex history"
    )
    payload = {
        "title": page_title,
        "alpha": alpha,
        "indexes": [
            {
                "name": index,
                "runs": [_run_payload(run, Path(page_dir)) for run in by_index[index]],
                "leaderboard": [_standing_payload(s) for s in leaderboards[index]],
            }
            for index in names
        ],
    }
    css, js = _asset("history.css"), _asset("history.js")
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src '{_csp_hash(js)}'",
            f"style-src '{_csp_hash(css)}'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    text = "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{html.escape(page_title)}</title>\n",
            f"<style>{css}</style>\n</head>\n<body>\n",
            "<noscript><p>This page is drawn by JavaScript; enable it to see the history."
            "</p></noscript>\n",
            '<main id="app"></main>\n',
            '<script type="application/json" id="evalindex-history">',
            script_json(payload),
            "</script>\n",
            f"<script>{js}</script>\n</body>\n</html>\n",
        ]
    )
    return HistoryPage(text, leaderboards)


def write_history(
    path: str | os.PathLike[str],
    listing: RunListing,
    *,
    alpha: float = 0.05,
    seed: int = 0,
    n_boot: int = 2000,
    title: str | None = None,
) -> HistoryPage:
    """Render the page for ``listing`` and write it to ``path`` atomically (parent folders
    are created); links are relative to the page's folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    page = render_history(
        listing, page_dir=target.parent, alpha=alpha, seed=seed, n_boot=n_boot, title=title
    )
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as file:
            file.write(page.text)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return page


def relative_href(target: Path, page_dir: Path) -> str:
    """A link from a page in ``page_dir`` to ``target``: relative, ``/``-separated and
    percent-encoded, so it opens from disk and moves with the folder."""
    relative = os.path.relpath(Path(target).resolve(), Path(page_dir).resolve())
    return quote(Path(relative).as_posix())


def _run_payload(run: SavedRun, page_dir: Path) -> dict[str, Any]:
    case_page = run.path.with_suffix(".html")
    return {
        "key": run.key,
        "index": run.index,
        "number": run.number,
        "label": run.label,
        "saved_at": run.saved_at,
        "model": run.model,
        "commit": run.commit,
        "dirty": run.dirty,
        "testset_sha256": run.testset_sha256,
        "comparable": run.comparable,
        "score": run.score,
        "ci95": list(run.ci95) if run.ci95 else None,
        "count": run.count,
        "errors": run.errors,
        "task_types": [[name, value] for name, value in run.task_types.items()],
        "cost": run.cost,
        "file": run.path.name,
        "json_href": relative_href(run.path, page_dir),
        "html_href": relative_href(case_page, page_dir) if case_page.is_file() else None,
    }


def _standing_payload(standing: Standing) -> Mapping[str, Any]:
    return {
        "key": standing.run.key,
        "rank": standing.rank,
        "model": standing.run.model,
        "score": standing.run.score,
        "ci95": list(standing.run.ci95) if standing.run.ci95 else None,
        "saved_at": standing.run.saved_at,
        "verdict": standing.verdict,
        "paired_count": standing.paired_count,
        "delta": standing.delta,
        "delta_ci95": list(standing.ci95) if standing.ci95 else None,
        "p_value": standing.p_value,
        "note": standing.note,
    }


__all__: Sequence[str] = ("HistoryPage", "relative_href", "render_history", "write_history")
