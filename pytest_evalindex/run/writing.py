"""Writing a run's result files: the results JSON, the HTML and markdown reports, saved runs.

Every file is written whole or not at all (a temporary file, then a rename). Every answer
has been paid for by the time results are written, so a file that cannot be written becomes
one clear line in ``write_errors`` (the summary is still printed and the exit status is
non-zero), never a traceback that hides the rest, and the run goes on to the next file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.options import RunOptions
from pytest_evalindex.results.verdicts import Verdicts
from pytest_evalindex.run.loading import LoadedIndex

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Results


@contextmanager
def writing(errors: list[str], what: str | Path) -> Iterator[None]:
    """Run the block that writes ``what``; a failure is appended to ``errors``."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(what) else ""
        errors.append(f"could not write {what}: {exc.strerror or exc}{where}")
    except EvalIndexError as exc:
        errors.append(f"could not write {what}: {exc}")


def results_text(results: Results) -> str:
    """The results document as JSON: indented, except that each sample takes one line.

    One line a sample reads well in a diff or with grep, and the standard library writes
    compact JSON in C but indented JSON in Python, ten times slower on 20,000 samples."""
    parts = []
    for key, value in results.items():
        if key == "samples" and isinstance(value, list) and value:
            lines = ",\n".join("  " + json.dumps(s, ensure_ascii=False) for s in value)
            text = f"[\n{lines}\n ]"
        else:
            # nested lines move one level in; newlines inside strings are escaped
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def suffixed(path: Path, loaded: LoadedIndex, finished: list[LoadedIndex]) -> Path:
    """With several indexes in one run, each writes its own file: ``out.<name>.json``."""
    if len(finished) == 1:
        return path
    return path.with_name(f"{path.stem}.{loaded.name}{path.suffix}")


def write_results(
    finished: list[LoadedIndex],
    options: RunOptions,
    *,
    evalindex_dir: Path,
    write_errors: list[str],
) -> None:
    """Write every output file of the finished indexes; sets ``saved_to`` or
    ``save_refused`` on each index when ``--index-save`` asks for a saved run."""
    from pytest_evalindex.results.partial import last_results_name, partial_of

    if not finished:
        return
    targets: list[tuple[Path, LoadedIndex]] = []
    for loaded in finished:
        assert loaded.results is not None
        name, stale = last_results_name(partial_of(loaded.results))
        targets.append((suffixed(evalindex_dir / name, loaded, finished), loaded))
        if stale is not None:
            # a whole run supersedes the last partial one
            suffixed(evalindex_dir / stale, loaded, finished).unlink(missing_ok=True)
        if options.json_path is not None:
            targets.append((suffixed(options.json_path, loaded, finished), loaded))
    texts: dict[int, str] = {}
    for path, loaded in targets:
        assert loaded.results is not None
        if id(loaded) not in texts:
            texts[id(loaded)] = results_text(loaded.results)
        with writing(write_errors, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(texts[id(loaded)], "utf-8")
            os.replace(tmp, path)
    if options.html_path is not None:
        from pytest_evalindex.report.html import write_html

        for loaded in finished:
            assert loaded.results is not None
            verdicts = loaded.verdicts or Verdicts()
            html_path = suffixed(options.html_path, loaded, finished)
            with writing(write_errors, html_path):
                write_html(
                    html_path,
                    loaded.results,
                    verdicts.comparison,
                    base_results=verdicts.base_results,
                )
    from pytest_evalindex.report.markdown import publish_markdown

    with writing(write_errors, options.markdown_path or "the markdown summary"):
        publish_markdown(
            options.markdown_path,
            [(i.results, i.verdicts) for i in finished if i.results is not None],
            fail_under=options.fail_under,
        )
    if options.save is not None:
        from pytest_evalindex.results.baselines import save_run

        for loaded in finished:
            assert loaded.results is not None
            partial = partial_of(loaded.results)
            if partial is not None:
                from pytest_evalindex.results.partial import save_refusal

                loaded.save_refused = save_refusal(partial)
                continue
            with writing(write_errors, f"the saved run of {loaded.name}"):
                loaded.saved_to = save_run(
                    loaded.results, root=evalindex_dir, name=options.save or None
                )
