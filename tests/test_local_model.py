"""The embedded model: a real llama.cpp server with SmolLM2-135M on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.run import local_model
from pytest_evalindex.run.client import ChatClient
from pytest_evalindex.run.local_model import LOCAL_MODEL_NAME, LocalModelServer

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def local_server() -> Iterator[LocalModelServer]:
    server = LocalModelServer().start()
    yield server
    server.stop()


def test_the_extra_is_installed_here() -> None:
    # CI installs the `local` extra; every test below needs the real model
    assert local_model.missing_parts() == []
    assert local_model.model_path().stat().st_size > 50_000_000


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")
    assert not local_model.is_available()
    with pytest.raises(EvalIndexError, match=r"pip install 'pytest-evalindex\[local\]'") as info:
        local_model.model_path()
    assert "EVALINDEX_EMBEDDED_MODEL=off is set" in str(info.value)


def test_server_answers_chat_requests(local_server: LocalModelServer) -> None:
    client = ChatClient(base_url=local_server.base_url, model=LOCAL_MODEL_NAME,
                        generation={"max_tokens": 16, "temperature": 0})  # fmt: skip
    answer = client.chat([{"role": "user", "content": "Say hello."}])
    client.close()
    assert answer.content.strip()
    assert answer.usage["completion_tokens"] > 0


def test_server_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from pytest_evalindex.run.local_model import LocalModelServer\n"
        "server = LocalModelServer().start()\n"
        "print(server.base_url, flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert owner.stdout is not None
    base_url = owner.stdout.readline().strip()
    assert httpx.get(f"{base_url}/models", timeout=5).status_code == 200
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base_url}/models", timeout=1)
        except httpx.HTTPError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the model server outlived the process that started it")


def test_quickstart_runs_end_to_end_on_the_embedded_model(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    """The README's main job: the quickstart index against the real embedded model."""
    result = pytester.runpytest_subprocess(
        "--index", str(ROOT / "example_suites" / "quickstart.yaml"),
        "--index-model", "local", "--index-json", "results.json", "-p", "no:cacheprovider",
        "--index-cache-dir", str(pytester.path / "cache"), *run_mode,
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*evalindex: quickstart*", "index quickstart: *count 30*"])
    data = json.loads((pytester.path / "results.json").read_text())
    assert data["run"]["model"] == LOCAL_MODEL_NAME
    assert (data["index"]["count"], data["index"]["errors"]) == (30, 0)
    assert all(s["response"] for s in data["samples"])


def test_no_endpoint_and_no_extra_is_one_clear_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, run_mode: list[str]
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # as on a machine without the extra (the plugin's own switch for exactly that)
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")
    pytester.makefile(".yaml", spec="name: s\ndatasets:\n  - name: d\n    adapter: general_qa\n"
                      "    source: d.jsonl\n    fields: {input: q, target: a}\n")  # fmt: skip
    (pytester.path / "d.jsonl").write_text('{"q": "x", "a": "y"}\n{"q": "z", "a": "w"}\n')
    result = pytester.runpytest_subprocess(
        "--index", "spec.yaml", "-p", "no:cacheprovider", *run_mode
    )
    assert result.ret != 0
    out = result.stdout.str()
    assert "pip install 'pytest-evalindex[local]'" in out
    assert "Interrupted: evalindex: no model endpoint configured" in out
