"""The end-of-run summary in the terminal, and the detail shown for a record not passed.

For each finished index: the records not passed, the index's table, the gates' and
comparisons' sections, and what a partial run did differently; then the failures and
write errors of the whole run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_evalindex.report.terminal import shorten

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Sample
    from pytest_evalindex.run.loading import LoadedIndex
    from pytest_evalindex.session import EvalIndexSession
    from pytest_evalindex.testset.records import Record


def describe_sample(record: Record, sample: Sample) -> str:
    """The missed/failed detail: prompt (shortened), response, target, explanation."""
    lines = [
        f"{record.id} [{sample['outcome']}] score={sample['score']}",
        f"  prompt:      {shorten(record.prompt_text())}",
        f"  response:    {shorten(str(sample['response']))}",
        f"  target:      {shorten(str(record.target))}",
        f"  explanation: {sample['explanation']}",
    ]
    return "\n".join(lines)


def write_summary(terminalreporter: Any, session: EvalIndexSession) -> None:
    """Write the summary of every finished index, then the run's verdict lines."""
    from pytest_evalindex.report.terminal import format_missed, format_summary
    from pytest_evalindex.results.verdicts import Verdicts

    options = session.options
    verbosity = session.config.get_verbosity()
    write = terminalreporter.write_line
    finished = session.finished()
    for loaded in finished:
        assert loaded.results is not None
        missed = [s for s in loaded.results["samples"] if s["outcome"] != "passed"]
        if missed and verbosity >= 0:
            limit = None if verbosity > 0 else 10
            terminalreporter.section(f"evalindex: not passed in {loaded.name}", sep="-")
            by_id = {r.id: r for r in loaded.records}
            for line in format_missed(missed, by_id, limit=limit):
                write(line)
        terminalreporter.section(f"evalindex: {loaded.name}", sep="=", bold=True)
        summary = format_summary(loaded.results)
        session.config.hook.pytest_evalindex_summary(
            config=session.config, results=loaded.results, lines=summary
        )
        for line in summary:
            write(line)
        verdicts = loaded.verdicts or Verdicts()
        for title, lines in verdicts.sections:
            write("")
            write(f"{title}:", bold=True)
            for line in lines:
                write(line, red=line.startswith("FAIL"))
        if verdicts.refused:
            write(f"ERROR {verdicts.refused}", red=True, bold=True)
        if options.shard is not None:
            write(
                "shard run: gates and comparisons are skipped; merge the shards with "
                "`evalindex merge` and check the merged file with `evalindex gate`/`compare`"
            )
        if loaded.saved_to is not None:
            write(f"saved this run as {loaded.saved_to}")
        for line, style in partial_notes(session, loaded):
            write(line, **style)
    if session.sandbox and session.sandbox["note"] and finished:
        write(f"WARNING evalindex: {session.sandbox['note']}", yellow=True, bold=True)
    # gate, compare-fail and partial-run failures were printed in their sections above
    for failure in session.fail_under_failures():
        write(f"FAIL {failure}", red=True, bold=True)
    for error in session.write_errors:
        write(f"ERROR {error}", red=True, bold=True)
    if options.fail_under is not None and finished and not session.gate_failures():
        write(f"PASS index >= --index-fail-under {options.fail_under}", green=True)
    if session.interrupted:
        write(session.interrupted_line(), yellow=True, bold=True)


def partial_notes(
    session: EvalIndexSession, loaded: LoadedIndex
) -> list[tuple[str, dict[str, bool]]]:
    """What the end of a partial run did differently, for the terminal."""
    from pytest_evalindex.results.partial import PARTIAL_RESULTS, comparison_note, partial_of
    from pytest_evalindex.run.writing import suffixed

    assert loaded.results is not None
    partial = partial_of(loaded.results)
    if partial is None:
        return []
    where = suffixed(session.evalindex_dir() / PARTIAL_RESULTS, loaded, session.finished())
    notes: list[tuple[str, dict[str, bool]]] = [
        (f"results of this partial run: {where.relative_to(session.config.rootpath)}", {})
    ]
    if loaded.verdicts is not None and loaded.verdicts.comparison is not None:
        notes.append((comparison_note(partial), {"yellow": True}))
    if loaded.save_refused:
        notes.append((loaded.save_refused, {"yellow": True}))
    return notes
