"""Saved runs: numbering, metadata, atomic writes, loading by number or path, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.baselines import (
    _write_new,
    environment_differences,
    load_baseline,
    read_results,
    safe_name,
    save_run,
    saved_runs,
    write_json,
)


def results(score: float = 0.5, **run: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "index": {"name": "rag_index", "score": score, "ci95": [0.4, 0.6], "count": 1},
        "tables": {},
        "samples": [{"id": "faq/1", "dataset": "faq", "outcome": "passed", "score": 1.0}],
        "run": {
            "model": "qwen2.5-14b",
            "base_url": "http://127.0.0.1:8000/v1",
            "spec_sha256": "1" * 64,
            "testset_sha256": "2" * 64,
            "versions": {"pytest": "9.0.0", "pytest_evalindex": "0.1.0"},
            **run,
        },
    }


def test_runs_are_numbered_per_index(tmp_path: Path) -> None:
    root = tmp_path / ".evalindex"
    first = save_run(results(0.5), root=root, name=None)
    second = save_run(results(0.6), root=root, name="baseline")
    third = save_run(results(0.7), root=root, name="my model/v2 (q4)")
    assert first == root / "runs" / "rag_index" / "0001_run.json"
    assert second.name == "0002_baseline.json"
    assert third.name == "0003_my-model-v2-q4.json"
    assert [n for n, _ in saved_runs(root, "rag_index")] == [1, 2, 3]
    other = save_run({**results(), "index": {"name": "other"}}, root=root, name=None)
    assert other == root / "runs" / "other" / "0001_run.json"
    assert not [p for p in (root / "runs" / "rag_index").iterdir() if p.name.startswith(".")]


def test_saved_metadata_and_input_untouched(tmp_path: Path) -> None:
    document = results()
    path = save_run(document, root=tmp_path, name="baseline")
    assert "saved" not in document["run"]
    saved = json.loads(path.read_text(encoding="utf-8"))
    meta = saved["run"]["saved"]
    assert meta["name"] == "baseline" and meta["number"] == 1
    assert meta["saved_at"].endswith("+00:00")
    assert set(meta["machine"]) >= {"node", "system", "machine", "python"}
    assert "git" not in meta  # tmp_path is not in a repository
    assert saved["samples"] == document["samples"]
    assert saved["run"]["model"] == "qwen2.5-14b"


def test_git_commit_branch_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout.strip()

    git("init", "-q", "-b", "main")
    (tmp_path / "spec.yaml").write_text("name: x\n", encoding="utf-8")
    git("add", "spec.yaml")
    git("commit", "-q", "-m", "spec")
    commit = git("rev-parse", "HEAD")
    path = save_run(results(), root=tmp_path / ".evalindex", name=None)
    meta = json.loads(path.read_text(encoding="utf-8"))["run"]["saved"]
    # the saved run itself is untracked and does not make the tree dirty
    assert meta["git"] == {"commit": commit, "branch": "main", "dirty": False}
    (tmp_path / "spec.yaml").write_text("name: y\n", encoding="utf-8")
    path = save_run(results(), root=tmp_path / ".evalindex", name=None)
    assert json.loads(path.read_text(encoding="utf-8"))["run"]["saved"]["git"]["dirty"] is True


def test_write_new_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "0001_run.json"
    target.write_text("{}", encoding="utf-8")
    assert _write_new(target, {"a": 1}) is False
    assert target.read_text(encoding="utf-8") == "{}"
    assert _write_new(tmp_path / "0002_run.json", {"a": 1}) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001_run.json", "0002_run.json"]


def test_write_json_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "out.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_safe_name() -> None:
    assert safe_name("rag_index") == "rag_index"
    assert safe_name("../../etc") == "etc"
    assert safe_name("///") == "run"


def test_load_latest_by_number_and_by_path(tmp_path: Path) -> None:
    for score in (0.1, 0.2, 0.3):
        save_run(results(score), root=tmp_path, name="r")
    path, latest = load_baseline(tmp_path, "rag_index", None)
    assert path.name == "0003_r.json" and latest["index"]["score"] == 0.3
    for ref in (2, "2", "0002"):
        path, doc = load_baseline(tmp_path, "rag_index", ref)
        assert path.name == "0002_r.json" and doc["index"]["score"] == 0.2
    outside = tmp_path / "elsewhere.json"
    write_json(outside, results(0.9))
    assert load_baseline(tmp_path, "rag_index", str(outside))[1]["index"]["score"] == 0.9
    assert load_baseline(tmp_path, "rag_index", outside)[0] == outside
    # a saved run's file name, with or without .json
    assert load_baseline(tmp_path, "rag_index", "0001_r")[0].name == "0001_r.json"
    assert load_baseline(tmp_path, "rag_index", "0001_r.json")[0].name == "0001_r.json"


def test_nothing_saved_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EvalIndexError) as info:
        load_baseline(Path(".evalindex"), "x", None)
    assert str(info.value) == (
        "no saved runs for index 'x' under .evalindex/runs/x; run with --index-save first"
    )


def test_unknown_number_lists_what_is_saved(tmp_path: Path) -> None:
    save_run(results(), root=tmp_path, name=None)
    save_run(results(), root=tmp_path, name=None)
    with pytest.raises(EvalIndexError, match=r"no saved run number 0007 .*\(saved: 0001, 0002\)"):
        load_baseline(tmp_path, "rag_index", 7)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match=r"nope\.json: no such results file"):
        load_baseline(tmp_path, "rag_index", str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1,\n', r"bad\.json:2: not valid JSON"),
        ("[1, 2]", r"bad\.json: is not an evalindex results document .*not an object"),
        ('{"index": {}}', r"no 'schema_version', 'samples', 'run'"),
        (
            '{"schema_version": 2, "index": {}, "samples": [], "run": {}}',
            r"bad\.json: schema_version: results schema_version 2 is not supported",
        ),
        (
            '{"schema_version": 1, "index": {}, "samples": [{"id": 1}], "run": {}}',
            r"samples\[0\]: a sample is an object with at least 'id' and 'dataset'",
        ),
    ],
)
def test_not_a_results_document(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EvalIndexError, match=message):
        read_results(path)


def test_environment_differences() -> None:
    base = results()
    assert environment_differences(base, results()) == []
    new = results(
        model="qwen3-14b",
        spec_sha256="3" * 64,
        versions={"pytest": "9.0.1", "pytest_evalindex": "0.1.0", "httpx": "0.28.1"},
    )
    assert environment_differences(base, new) == [
        "model: qwen2.5-14b -> qwen3-14b",
        "spec sha256: 111111111111… -> 333333333333…",
        "pytest: 9.0.0 -> 9.0.1",
        "httpx: None -> 0.28.1",
    ]
