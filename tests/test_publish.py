"""evalindex publish: the folder, its lock and card; a published folder run with --index DIR."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_evalindex.cli import main
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.jsonl import read_testset
from tests.helpers import assert_outcomes, assert_valid_results

QUICKSTART = Path(__file__).resolve().parent.parent / "example_suites" / "quickstart.yaml"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    matter: dict[str, Any] = yaml.safe_load(card.split("---\n")[1])
    return matter


def publish(*args: str) -> int:
    return main(["publish", *args])


def test_publish_writes_a_folder_a_hub_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pub"
    status = publish(
        str(QUICKSTART), "--to", str(out), "--license", "cc-by-4.0", "--language", "en"
    )
    assert status == 0
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == [
        "README.md",
        "evalindex.lock.json",
        "evalscope/collection.jsonl",
        "spec.yaml",
        "testset.jsonl",
    ]
    lock = json.loads((out / "evalindex.lock.json").read_text())
    header, records = read_testset(out / "testset.jsonl")
    assert lock["testset"] == "testset.jsonl"
    assert lock["sha256"] == sha256(out / "testset.jsonl")
    assert lock["records"] == len(records) == 30
    assert lock["spec_sha256"] == sha256(QUICKSTART) == sha256(out / "spec.yaml")
    assert lock["evalscope"]["sha256"] == sha256(out / "evalscope" / "collection.jsonl")
    import pytest_evalindex

    assert lock["version"] == pytest_evalindex.__version__
    # the EvalScope collection holds the very same records
    _, evalscope_records = read_testset(out / "evalscope" / "collection.jsonl")
    assert evalscope_records == records
    assert header is not None and header["seed"] == 42

    card = (out / "README.md").read_text()
    matter = front_matter(card)
    assert matter["license"] == "cc-by-4.0"
    assert matter["language"] == ["en"]
    assert {"evalindex", "knowledge", "math", "reasoning", "en"} <= set(matter["tags"])
    assert matter["task_categories"] == ["multiple-choice", "question-answering"]
    paths = [f["path"] for c in matter["configs"] for f in c["data_files"]]
    assert paths == ["testset.jsonl", "evalscope/collection.jsonl"]
    assert all((out / p).is_file() for p in paths)
    # the body: weights table, task types and tags, sampling header, how to run it
    assert "| facts | 0.4000 | 12 | knowledge | en | includes | cc-by-4.0 |" in card
    assert "| task type | math | 9 |" in card
    assert "| seed | 42 |" in card and "| sampler | weighted |" in card
    assert header["sources"]["facts"]["sha256"] in card
    assert "pytest --index hf://OWNER/NAME" in card
    assert lock["sha256"] in card
    assert "warning" not in capsys.readouterr().err


def test_publishing_twice_writes_the_same_bytes(tmp_path: Path) -> None:
    assert publish(str(QUICKSTART), "--to", str(tmp_path / "a"), "--license", "mit") == 0
    assert publish(str(QUICKSTART), "--to", str(tmp_path / "b"), "--license", "mit") == 0
    for name in ("README.md", "evalindex.lock.json", "testset.jsonl", "evalscope/collection.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_unstated_licenses_are_warned_about_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pub"
    assert publish(str(QUICKSTART), "--to", str(out), "--source-license", "facts=cc0-1.0") == 0
    err = capsys.readouterr().err
    assert "warning: the license of 2 source(s) was not stated (arithmetic, reasoning)" in err
    card = (out / "README.md").read_text()
    assert front_matter(card)["license"] == "unknown"
    assert "| facts | 0.4000 | 12 | knowledge | en | includes | cc0-1.0 |" in card
    assert "| arithmetic | 0.3000 | 9 | math | en | numeric | not stated |" in card


def test_sources_with_different_licenses_say_other(tmp_path: Path) -> None:
    out = tmp_path / "pub"
    args = ["--source-license", "facts=mit", "--license", "apache-2.0"]
    assert publish(str(QUICKSTART), "--to", str(out), *args) == 0
    assert front_matter((out / "README.md").read_text())["license"] == "other"


def test_a_license_for_a_dataset_the_test_set_lacks_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = publish(str(QUICKSTART), "--to", str(tmp_path / "p"), "--source-license", "nope=mit")
    assert status == 4
    assert "datasets the test set does not have: nope" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_publish_a_frozen_test_set(tmp_path: Path) -> None:
    testset = tmp_path / "frozen.jsonl"
    assert main(["sample", str(QUICKSTART), "-o", str(testset), "--count", "9"]) == 0
    out = tmp_path / "pub"
    assert publish(str(testset), "--to", str(out), "--license", "mit") == 0
    lock = json.loads((out / "evalindex.lock.json").read_text())
    assert lock["records"] == 9 and lock["spec_sha256"] is None
    assert not (out / "spec.yaml").exists()
    assert read_testset(out / "testset.jsonl") == read_testset(testset)


def test_refuses_a_folder_holding_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert publish(str(QUICKSTART), "--to", str(tmp_path), "--license", "mit") == 4
    assert "already holds other files (notes.txt)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--hub", "hf"], "--hub needs --repo"), (["--repo", "a/b"], "--repo needs --hub")],
)
def test_hub_and_repo_go_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert publish(str(QUICKSTART), "--to", str(tmp_path / "p"), *args) == 4
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- --index DIR


@pytest.fixture
def published(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "pub"
    assert publish(str(QUICKSTART), "--to", str(folder), "--license", "mit") == 0
    return folder


@pytest.fixture
def server() -> Any:
    with FakeOpenAI(default="no idea") as fake:
        yield fake


def run_args(server: FakeOpenAI, index: str = "pub") -> list[str]:
    return ["--index", index, "--index-base-url", server.base_url, "--index-model", "m"]


def test_runs_a_published_folder(
    pytester: pytest.Pytester, published: Path, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = pytester.runpytest(*run_args(server), "--index-json", "out.json", *run_mode)
    assert result.ret == 0, result.stdout.str()
    assert_outcomes(result, missed=30)
    assert server.request_count == 30
    document = json.loads((pytester.path / "out.json").read_text())
    assert_valid_results(document)
    lock = json.loads((published / "evalindex.lock.json").read_text())
    assert document["run"]["index_source"] == {
        "id": None,
        "hub": None,
        "repo": None,
        "requested": None,
        "revision": None,
        "lock_sha256": lock["sha256"],
    }
    assert document["run"]["index_file"] == str(published / "testset.jsonl")


@pytest.mark.parametrize("change", ["a record", "the lock's count"])
def test_a_test_set_that_no_longer_matches_its_lock_is_refused(
    pytester: pytest.Pytester,
    published: Path,
    server: FakeOpenAI,
    run_mode: list[str],
    change: str,
) -> None:
    if change == "a record":
        path = published / "testset.jsonl"
        path.write_text(path.read_text().replace('"weight": 0.4', '"weight": 0.5', 1))
        expected = "*the test set does not match its lock evalindex.lock.json (sha256 *"
    else:
        lock_path = published / "evalindex.lock.json"
        lock = json.loads(lock_path.read_text())
        lock["records"] = 31
        lock_path.write_text(json.dumps(lock))
        expected = "*the test set holds 30 records, its lock evalindex.lock.json says 31*"
    result = pytester.runpytest(*run_args(server), *run_mode)
    assert result.ret == 4
    result.stderr.fnmatch_lines([expected])
    assert server.request_count == 0


def test_the_test_set_file_itself_is_checked_too(
    pytester: pytest.Pytester, published: Path, server: FakeOpenAI, run_mode: list[str]
) -> None:
    path = published / "testset.jsonl"
    path.write_text(path.read_text() + "\n")
    result = pytester.runpytest(*run_args(server, "pub/testset.jsonl"), *run_mode)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*does not match its lock*nothing was run*"])
    assert server.request_count == 0
