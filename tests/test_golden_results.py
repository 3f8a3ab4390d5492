"""Every example suite, run end to end against a scripted model, gives the stored results.

The stored documents (``tests/golden/<suite>.json``) pin what the plugin computes from the
same answers: outcomes, scores, explanations, tables, metrics and the run's hashes. Timings,
versions and the server's address are left out. A change that moves any of it shows here
as a diff; when the change is meant, regenerate them with
``EVALINDEX_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_results.py`` and review the
diff like code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_valid_results

from pytest_evalindex.spec.index import load_spec
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Record
from pytest_evalindex.testset.sampling import sample_index

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "example_suites").glob("*.yaml"))
GOLDEN = Path(__file__).resolve().parent / "golden"

# run facts that differ from run to run or machine to machine
VOLATILE = {"started_at", "duration_s", "versions", "base_url", "index_file", "latency_s"}


def scripted_answer(record: Record) -> str:
    """Half the records (by a hash of the id) get their target, the rest a wrong answer."""
    right = hashlib.sha256(record.id.encode()).digest()[0] % 2 == 0
    target = record.target[0] if isinstance(record.target, list) else record.target
    if right and target:
        return str(target)
    return "I do not know."


def stable(value: Any) -> Any:
    """The document without what a rerun on another machine changes."""
    if isinstance(value, dict):
        return {
            key: stable(item)
            for key, item in value.items()
            if key not in VOLATILE and "latency" not in key
        }
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


@pytest.mark.parametrize("suite", SUITES, ids=[s.stem for s in SUITES])
def test_example_suite_results_are_stable(
    suite: Path, pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    records = sample_index(load_spec(suite)).records
    answers = {r.input[-1].content: scripted_answer(r) for r in records}

    def respond(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return answers.get(str(messages[-1]["content"]), "I do not know.")

    out = pytester.path / "results.json"
    with FakeOpenAI(responder=respond) as server:
        # -c: the suite lives in this repository, whose own pytest config must not apply
        result = pytester.runpytest(
            "-c", str(pytester.path / "tox.ini"),
            "--index", str(suite),
            "--index-base-url", server.base_url,
            "--index-model", "scripted",
            "--index-no-cache",
            "--index-json", str(out),
            *run_mode,
        )  # fmt: skip
        asked = server.request_count
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    assert asked == len(records)
    written = json.loads(out.read_text("utf-8"))
    # the whole document, before the volatile facts are left out, is what the schema describes
    assert_valid_results(written)
    document = stable(written)
    golden = GOLDEN / f"{suite.stem}.json"
    if os.environ.get("EVALINDEX_UPDATE_GOLDEN") and not run_mode:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert document == json.loads(golden.read_text("utf-8"))
