"""Sources beyond one local file: folders, saved datasets, the Hugging Face and ModelScope hubs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# imported at collection, before any pytester test snapshots sys.modules: pytester drops the
# modules a test imports first, and numpy (under datasets) cannot be imported twice
import datasets
import pytest

from pytest_evalindex.data import hub
from pytest_evalindex.data.hub import HubSource, parse_hub_source
from pytest_evalindex.data.sources import iter_rows, resolve_source, source_sha256
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.spec.index import flatten, load_spec
from pytest_evalindex.testset.sampling import sample_index

FAQ_ROWS = [
    {"uid": f"f{i}", "question": f"What does setting {i} do?", "answer": f"it sets {i}"}
    for i in range(30)
]
QUIZ_ROWS = [
    {"question": f"Is {i} even?", "choices": ["yes", "no"], "answer": i % 2} for i in range(12)
]

SPEC = """\
name: hub_index
count: 14
seed: 5
datasets:
  - name: faq
    weight: 2
    task_type: knowledge
    adapter: general_qa
    fields: {{input: question, target: answer, id: uid}}
    scorer: {{name: includes}}
    source: {faq}
  - name: quiz
    weight: 1
    task_type: reasoning
    adapter: general_mcq
    source: {quiz}
"""


@pytest.fixture(autouse=True)
def _forget_loaded_splits() -> Iterator[None]:
    hub.clear_loaded()
    yield
    hub.clear_loaded()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def save_dataset_dict(folder: Path, splits: dict[str, list[dict[str, Any]]]) -> Path:
    dataset_dict = datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    )
    dataset_dict.save_to_disk(str(folder))
    return folder


def arrow_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("data-*.arrow")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def sample_spec(project: Path, faq: str, quiz: str) -> Any:
    spec_path = project / "index.yaml"
    spec_path.write_text(SPEC.format(faq=faq, quiz=quiz), encoding="utf-8")
    return sample_index(load_spec(spec_path))


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("hf://openai/gsm8k", HubSource("hf", "openai/gsm8k", None, "test", False, None)),
        (
            "hf://openai/gsm8k/main@train",
            HubSource("hf", "openai/gsm8k", "main", "train", True, None),
        ),
        ("hf://datasets/org/mcq", HubSource("hf", "org/mcq", None, "test", False, None)),
        (
            "hf://datasets/org/mcq/cfg.v2@validation",
            HubSource("hf", "org/mcq", "cfg.v2", "validation", True, None),
        ),
        ("hf:///srv/data/saved@dev", HubSource("hf", None, None, "dev", True, "/srv/data/saved")),
        ("hf://./saved", HubSource("hf", None, None, "test", False, "./saved")),
        ("hf:///srv/a@b/saved", HubSource("hf", None, None, "test", False, "/srv/a@b/saved")),
        (
            "modelscope://AI-ModelScope/gsm8k/main@test",
            HubSource("modelscope", "AI-ModelScope/gsm8k", "main", "test", True, None),
        ),
        (
            "modelscope://org/ds",
            HubSource("modelscope", "org/ds", None, "test", False, None),
        ),
    ],
)
def test_parse_hub_sources(uri: str, expected: HubSource) -> None:
    assert parse_hub_source(uri) == expected


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("hf://gsm8k", "expected <owner>/<name>"),
        ("hf://a/b/c/d", "expected <owner>/<name>"),
        ("hf://a//b", "expected <owner>/<name>"),
        ("hf://owner/name@", "the split after '@'"),
        ("hf://-bad/name", "'-bad' is not a valid owner"),
        ("modelscope://just-a-name", "expected <owner>/<name>"),
        ("modelscope:///abs/path", "expected <owner>/<name>"),
    ],
)
def test_malformed_hub_sources_say_how_to_write_them(
    tmp_path: Path, uri: str, problem: str
) -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_source(uri, tmp_path, file="index.yaml", field="datasets[1].source", line=7)
    error = info.value
    assert problem in error.message
    assert f"source {uri!r}" in error.message
    scheme = uri.split(":")[0]
    assert f"write {scheme}://<owner>/<name>" in error.message
    assert (error.file, error.field, error.line) == ("index.yaml", "datasets[1].source", 7)


def test_hub_ids_resolve_unchanged_without_the_library_or_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # any import would fail
    for uri in ("hf://openai/gsm8k/main", "hf://datasets/org/mcq@dev", "modelscope://o/n/s"):
        assert resolve_source(uri, tmp_path) == uri
        assert resolve_source(uri, tmp_path, must_exist=False) == uri


def test_saved_dataset_paths_resolve_to_absolute_uris(tmp_path: Path) -> None:
    saved = save_dataset_dict(tmp_path / "data" / "saved", {"test": FAQ_ROWS[:2]})
    expected = f"hf://{saved}"
    assert resolve_source("hf://./data/saved", tmp_path) == expected
    assert resolve_source("hf://data/saved@test", tmp_path) == f"{expected}@test"
    assert resolve_source(f"hf://{saved}@test", Path("/elsewhere")) == f"{expected}@test"
    # an existing folder, however deep, is a saved dataset; a missing one is a hub id
    deep = save_dataset_dict(tmp_path / "data" / "sets" / "faq" / "v2", {"test": FAQ_ROWS[:1]})
    assert resolve_source("hf://data/sets/faq/v2", tmp_path) == f"hf://{deep}"
    assert resolve_source("hf://data/absent", tmp_path) == "hf://data/absent"


def test_saved_dataset_folder_must_exist_and_look_saved(tmp_path: Path) -> None:
    with pytest.raises(EvalIndexError, match=r"no folder .*missing") as info:
        resolve_source("hf://./missing", tmp_path, file="index.yaml", field="datasets[0].source")
    assert info.value.field == "datasets[0].source"
    assert resolve_source("hf://./missing", tmp_path, must_exist=False) == (
        f"hf://{tmp_path / 'missing'}"
    )
    write_jsonl(tmp_path / "plain" / "test.jsonl", FAQ_ROWS)
    with pytest.raises(EvalIndexError, match="not a dataset saved with save_to_disk"):
        resolve_source("hf://./plain", tmp_path)


# --------------------------------------------------------------------------- saved datasets


def test_saved_dataset_through_a_spec_samples_like_the_same_rows_in_jsonl(
    tmp_path: Path,
) -> None:
    save_dataset_dict(tmp_path / "data" / "faq", {"test": FAQ_ROWS, "train": FAQ_ROWS[:3]})
    save_dataset_dict(tmp_path / "data" / "quiz", {"validation": QUIZ_ROWS})
    write_jsonl(tmp_path / "data" / "faq.jsonl", FAQ_ROWS)
    write_jsonl(tmp_path / "data" / "quiz.jsonl", QUIZ_ROWS)

    from_hub = sample_spec(tmp_path, "hf://./data/faq", "hf://./data/quiz@validation")
    from_files = sample_spec(tmp_path, "data/faq.jsonl", "data/quiz.jsonl")

    assert len(from_hub.records) == 14
    assert [r.model_dump() for r in from_hub.records] == [
        r.model_dump() for r in from_files.records
    ]
    assert {r.dataset for r in from_hub.records} == {"faq", "quiz"}
    assert all(r.id.startswith("faq/f") for r in from_hub.records if r.dataset == "faq")
    sources = from_hub.header["sources"]
    assert sources["faq"]["source"].startswith("hf://")
    assert sources["faq"]["source"].endswith("data/faq")
    assert sources["faq"]["sha256"] == arrow_sha256(tmp_path / "data" / "faq" / "test")
    assert sources["quiz"]["sha256"] == arrow_sha256(tmp_path / "data" / "quiz" / "validation")


def test_saved_dataset_rows_splits_and_hash(tmp_path: Path) -> None:
    saved = save_dataset_dict(tmp_path / "saved", {"test": QUIZ_ROWS, "train": QUIZ_ROWS[:2]})
    uri = f"hf://{saved}"
    assert list(iter_rows(uri)) == QUIZ_ROWS
    assert list(iter_rows(f"{uri}@train")) == QUIZ_ROWS[:2]
    with pytest.raises(EvalIndexError, match=r"has no split 'dev'; its splits: 'test', 'train'"):
        iter_rows(f"{uri}@dev")
    digest = source_sha256(uri)
    assert digest == arrow_sha256(saved / "test") != source_sha256(f"{uri}@train")

    # the same bytes elsewhere hash the same; other data hashes differently
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    assert source_sha256(f"hf://{copy}") == digest
    changed = save_dataset_dict(tmp_path / "changed", {"test": QUIZ_ROWS[:-1]})
    assert source_sha256(f"hf://{changed}") != digest


def test_saved_single_dataset_and_single_split(tmp_path: Path) -> None:
    single = tmp_path / "single"
    datasets.Dataset.from_list(FAQ_ROWS[:4]).save_to_disk(str(single))
    assert list(iter_rows(f"hf://{single}")) == FAQ_ROWS[:4]
    only_train = save_dataset_dict(tmp_path / "only_train", {"train": FAQ_ROWS[:2]})
    # no `test` split and none named: the only split there is
    assert list(iter_rows(f"hf://{only_train}")) == FAQ_ROWS[:2]
    with pytest.raises(EvalIndexError, match="has no split 'test'"):
        iter_rows(f"hf://{only_train}@test")


def test_rows_stream_in_batches(tmp_path: Path) -> None:
    rows = [{"n": i, "text": f"row {i}"} for i in range(2500)]
    saved = save_dataset_dict(tmp_path / "many", {"test": rows})
    stream = iter_rows(f"hf://{saved}")
    assert next(stream) == rows[0]
    assert list(stream) == rows[1:]


# --------------------------------------------------------------------------- the hub


class FakeLoader:
    """Stands in for a library's load function: records the call, returns a dataset."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.result = result
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.result


def test_hf_hub_source_loads_owner_name_config_and_split(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = FakeLoader(datasets.Dataset.from_list(FAQ_ROWS[:5]))
    monkeypatch.setattr(datasets, "load_dataset", loader)
    assert list(iter_rows("hf://acme/support-faq/en@train")) == FAQ_ROWS[:5]
    assert list(iter_rows("hf://datasets/acme/support-faq")) == FAQ_ROWS[:5]
    assert loader.calls == [
        (("acme/support-faq", "en"), {"split": "train"}),
        (("acme/support-faq", None), {"split": "test"}),
    ]
    # a split is loaded once per process: hashing after sampling does not load it again
    digest = source_sha256("hf://acme/support-faq/en@train")
    assert len(loader.calls) == 2
    in_memory = datasets.Dataset.from_list(FAQ_ROWS[:5])
    assert digest == hashlib.sha256(in_memory._fingerprint.encode()).hexdigest()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            ConnectionError("Couldn't reach 'acme/faq' on the Hub (OfflineModeIsEnabled)"),
            "acme/faq is not in the local datasets cache and offline mode is on",
        ),
        (
            ConnectionError("Couldn't reach 'acme/faq' on the Hub (LocalEntryNotFoundError)"),
            "acme/faq is not in the local datasets cache and the Hugging Face Hub cannot be "
            "reached",
        ),
        (
            type("DatasetNotFoundError", (FileNotFoundError,), {})("Dataset 'acme/faq' doesn't"),
            "no dataset 'acme/faq' on the Hugging Face Hub, or it is private or gated",
        ),
        (
            ValueError("Unknown split \"dev\".\n Should be one of ['test']."),
            """cannot load acme/faq: Unknown split "dev". Should be one of ['test'].""",
        ),
    ],
)
def test_hf_hub_errors_become_one_paragraph(
    monkeypatch: pytest.MonkeyPatch, error: BaseException, expected: str
) -> None:
    for name in hub._OFFLINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # a hub that accepts connections, so the library's own error decides the message
    listener = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setattr(datasets, "load_dataset", FakeLoader(error=error))
    with pytest.raises(EvalIndexError) as info:
        iter_rows("hf://acme/faq")
    assert expected in info.value.message
    assert "\n" not in str(info.value)
    assert info.value.__suppress_context__
    listener.close()


def test_hub_reachable_opens_a_connection_to_hf_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub.hub_reachable(timeout_s=2)
    # the port is closed now: refused at once
    assert not hub.hub_reachable(timeout_s=2)


def test_hub_unreachable_and_not_cached_is_one_line_without_traceback(tmp_path: Path) -> None:
    # a real datasets library, offline, with an empty cache: the CLI's whole path
    spec = tmp_path / "index.yaml"
    spec.write_text(SPEC.format(faq="hf://acme/support-faq", quiz="hf://acme/quiz"))
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    env.pop("HF_DATASETS_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", "sample", str(spec), "-o", "out.jsonl"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("evalindex:")]
    assert errors == [
        "evalindex: error: hf://acme/support-faq: acme/support-faq is not in the local "
        "datasets cache and offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE); run "
        "once with network access to fill the cache (HF_HOME / HF_DATASETS_CACHE), or save "
        "the dataset with save_to_disk and write hf:///<that folder>"
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_datasets_library_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = save_dataset_dict(tmp_path / "saved", {"test": FAQ_ROWS[:1]})
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    for uri in (f"hf://{saved}", "hf://acme/faq"):
        with pytest.raises(EvalIndexError) as info:
            iter_rows(uri)
        assert str(info.value) == (
            f"{uri}: reading hf:// sources needs the datasets library: "
            "pip install 'pytest-evalindex[hf]'"
        )
        with pytest.raises(EvalIndexError, match=r"pytest-evalindex\[hf\]"):
            source_sha256(uri)


# --------------------------------------------------------------------------- ModelScope


def fake_modelscope(monkeypatch: pytest.MonkeyPatch, load: FakeLoader) -> None:
    """Install a stand-in ``modelscope.msdatasets`` whose MsDataset.load is ``load``."""
    package = types.ModuleType("modelscope")
    msdatasets = types.ModuleType("modelscope.msdatasets")
    msdatasets.MsDataset = type("MsDataset", (), {"load": staticmethod(load)})  # type: ignore[attr-defined]
    package.msdatasets = msdatasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "modelscope", package)
    monkeypatch.setitem(sys.modules, "modelscope.msdatasets", msdatasets)


def test_modelscope_source_calls_msdataset_load(monkeypatch: pytest.MonkeyPatch) -> None:
    class Wrapped:  # MsDataset.load may return its own wrapper around a datasets.Dataset
        def to_hf_dataset(self) -> Any:
            return datasets.Dataset.from_list(QUIZ_ROWS[:3])

    load = FakeLoader(Wrapped())
    fake_modelscope(monkeypatch, load)
    assert list(iter_rows("modelscope://acme/quiz/hard@validation")) == QUIZ_ROWS[:3]
    load.result = datasets.DatasetDict({"test": datasets.Dataset.from_list(QUIZ_ROWS[:1])})
    assert list(iter_rows("modelscope://acme/quiz")) == QUIZ_ROWS[:1]
    assert load.calls == [
        (("quiz",), {"namespace": "acme", "split": "validation", "subset_name": "hard"}),
        (("quiz",), {"namespace": "acme", "split": "test"}),
    ]


def test_modelscope_unreachable_says_how_to_work_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_modelscope(monkeypatch, FakeLoader(error=TimeoutError("download deadline reached")))
    with pytest.raises(EvalIndexError) as info:
        iter_rows("modelscope://acme/quiz")
    message = info.value.message
    assert "ModelScope cannot be reached (download deadline reached)" in message
    assert "modelscope download --dataset acme/quiz --local_dir DIR" in message


def test_missing_modelscope_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)
    monkeypatch.setitem(sys.modules, "modelscope.msdatasets", None)
    with pytest.raises(EvalIndexError) as info:
        iter_rows("modelscope://acme/quiz")
    assert str(info.value) == (
        "modelscope://acme/quiz: reading modelscope:// sources needs the modelscope library: "
        "pip install 'pytest-evalindex[modelscope]'"
    )


# --------------------------------------------------------------------------- folders


def test_folder_stands_for_its_test_jsonl(tmp_path: Path) -> None:
    folder = tmp_path / "faq"
    write_jsonl(folder / "test.jsonl", FAQ_ROWS)
    write_jsonl(folder / "train.jsonl", FAQ_ROWS[:2])
    expected = str(folder / "test.jsonl")
    assert resolve_source("faq", tmp_path) == expected
    assert resolve_source("faq", tmp_path, must_exist=False) == expected
    assert list(iter_rows(str(folder))) == FAQ_ROWS
    assert source_sha256(str(folder)) == source_sha256(expected)


def test_folder_with_one_jsonl_stands_for_it(tmp_path: Path) -> None:
    folder = tmp_path / "quiz"
    write_jsonl(folder / "quiz-v2.jsonl", QUIZ_ROWS)
    (folder / "README.md").write_text("notes")
    (folder / "nested.jsonl").mkdir()  # a folder, not a file
    assert resolve_source(str(folder), Path("/elsewhere")) == str(folder / "quiz-v2.jsonl")


@pytest.mark.parametrize(
    ("files", "holds"),
    [
        ((), "holds nothing; it is empty"),
        (("a.jsonl", "b.jsonl"), "holds 2 .jsonl files (a.jsonl, b.jsonl)"),
        (("rows.csv", "rows.parquet"), "holds no .jsonl file; it holds rows.csv, rows.parquet"),
    ],
)
def test_folder_without_one_data_file_names_what_it_holds(
    tmp_path: Path, files: tuple[str, ...], holds: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("{}\n")
    with pytest.raises(EvalIndexError) as info:
        resolve_source("data", tmp_path, file="index.yaml", field="datasets[0].source", line=3)
    error = info.value
    assert error.message.startswith(
        f"source folder {folder} should hold test.jsonl or a single .jsonl file, but {holds}; "
    )
    assert (error.file, error.field, error.line) == ("index.yaml", "datasets[0].source", 3)
    # flatten() resolves without checking: the folder stays, reading reports the problem
    assert resolve_source("data", tmp_path, must_exist=False) == str(folder)
    with pytest.raises(EvalIndexError, match=f"source folder {folder} should hold"):
        iter_rows(str(folder))


def test_saved_dataset_folder_without_the_scheme_gets_a_hint(tmp_path: Path) -> None:
    saved = save_dataset_dict(tmp_path / "saved", {"test": FAQ_ROWS[:1]})
    with pytest.raises(EvalIndexError, match=f"saved with save_to_disk: write hf://{saved}"):
        resolve_source("saved", tmp_path)


def test_folder_source_through_a_spec(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "faq" / "test.jsonl", FAQ_ROWS)
    write_jsonl(tmp_path / "data" / "quiz" / "quiz.jsonl", QUIZ_ROWS)
    result = sample_spec(tmp_path, "data/faq", "data/quiz")
    assert len(result.records) == 14
    assert result.header["sources"]["faq"]["source"] == "data/faq/test.jsonl"
    assert result.header["sources"]["quiz"]["source"] == "data/quiz/quiz.jsonl"
    leaves = flatten(load_spec(tmp_path / "index.yaml"))
    assert [leaf.source for leaf in leaves] == [
        str(tmp_path / "data" / "faq" / "test.jsonl"),
        str(tmp_path / "data" / "quiz" / "quiz.jsonl"),
    ]


# --------------------------------------------------------------------------- a whole run

RUN_SPEC = """\
name: hub_run
count: 8
seed: 1
datasets:
  - name: faq
    weight: 1
    adapter: general_qa
    fields: {input: question, target: answer, id: uid}
    scorer: {name: includes}
    source: hf://./data/faq_saved
  - name: quiz
    weight: 1
    adapter: general_qa
    fields: {input: question, target: answer}
    scorer: {name: includes}
    source: data/quiz
"""


@pytest.mark.parametrize("run_mode", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_pytest_run_reads_a_saved_dataset_and_a_folder(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    from pytest_evalindex.testing import FakeOpenAI

    save_dataset_dict(pytester.path / "data" / "faq_saved", {"test": FAQ_ROWS})
    quiz = [{"question": f"Say the word {word}", "answer": word} for word in ("red", "blue")]
    write_jsonl(pytester.path / "data" / "quiz" / "test.jsonl", quiz * 3)
    (pytester.path / "index.yaml").write_text(RUN_SPEC, encoding="utf-8")

    def echo(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        question = messages[-1]["content"]
        faq = {row["question"]: row["answer"] for row in FAQ_ROWS}
        return faq.get(question) or question.rsplit(" ", 1)[-1]

    with FakeOpenAI(responder=echo) as server:
        result = pytester.runpytest(
            "--index", "index.yaml", "--index-base-url", server.base_url,
            "--index-model", "m", "--index-json", "out.json", *run_mode,
        )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    data = json.loads((pytester.path / "out.json").read_text())
    assert data["index"]["score"] == 1.0 and data["index"]["count"] == 8
    assert sorted({s["dataset"] for s in data["samples"]}) == ["faq", "quiz"]
    assert all(s["id"].startswith("faq/f") for s in data["samples"] if s["dataset"] == "faq")
