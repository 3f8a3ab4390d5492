"""The results document: its types, its JSON Schema, and real files checked against both.

``docs/results.schema.json`` and ``pytest_evalindex.results.schema`` describe the same
document; the first test keeps them from drifting apart. The others validate documents
written by real plugin runs (serial and with xdist): repeats, a run of part of the test set,
shards merged by ``evalindex merge`` and a saved run. The golden-results test validates every
example suite's document (a judge, code) the same way.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_valid_results as validate
from helpers import load_results_schema as load_schema
from jsonschema import Draft202012Validator

from pytest_evalindex.cli import main as cli_main
from pytest_evalindex.results import schema as results_schema
from pytest_evalindex.testing import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "example_suites" / "quickstart.yaml"


def typed_dicts() -> dict[str, type]:
    return {
        name: value
        for name, value in vars(results_schema).items()
        if isinstance(value, type) and typing.is_typeddict(value)
    }


def test_the_json_schema_is_a_valid_schema() -> None:
    Draft202012Validator.check_schema(load_schema())


def test_typed_dicts_and_json_schema_have_the_same_keys() -> None:
    schema = load_schema()
    definitions = {"Results": schema, **schema["$defs"]}
    types = typed_dicts()
    assert set(types) == set(definitions)
    for name, typed in types.items():
        definition = definitions[name]
        keys = list(typing.get_type_hints(typed))
        assert list(definition["properties"]) == keys, name
        required = typed.__required_keys__  # type: ignore[attr-defined]
        assert set(definition["required"]) == set(required), name


def test_the_schema_refuses_what_is_not_a_results_document() -> None:
    validator = Draft202012Validator(load_schema())
    assert not validator.is_valid({"schema_version": 1})
    document = json.loads((ROOT / "tests" / "golden" / "quickstart.json").read_text("utf-8"))
    document["samples"][0]["outcome"] = "maybe"
    assert any("maybe" in e.message for e in validator.iter_errors(document))


def run_plugin(
    pytester: pytest.Pytester, server: FakeOpenAI, out: Path, *args: str
) -> pytest.RunResult:
    return pytester.runpytest(
        "-c", str(pytester.path / "tox.ini"),
        "--index", str(QUICKSTART),
        "--index-base-url", server.base_url,
        "--index-model", "scripted",
        "--index-no-cache",
        "--index-json", str(out),
        *args,
    )  # fmt: skip


def respond(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    # right on some records, wrong on others: both outcomes in every document
    return "Na" if "sodium" in str(messages[-1]["content"]) else "4"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--index-repeat", "2"], id="repeats"),
        pytest.param(["-k", "facts"], id="partial"),
        pytest.param(["--index-save", "schema"], id="saved"),
    ],
)
def test_results_files_of_real_runs_match_the_schema(
    pytester: pytest.Pytester, run_mode: list[str], args: list[str]
) -> None:
    out = pytester.path / "results.json"
    with FakeOpenAI(responder=respond) as server:
        result = run_plugin(pytester, server, out, *args, *run_mode)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()
    document = json.loads(out.read_text("utf-8"))
    validate(document)
    if "--index-repeat" in args:
        assert all(len(sample["repeats"]) == 2 for sample in document["samples"])
    if "-k" in args:
        assert document["run"]["partial"]["why"] == "-k"
    if "--index-save" in args:
        (saved,) = (pytester.path / ".evalindex" / "runs").glob("*/*.json")
        saved_document = json.loads(saved.read_text("utf-8"))
        validate(saved_document)
        assert saved_document["run"]["saved"]["name"] == "schema"


def test_merged_shards_match_the_schema(pytester: pytest.Pytester, run_mode: list[str]) -> None:
    parts = [pytester.path / f"shard{i}.json" for i in (1, 2)]
    with FakeOpenAI(responder=respond) as server:
        for i, part in enumerate(parts, start=1):
            result = run_plugin(pytester, server, part, "--index-shard", f"{i}/2", *run_mode)
            assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    for part in parts:
        validate(json.loads(part.read_text("utf-8")))
    merged = pytester.path / "all.json"
    assert cli_main(["merge", *map(str, parts), "-o", str(merged)]) == 0
    document = json.loads(merged.read_text("utf-8"))
    validate(document)
    assert document["run"]["shards"] == 2 and "shard" not in document["run"]
