"""Sharing an index on a hub: publish, upload, run by id, offline reruns, revisions, a
corrupted download and a missing token, against a loopback stand-in for the hub."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.jsonl import write_evalscope_collection
from tests.helpers import assert_outcomes, assert_valid_results
from tests.hub_standin import StandInHub, StandInModelScope

QUICKSTART = Path(__file__).resolve().parent.parent / "example_suites" / "quickstart.yaml"
REPO = "alice/quick"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInHub]:
    with StandInHub() as standin:
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        monkeypatch.setenv("HF_TOKEN", standin.token)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            monkeypatch.delenv(name, raising=False)
        yield standin


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(default="no idea") as fake:
        yield fake


def evalindex(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The command in its own process, as a user runs it (it reads HF_* afresh)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def publish_and_upload(where: Path, index: Path = QUICKSTART, repo: str = REPO) -> str:
    """Publish ``index`` into ``where`` and upload it; the commit made."""
    done = evalindex(
        "publish", str(index), "--to", str(where), "--license", "mit",
        "--hub", "hf", "--repo", repo, cwd=where.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith(f"evalindex: uploaded; run it with pytest --index hf://{repo}@")
    return line.rsplit("@", 1)[1]


def run_args(server: FakeOpenAI, index: str) -> list[str]:
    return ["--index", index, "--index-base-url", server.base_url, "--index-model", "m"]


def test_publish_upload_run_by_id_then_offline(
    pytester: pytest.Pytester,
    hub: StandInHub,
    server: FakeOpenAI,
    tmp_path: Path,
    run_mode: list[str],
) -> None:
    folder = tmp_path / "published"
    commit = publish_and_upload(folder)
    assert hub.requests("POST")[:1] == ["/api/repos/create"]
    assert f"/api/datasets/{REPO}/commit/main" in hub.requests("POST")
    uploaded = hub.repos[REPO].at("main")
    assert uploaded is not None and uploaded.sha == commit
    on_disk = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert uploaded.files == on_disk

    # another directory: the project that runs it
    hub.log.clear()
    result = pytester.runpytest(
        *run_args(server, f"hf://{REPO}"), "--index-json", "a.json", *run_mode
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=30)
    assert f"/datasets/{REPO}/resolve/{commit}/testset.jsonl" in hub.requests("GET")
    assert not any(path.endswith(".py") for path in hub.requests())
    first = json.loads((pytester.path / "a.json").read_text())
    assert_valid_results(first)
    lock = json.loads((folder / "evalindex.lock.json").read_text())
    assert first["run"]["index_source"] == {
        "id": f"hf://{REPO}@{commit}",
        "hub": "hf",
        "repo": REPO,
        "requested": None,
        "revision": commit,
        "lock_sha256": lock["sha256"],
    }
    local = pytester.path / ".evalindex" / "shared" / "hf" / "alice--quick" / commit
    assert first["run"]["index_file"] == str(local / "testset.jsonl")
    assert (local / "testset.jsonl").read_bytes() == (folder / "testset.jsonl").read_bytes()

    # the hub is gone: the second run is served from the cache
    hub.stop()
    result = pytester.runpytest(
        *run_args(server, f"hf://{REPO}"), "--index-json", "b.json", *run_mode
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=30)
    second = json.loads((pytester.path / "b.json").read_text())
    assert second["run"]["index_source"] == first["run"]["index_source"]
    assert second["run"]["testset_sha256"] == first["run"]["testset_sha256"]


def test_hub_offline_mode_uses_the_cache_without_a_request(
    pytester: pytest.Pytester,
    hub: StandInHub,
    server: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_mode: list[str],
) -> None:
    commit = publish_and_upload(tmp_path / "published")
    args = run_args(server, f"hf://{REPO}@{commit}")
    assert pytester.runpytest(*args).ret == 0
    hub.log.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = pytester.runpytest(*args, "--index-json", "out.json", *run_mode)
    assert result.ret == 0, result.stderr.str()
    assert hub.log == []
    source = json.loads((pytester.path / "out.json").read_text())["run"]["index_source"]
    assert source["requested"] == commit and source["revision"] == commit


def test_offline_before_any_download_is_one_clear_error(
    pytester: pytest.Pytester, hub: StandInHub, server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = pytester.runpytest(*run_args(server, f"hf://{REPO}"))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*hf://alice/quick: not in the local cache*run once with*"])
    assert server.request_count == 0


def small_spec(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": f"q{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(8)
    ]
    (folder / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = folder / "small.yaml"
    spec.write_text(
        f"name: small\ncount: {count}\nseed: 1\ndatasets:\n"
        "  - name: sums\n    adapter: general_qa\n    source: sums.jsonl\n"
        "    fields: {id: id, input: question, target: answer}\n    scorer: numeric\n"
    )
    return spec


def test_a_different_revision_is_not_compared_unless_asked(
    pytester: pytest.Pytester, hub: StandInHub, server: FakeOpenAI, tmp_path: Path
) -> None:
    first = publish_and_upload(tmp_path / "v1", small_spec(tmp_path / "src1", 4), "alice/small")
    second = publish_and_upload(tmp_path / "v2", small_spec(tmp_path / "src2", 5), "alice/small")
    assert first != second

    pinned = pytester.runpytest(*run_args(server, f"hf://alice/small@{first}"), "--index-save")
    assert pinned.ret == 0, pinned.stderr.str()
    assert_outcomes(pinned, missed=4)
    requests = server.request_count

    latest = run_args(server, "hf://alice/small")
    refused = pytester.runpytest(*latest, "--index-compare")
    assert refused.ret == 4
    refused.stderr.fnmatch_lines(
        [
            f"*refused: the baseline ran hf://alice/small at revision {first[:12]}, this run "
            f"at {second[:12]}: pin the baseline's revision (--index hf://alice/small@{first})*"
        ]
    )
    assert server.request_count == requests

    asked = pytester.runpytest(
        *latest, "--index-compare", "--index-compare-intersection", "--index-json", "out.json"
    )
    assert asked.ret == 0, asked.stdout.str() + asked.stderr.str()
    assert_outcomes(asked, missed=5)
    document = json.loads((pytester.path / "out.json").read_text())
    assert document["run"]["index_source"]["revision"] == second


def test_a_corrupted_download_is_refused_and_nothing_runs(
    pytester: pytest.Pytester,
    hub: StandInHub,
    server: FakeOpenAI,
    tmp_path: Path,
    run_mode: list[str],
) -> None:
    commit = publish_and_upload(tmp_path / "published")
    good = (tmp_path / "published" / "testset.jsonl").read_bytes()
    hub.corrupted[(REPO, "testset.jsonl")] = good.replace(b'"weight": 0.4', b'"weight": 0.9', 1)
    result = pytester.runpytest(*run_args(server, f"hf://{REPO}"), *run_mode)
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            f"*hf://{REPO} (revision {commit}): the test set does not match its lock "
            "evalindex.lock.json*nothing was run*"
        ]
    )
    assert server.request_count == 0
    # the bad copy stays refused on the next run too
    again = pytester.runpytest(*run_args(server, f"hf://{REPO}"))
    assert again.ret == 4 and server.request_count == 0


def test_upload_without_a_token_is_refused_and_the_folder_is_kept(
    hub: StandInHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_TOKEN")
    folder = tmp_path / "published"
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(folder), "--hub", "hf", "--repo", REPO,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 4
    assert "no Hugging Face token; set HF_TOKEN or log in with `hf auth login`" in done.stderr
    assert hub.log == []
    assert (folder / "evalindex.lock.json").is_file()


def test_the_token_is_never_written(hub: StandInHub, tmp_path: Path) -> None:
    publish_and_upload(tmp_path / "published")
    written = [
        p for p in tmp_path.rglob("*") if p.is_file() and hub.token.encode() in p.read_bytes()
    ]
    assert written == []


def test_a_wrong_token_is_the_hubs_refusal(
    hub: StandInHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(tmp_path / "p"), "--hub", "hf", "--repo", REPO,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 4
    assert "--hub hf: the hub refused the token (401) for alice/quick" in done.stderr
    assert REPO not in hub.repos


def test_a_published_evalscope_collection_runs_by_id(
    pytester: pytest.Pytester,
    hub: StandInHub,
    server: FakeOpenAI,
    tmp_path: Path,
    run_mode: list[str],
) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    records = sample_index(load_spec(QUICKSTART), count=6).records
    collection = tmp_path / "collection.jsonl"
    write_evalscope_collection(collection, records)
    commit = hub.commit("bob/collection", {"collection.jsonl": collection.read_bytes()})
    result = pytester.runpytest(
        *run_args(server, "hf://bob/collection"), "--index-json", "out.json", *run_mode
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=6)
    source: dict[str, Any] = json.loads((pytester.path / "out.json").read_text())["run"][
        "index_source"
    ]
    assert source["revision"] == commit and source["lock_sha256"] is None


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ("hf://alice/none", "*no dataset alice/none on the Hugging Face Hub*"),
        (f"hf://{REPO}@nope", f"*{REPO} has no revision 'nope'*"),
        ("hf://just-a-name", "*a shared index is hf://OWNER/NAME or hf://OWNER/NAME@REVISION*"),
    ],
)
def test_ids_the_hub_does_not_have(
    pytester: pytest.Pytester,
    hub: StandInHub,
    server: FakeOpenAI,
    tmp_path: Path,
    index: str,
    message: str,
) -> None:
    publish_and_upload(tmp_path / "published")
    result = pytester.runpytest(*run_args(server, index))
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
    assert server.request_count == 0


def test_modelscope_without_its_sdk_says_how_to_install_it(
    pytester: pytest.Pytester, server: FakeOpenAI, tmp_path: Path
) -> None:
    # the SDK made unimportable, whether or not this machine has it
    block = "import sys\nsys.modules['modelscope'] = None\n"
    pytester.makepyfile(without_modelscope=block)
    pytester.syspathinsert()
    args = run_args(server, "modelscope://alice/quick@v1")
    result = pytester.runpytest("-p", "without_modelscope", *args)
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*modelscope://alice/quick@v1 needs the modelscope SDK: pip install*[modelscope]*"]
    )
    command = f"{block}from pytest_evalindex.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    done = subprocess.run(
        [
            sys.executable, "-c", command, "publish", str(QUICKSTART), "--to", str(tmp_path / "p"),
            "--license", "mit", "--hub", "modelscope", "--repo", REPO,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 4
    assert "--hub modelscope needs the modelscope SDK" in done.stderr
    assert (tmp_path / "p" / "evalindex.lock.json").is_file()


# --------------------------------------------------------------------------- ModelScope
# These need the modelscope SDK (in the dev extra); where it is not installed they are
# skipped, and the test above covers everything up to the SDK call.


@pytest.fixture
def modelscope_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInModelScope]:
    """An empty ModelScope stand-in the SDK points at, with no token set."""
    pytest.importorskip("modelscope", reason="the modelscope SDK is an optional extra")
    with StandInModelScope() as standin:
        monkeypatch.setenv("MODELSCOPE_ENDPOINT", standin.url)
        monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
        monkeypatch.delenv("MODELSCOPE_API_TOKEN", raising=False)
        monkeypatch.setenv("MODELSCOPE_HOME", str(tmp_path / "ms-home"))  # no saved login
        yield standin


@pytest.fixture
def modelscope(modelscope_hub: StandInModelScope, tmp_path: Path) -> StandInModelScope:
    """The stand-in holding the quickstart index, published, as ``REPO`` (master and v1)."""
    folder = tmp_path / "published"
    done = evalindex("publish", str(QUICKSTART), "--to", str(folder), "--license", "mit",
                     cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
             if p.is_file()}  # fmt: skip
    modelscope_hub.repos[REPO] = {"master": files, "v1": files}
    return modelscope_hub


def test_modelscope_download_run_and_offline_rerun(
    pytester: pytest.Pytester,
    modelscope: StandInModelScope,
    server: FakeOpenAI,
    run_mode: list[str],
) -> None:
    args = run_args(server, f"modelscope://{REPO}")
    result = pytester.runpytest(*args, "--index-json", "a.json", *run_mode)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=30)
    assert any("FilePath=testset.jsonl" in path for _, path in modelscope.log)
    source = json.loads((pytester.path / "a.json").read_text())["run"]["index_source"]
    assert (source["hub"], source["repo"], source["requested"], source["revision"]) == (
        "modelscope", REPO, None, "master",
    )  # fmt: skip
    modelscope.stop()
    again = pytester.runpytest(*args, "--index-json", "b.json", *run_mode)
    assert again.ret == 0, again.stdout.str() + again.stderr.str()
    assert_outcomes(again, missed=30)
    second = json.loads((pytester.path / "b.json").read_text())["run"]["index_source"]
    assert second == source


def test_modelscope_corrupted_download_is_refused(
    pytester: pytest.Pytester, modelscope: StandInModelScope, server: FakeOpenAI
) -> None:
    good = modelscope.repos[REPO]["v1"]["testset.jsonl"]
    modelscope.corrupted[(REPO, "testset.jsonl")] = good.replace(b"0.4", b"0.9", 1)
    result = pytester.runpytest(*run_args(server, f"modelscope://{REPO}@v1"))
    assert result.ret == 4
    # the SDK checks each file against the sha256 the hub lists, before the lock is read
    result.stderr.fnmatch_lines([f"*modelscope://{REPO}@v1: download failed: *failed to download*"])
    assert server.request_count == 0


def test_modelscope_upload_without_a_token_is_refused(
    modelscope: StandInModelScope, tmp_path: Path
) -> None:
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(tmp_path / "p"), "--license", "mit",
        "--hub", "modelscope", "--repo", REPO, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 4
    assert "no ModelScope token; set MODELSCOPE_API_TOKEN or log in" in done.stderr
    assert [m for m, _ in modelscope.log if m == "POST"] == []
    assert (tmp_path / "p" / "evalindex.lock.json").is_file()


def test_modelscope_publish_upload_run_by_id_then_offline(
    pytester: pytest.Pytester,
    modelscope_hub: StandInModelScope,
    server: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_mode: list[str],
) -> None:
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", modelscope_hub.token)
    folder = tmp_path / "published"
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(folder), "--license", "mit",
        "--hub", "modelscope", "--repo", REPO, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == f"evalindex: uploaded; run it with pytest --index modelscope://{REPO}@master"
    # create, pre-sign the large files, send them, then one commit on master
    posts = modelscope_hub.paths("POST")
    assert posts[0] == "/api/v1/datasets"
    assert f"/api/v1/repos/datasets/{REPO}/info/lfs/objects/batch" in posts
    assert posts[-1] == f"/api/v1/repos/datasets/{REPO}/commit/master"
    assert len(modelscope_hub.paths("PUT")) == 2  # testset.jsonl and the collection
    assert modelscope_hub.licenses[REPO] == "MIT"  # the card's license, in ModelScope's name
    on_disk = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
               if p.is_file()}  # fmt: skip
    assert modelscope_hub.repos[REPO]["master"] == on_disk  # and the folder holds only those
    assert sorted(on_disk) == [
        "README.md", "evalindex.lock.json", "evalscope/collection.jsonl", "spec.yaml",
        "testset.jsonl",
    ]  # fmt: skip
    seen = json.dumps(modelscope_hub.requests_seen)
    assert modelscope_hub.token not in seen  # the log keeps no token

    # another directory: the project that runs it, from what was uploaded
    modelscope_hub.log.clear()
    args = run_args(server, f"modelscope://{REPO}")
    result = pytester.runpytest(*args, "--index-json", "a.json", *run_mode)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=30)
    assert any("FilePath=testset.jsonl" in path for _, path in modelscope_hub.log)
    first = json.loads((pytester.path / "a.json").read_text())
    assert_valid_results(first)
    lock = json.loads((folder / "evalindex.lock.json").read_text())
    assert first["run"]["index_source"] == {
        "id": f"modelscope://{REPO}@master",
        "hub": "modelscope",
        "repo": REPO,
        "requested": None,
        "revision": "master",
        "lock_sha256": lock["sha256"],
    }
    local = pytester.path / ".evalindex" / "shared" / "modelscope" / "alice--quick" / "master"
    assert (local / "testset.jsonl").read_bytes() == (folder / "testset.jsonl").read_bytes()

    # the hub is gone: the rerun is served from the copy the first run kept
    modelscope_hub.stop()
    result = pytester.runpytest(*args, "--index-json", "b.json", *run_mode)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=30)
    second = json.loads((pytester.path / "b.json").read_text())
    assert second["run"]["index_source"] == first["run"]["index_source"]
    assert second["run"]["testset_sha256"] == first["run"]["testset_sha256"]


def test_modelscope_is_never_told_a_license_that_was_not_stated(
    modelscope_hub: StandInModelScope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", modelscope_hub.token)
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(tmp_path / "p"), "--hub", "modelscope",
        "--repo", REPO, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the card says license: unknown" in done.stderr
    assert (
        "ModelScope lists a dataset created without a license under its default "
        "(Apache-2.0)" in done.stderr
    )
    assert modelscope_hub.licenses[REPO] == "Apache-2.0"  # the SDK's default, said so


def test_modelscope_refusing_the_token_is_one_clear_error(
    modelscope_hub: StandInModelScope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSCOPE_API_TOKEN", "ms_not_the_right_one")
    done = evalindex(
        "publish", str(QUICKSTART), "--to", str(tmp_path / "p"), "--license", "mit",
        "--hub", "modelscope", "--repo", REPO, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 4
    assert (
        f"--hub modelscope: ModelScope refused the token (401) for {REPO}: check "
        "MODELSCOPE_API_TOKEN or `modelscope login`"
    ) in done.stderr
    assert "ms_not_the_right_one" not in done.stderr + done.stdout
    assert modelscope_hub.paths("POST") == ["/api/v1/datasets"]  # refused at the first step
    assert modelscope_hub.repos == {}
    assert (tmp_path / "p" / "evalindex.lock.json").is_file()


def test_a_community_evalscope_collection_runs_by_its_modelscope_id(
    pytester: pytest.Pytester,
    modelscope: StandInModelScope,
    server: FakeOpenAI,
    tmp_path: Path,
    run_mode: list[str],
) -> None:
    # the layout of a collection uploaded as the EvalScope docs show: one .jsonl, no lock
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    collection = tmp_path / "your_index.jsonl"
    write_evalscope_collection(collection, sample_index(load_spec(QUICKSTART), count=5).records)
    repo = "evalscope/R1-Distill-Math-Evaluation-Index"
    modelscope.repos[repo] = {"master": {"your_index.jsonl": collection.read_bytes()}}
    result = pytester.runpytest(
        *run_args(server, f"modelscope://{repo}"), "--index-json", "out.json", *run_mode
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, missed=5)
    source = json.loads((pytester.path / "out.json").read_text())["run"]["index_source"]
    assert source["repo"] == repo and source["lock_sha256"] is None
