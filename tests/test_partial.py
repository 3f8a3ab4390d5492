"""Runs of part of the test set: recorded as such, and never passing for the whole index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.cli import main as evalindex_main
from pytest_evalindex.report.terminal import format_summary
from pytest_evalindex.results.partial import (
    describe,
    interrupted_line,
    is_keyboard_interrupt,
    last_results_name,
    merged_partial,
    names_node_ids,
    partial_run,
    whole_size,
)
from pytest_evalindex.results.shards import merge_results
from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

RECORDS = 10
BROKEN = {"q3", "q7"}  # the server refuses these: error samples, re-run by --lf

SPEC = f"""
name: part_index
count: {RECORDS}
seed: 3
datasets:
  - name: qs
    weight: 1
    task_type: qa
    adapter: general_qa
    source: qs.jsonl
    fields: {{id: id, input: question, target: answer}}
    scorer: includes
"""


# --------------------------------------------------------------------------- pure parts


def test_a_run_is_partial_only_when_records_are_missing() -> None:
    assert partial_run(ran=30, of=30, causes=["-k"]) is None
    assert partial_run(ran=2, of=30, causes=["--lf"]) == {"ran": 2, "of": 30, "why": "--lf"}
    assert partial_run(ran=2, of=30, causes=["-k", "-m", "-k"])["why"] == "-k, -m"  # type: ignore[index]
    # no known cause (a plugin deselected, a worker crashed): still partial
    assert partial_run(ran=29, of=30, causes=[]) == {"ran": 29, "of": 30, "why": "other"}
    assert describe({"ran": 2, "of": 30, "why": "--lf"}) == "2 of 30 records, --lf"


def test_node_ids_count_only_when_they_name_an_index(tmp_path: Path) -> None:
    index = tmp_path / "spec.yaml"
    assert names_node_ids(["spec.yaml::qs::qs/q1"], tmp_path, [index])
    assert names_node_ids(["spec.yaml::qs"], tmp_path, [index])
    assert not names_node_ids(["spec.yaml"], tmp_path, [index])
    assert not names_node_ids(["tests/test_x.py::test_y"], tmp_path, [index])


def test_xdist_stopping_for_maxfail_is_not_an_interruption() -> None:
    class Interrupted(KeyboardInterrupt):
        pass

    Interrupted.__module__ = "xdist.dsession"
    assert is_keyboard_interrupt(KeyboardInterrupt())
    assert not is_keyboard_interrupt(Interrupted("stopping after 1 failures"))
    assert is_keyboard_interrupt(Interrupted("<WorkerController gw0> received keyboard-interrupt"))
    assert not is_keyboard_interrupt(RuntimeError("x"))
    # pytest's own loop ending for session.shouldstop (the plugin stopping the run)
    stopped = pytest.Session.Interrupted
    assert not is_keyboard_interrupt(stopped("the model server rejected the API key"), stopped)
    assert is_keyboard_interrupt(KeyboardInterrupt(), stopped)


def test_results_file_names_and_messages() -> None:
    assert last_results_name(None) == ("last.json", "last.partial.json")
    assert last_results_name({"ran": 1, "of": 2, "why": "-k"}) == ("last.partial.json", None)
    assert interrupted_line(1, ".c") == (
        "interrupted: 1 answer is kept in .c; run the same command again to resume"
    )
    assert "cache is off" in interrupted_line(None, "")
    assert "starts over" in interrupted_line(0, ".c")


def test_summary_says_partial_right_after_the_index_line() -> None:
    results = {
        "index": {"name": "i", "score": 1.0, "ci95": [1.0, 1.0], "count": 2, "errors": 0},
        "tables": {},
        "run": {"partial": {"ran": 2, "of": 30, "why": "--lf"}},
    }
    lines = format_summary(results)
    assert lines[0].startswith("index i: 1.0000")
    assert lines[1] == "partial: 2 of 30 records (--lf)"
    results["run"]["partial"] = None
    assert not any(line.startswith("partial") for line in format_summary(results))


def test_merged_shards_are_whole_unless_records_are_missing() -> None:
    shards = [{"ran": 4, "of": 10, "why": "shard"}, {"ran": 6, "of": 10, "why": "shard"}]
    assert whole_size(shards) == 10
    assert merged_partial(shards, ran=10, of=10) is None
    interrupted = [{"ran": 4, "of": 10, "why": "shard"}, {"ran": 3, "of": 10, "why": "shard, -x"}]
    assert merged_partial(interrupted, ran=7, of=10) == {"ran": 7, "of": 10, "why": "-x"}
    assert merged_partial([None, None], ran=7, of=whole_size([None, None])) is None


# --------------------------------------------------------------------------- the plugin


def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
    question = messages[-1]["content"]
    number = question.split()[-1].rstrip("?")
    if f"q{number}" in BROKEN:
        return {"status": 400, "error": {"message": "refused for the test"}}
    return number


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=answer) as fake:
        yield fake


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", part=SPEC)
    rows = [{"id": f"q{k}", "question": f"Question {k}?", "answer": str(k)} for k in range(RECORDS)]
    (pytester.path / "qs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pytester


def base_args(server: FakeOpenAI) -> list[str]:
    return ["--index", "part.yaml", "--index-base-url", server.base_url, "--index-model", "m"]


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def test_last_failed_rerun_is_partial_and_cannot_pass_a_gate(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    first = project.runpytest(*base_args(server), *run_mode)
    assert first.ret == 1  # the two refused records are errors
    last = project.path / ".evalindex" / "last.json"
    whole = read(last)
    assert whole["run"]["partial"] is None
    assert whole["index"]["errors"] == len(BROKEN)

    server.responder = lambda messages, body: messages[-1]["content"].split()[-1].rstrip("?")
    rerun = project.runpytest(
        *base_args(server), "--lf", "--index-gate", "index>=0.5", "--index-fail-under", "0.5",
        *run_mode,
    )  # fmt: skip
    out = rerun.stdout.str()
    # both errors now pass, and the gates hold on the 2 records, but not for the index
    assert rerun.ret == 1, out
    rerun.stdout.fnmatch_lines(
        [
            "index part_index: 1.0000 *count 2  errors 0",
            "partial: 2 of 10 records (--lf)",
            "*index>=0.5*PASS",
            "FAIL partial run (2 of 10 records, --lf): gates need the whole index",
            "results of this partial run: .evalindex/last.partial.json",
        ]
    )
    assert out.count("gates need the whole index") == 1
    assert "PASS index >= --index-fail-under" not in out
    partial = read(project.path / ".evalindex" / "last.partial.json")
    assert partial["run"]["partial"] == {"ran": 2, "of": RECORDS, "why": "--lf"}
    assert sorted(s["id"] for s in partial["samples"]) == sorted(f"qs/{i}" for i in BROKEN)
    # the last whole run is left as it was
    assert read(last) == whole


def test_keyword_selection_and_save_are_refused_as_a_baseline(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(
        *base_args(server), *run_mode, "-k", "q1 or q2", "--index-save", "base",
        "--index-json", "out.json",
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == 0, out  # no gate configured: nothing fails
    assert "partial: 2 of 10 records (-k)" in out
    assert (
        "not saved: a partial run (2 of 10 records, -k) is no baseline; run the whole index "
        "to save one (--index-json keeps this run's results)" in out
    )
    assert not (project.path / ".evalindex" / "runs").exists()
    assert read(project.path / "out.json")["run"]["partial"]["why"] == "-k"
    assert not (project.path / ".evalindex" / "last.json").exists()


def test_node_ids_name_their_cause(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(
        *base_args(server), *run_mode, "part.yaml::qs::qs/q1", "part.yaml::qs::qs/q2"
    )
    assert result.ret == 0, result.stdout.str()
    assert read(project.path / ".evalindex" / "last.partial.json")["run"]["partial"] == {
        "ran": 2,
        "of": RECORDS,
        "why": "node ids",
    }
    result.stdout.fnmatch_lines(["partial: 2 of 10 records (node ids)"])


def test_exitfirst_names_its_cause(project: pytest.Pytester, server: FakeOpenAI) -> None:
    stopped = project.runpytest(*base_args(server), "-x")
    assert stopped.ret == 1
    partial = read(project.path / ".evalindex" / "last.partial.json")["run"]["partial"]
    assert partial == {"ran": 4, "of": RECORDS, "why": "-x"}  # q0..q3, q3 refused


def test_marker_and_deselect_are_causes(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(
        *base_args(server), *run_mode, "-m", "qa", "--deselect", "part.yaml::qs::qs/q0"
    )
    assert result.ret == 1  # q3 and q7 are refused
    partial = read(project.path / ".evalindex" / "last.partial.json")["run"]["partial"]
    assert partial == {"ran": RECORDS - 1, "of": RECORDS, "why": "-m, --deselect"}


def test_a_whole_run_replaces_the_partial_file_and_saves(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    server.responder = lambda messages, body: messages[-1]["content"].split()[-1].rstrip("?")
    project.runpytest(*base_args(server), *run_mode, "-k", "q1")
    assert (project.path / ".evalindex" / "last.partial.json").exists()
    result = project.runpytest(*base_args(server), *run_mode, "--index-save", "base")
    assert result.ret == 0, result.stdout.str()
    assert not (project.path / ".evalindex" / "last.partial.json").exists()
    assert read(project.path / ".evalindex" / "last.json")["run"]["partial"] is None
    assert len(list((project.path / ".evalindex" / "runs" / "part_index").iterdir())) == 1
    assert "partial: " not in result.stdout.str()
    assert "results of this partial run" not in result.stdout.str()


def test_a_partial_run_is_compared_on_its_records_and_cannot_pass_compare_fail(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    server.responder = lambda messages, body: messages[-1]["content"].split()[-1].rstrip("?")
    saved = project.runpytest(*base_args(server), *run_mode, "--index-save", "base")
    assert saved.ret == 0, saved.stdout.str()
    result = project.runpytest(
        *base_args(server), *run_mode, "-k", "q1 or q2 or q5", "--index-compare",
        "--index-compare-fail", "index:5pp",
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "partial run: the comparison covers only the 3 of 10 records this run has" in out
    assert "comparison with 0001_base.json" in out
    assert "FAIL partial run (3 of 10 records, -k): gates need the whole index" in out


def test_shards_are_partial_and_merge_into_a_whole_run(
    project: pytest.Pytester, server: FakeOpenAI, tmp_path: Path, run_mode: list[str]
) -> None:
    server.responder = lambda messages, body: messages[-1]["content"].split()[-1].rstrip("?")
    docs = []
    for shard in ("1/2", "2/2"):
        out = tmp_path / f"shard-{shard[0]}.json"
        result = project.runpytest(
            *base_args(server), *run_mode, "--index-shard", shard, "--index-json", str(out),
            "--index-gate", "index>=0.5",
        )  # fmt: skip
        assert result.ret == 0, result.stdout.str()  # gates are skipped for a shard
        assert "shard run: gates and comparisons are skipped" in result.stdout.str()
        docs.append(read(out))
        assert docs[-1]["run"]["partial"]["why"] == "shard"
        assert docs[-1]["run"]["partial"]["of"] == RECORDS
    merged = merge_results(docs)
    assert merged["run"]["partial"] is None
    assert len(merged["samples"]) == RECORDS


def test_gate_command_fails_a_partial_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_evalindex.results.aggregate import build_results

    sample = {
        "id": "qs/q1", "dataset": "qs", "subset": "default", "task_type": "qa", "tags": [],
        "categories": [], "weight": 1.0, "outcome": "passed", "score": 1.0,
    }  # fmt: skip
    run = {"model": "m", "partial": {"ran": 1, "of": 10, "why": "-k"}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(build_results([sample], index_name="i", run=run, n_boot=10)))
    assert evalindex_main(["gate", str(path), "index>=0.5"]) == 1
    out = capsys.readouterr().out
    assert "FAIL partial run (1 of 10 records, -k): gates need the whole index" in out
