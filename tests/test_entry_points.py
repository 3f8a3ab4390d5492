"""Scorers and adapters of other installed distributions, found through entry points.

Each test installs a real distribution the way pip leaves one on disk: a package and its
``*.dist-info`` folder (METADATA and entry_points.txt) in a directory on the path, which
``importlib.metadata`` discovers like any site-packages entry.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
from helpers import assert_outcomes

from pytest_evalindex.data.adapters import get_adapter, known_adapters
from pytest_evalindex.entry_points import ShadowedEntryPointWarning
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import resolve_scorer
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Message, Record, ScorerRef

EXTENSION = '''\
"""A third-party extension: one scorer and one benchmark adapter."""
from pytest_evalindex.data.adapters import BaseAdapter, make_record
from pytest_evalindex.testset.records import ScorerRef
from pytest_evalindex.scoring import Score


def shouted(response, record, *, word="YES"):
    """Passes when the answer contains ``word`` in capitals."""
    if word in response:
        return Score(value=1.0, explanation=f"found {word}")
    return 0.0, f"no {word} in the answer"


class Riddles(BaseAdapter):
    name = "riddles"
    default_scorer = ScorerRef(name="shouted", args={"word": "OUI"})

    def record_id(self, row, position):
        return row["key"]

    def to_record(self, row, position, leaf):
        return make_record(leaf, self.record_id(row, position), user=row["riddle"], adapter=self)


ADAPTER = Riddles()
NOT_A_SCORER = 42
'''


def install(root: Path, dist: str, entry_points: dict[str, dict[str, str]]) -> Path:
    """Lay out distribution ``dist`` (its module ``<dist>_ext``) under ``root``."""
    module = f"{dist}_ext"
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(EXTENSION, "utf-8")
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", "utf-8")
    text = ""
    for group, names in entry_points.items():
        text += f"[{group}]\n" + "".join(
            f"{name} = {value.format(module=module)}\n" for name, value in names.items()
        )
    (info / "entry_points.txt").write_text(text, "utf-8")
    return root


GOOD = {
    "pytest_evalindex.scorers": {
        "shouted": "{module}:shouted",
        "exact_match": "{module}:shouted",  # a built-in name: never used
    },
    "pytest_evalindex.adapters": {"riddles": "{module}:ADAPTER"},
}


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A directory on sys.path and PYTHONPATH (for subprocesses and xdist workers)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


def record() -> Record:
    return Record(
        id="r/1",
        dataset="r",
        input=[Message(role="user", content="?")],
        scorer=ScorerRef(name="shouted"),
    )


def test_installed_scorer_resolves_with_arguments(on_path: Path) -> None:
    install(on_path, "riddle_dist", GOOD)
    with pytest.warns(
        ShadowedEntryPointWarning, match="'exact_match' of distribution 'riddle_dist'"
    ):
        bound = resolve_scorer(ScorerRef(name="shouted", args={"word": "OK"}))
    assert bound(response="it is OK", record=record()).value == 1.0
    missed = bound(response="it is ok", record=record())
    assert (missed.value, missed.explanation) == (0.0, "no OK in the answer")


def test_built_in_name_wins_without_looking_at_entry_points(on_path: Path) -> None:
    install(on_path, "riddle_dist", GOOD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a built-in name never even scans the entry points
        bound = resolve_scorer(ScorerRef(name="exact_match"))
    assert bound.function.__module__ == "pytest_evalindex.scoring.basic"


def test_installed_adapter_is_found_and_listed(on_path: Path) -> None:
    install(on_path, "riddle_dist", GOOD)
    adapter = get_adapter("riddles")
    assert adapter is not None and adapter.name == "riddles"
    assert type(adapter).__module__ == "riddle_dist_ext"
    assert "riddles" in known_adapters() and "general_qa" in known_adapters()
    assert get_adapter("general_qa").__module__ == "pytest_evalindex.data.adapters.general_qa"  # type: ignore[union-attr]


def test_unknown_scorer_names_installed_ones(on_path: Path) -> None:
    install(on_path, "riddle_dist", GOOD)
    with pytest.raises(EvalIndexError) as info, pytest.warns(ShadowedEntryPointWarning):
        resolve_scorer(ScorerRef(name="shoutd"), file="spec.yaml", field="datasets[0].scorer")
    assert info.value.format() == (
        "spec.yaml: datasets[0].scorer.name: unknown scorer 'shoutd' (did you mean 'shouted'?); "
        "built-in scorers are choice, code, exact_match, ifeval, includes, json, judge, math, "
        "numeric, regex; installed distributions offer shouted, or name your own function as "
        "'package.module:function'"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "riddle_dist_ext:missing",
            "scorer 'bad' of distribution 'riddle_dist' cannot be loaded from "
            "'riddle_dist_ext:missing': AttributeError: module 'riddle_dist_ext' has no "
            "attribute 'missing'",
        ),
        (
            "no_such_module:f",
            "scorer 'bad' of distribution 'riddle_dist' cannot be loaded from "
            "'no_such_module:f': ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (
            "riddle_dist_ext:NOT_A_SCORER",
            "scorer 'bad' of distribution 'riddle_dist' points at "
            "'riddle_dist_ext:NOT_A_SCORER', a int, not a function",
        ),
    ],
)
def test_broken_scorer_entry_point_names_the_distribution(
    on_path: Path, value: str, expected: str
) -> None:
    install(on_path, "riddle_dist", {"pytest_evalindex.scorers": {"bad": value}})
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name="bad"), file="spec.yaml")
    assert info.value.format() == f"spec.yaml: scorer.name: {expected}"


def test_adapter_entry_point_must_be_an_adapter(on_path: Path) -> None:
    install(on_path, "riddle_dist", {"pytest_evalindex.adapters": {"bad": "{module}:shouted"}})
    with pytest.raises(EvalIndexError, match=r"adapter 'bad' of distribution 'riddle_dist' points"):
        get_adapter("bad")


def test_same_name_from_two_distributions_is_an_error(on_path: Path) -> None:
    install(on_path, "one_dist", {"pytest_evalindex.scorers": {"twin": "{module}:shouted"}})
    install(on_path, "two_dist", {"pytest_evalindex.scorers": {"twin": "{module}:shouted"}})
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name="twin"))
    assert str(info.value) == (
        "scorer.name: scorer 'twin' is offered by more than one installed distribution "
        "('one_dist' and 'two_dist'); uninstall one of them"
    )


SPEC = """
name: riddle_index
datasets:
  - name: riddles
    source: riddles.jsonl
  - name: plain
    adapter: general_qa
    source: plain.jsonl
    fields: {input: question, target: answer}
    scorer: {name: shouted, args: {word: "YES"}}
"""


def test_a_run_uses_installed_scorer_and_adapter(
    pytester: pytest.Pytester, on_path: Path, run_mode: list[str]
) -> None:
    # without the entry point that shadows a built-in: inner runs turn its warning into an error
    install(
        on_path,
        "riddle_dist",
        {
            "pytest_evalindex.scorers": {"shouted": "{module}:shouted"},
            "pytest_evalindex.adapters": {"riddles": "{module}:ADAPTER"},
        },
    )
    pytester.makefile(".yaml", riddles=SPEC)
    rows = [{"key": "a", "riddle": "French yes?"}, {"key": "b", "riddle": "German yes?"}]
    (pytester.path / "riddles.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plain = [{"question": "Shout yes", "answer": "-"}, {"question": "Whisper", "answer": "-"}]
    (pytester.path / "plain.jsonl").write_text("".join(json.dumps(r) + "\n" for r in plain))
    replies = {"French yes?": "OUI", "German yes?": "ja", "Shout yes": "YES", "Whisper": "yes"}
    with FakeOpenAI(answers=replies) as server:
        result = pytester.runpytest_subprocess(
            "--index",
            "riddles.yaml",
            "--index-base-url",
            server.base_url,
            "--index-json",
            "out.json",
            *run_mode,
        )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert_outcomes(result, passed=2, missed=2)
    samples = json.loads((pytester.path / "out.json").read_text())["samples"]
    assert {s["id"]: s["outcome"] for s in samples} == {
        "riddles/a": "passed",
        "riddles/b": "missed",
        "plain/0": "passed",
        "plain/1": "missed",
    }
    assert {s["id"]: s["explanation"] for s in samples}["riddles/b"] == "no OUI in the answer"


def test_a_broken_entry_point_stops_the_run_before_any_request(
    pytester: pytest.Pytester, on_path: Path, run_mode: list[str]
) -> None:
    install(on_path, "riddle_dist", {"pytest_evalindex.adapters": {"riddles": "{module}:gone"}})
    pytester.makefile(".yaml", riddles=SPEC)
    with FakeOpenAI(default="x") as server:
        result = pytester.runpytest_subprocess(
            "--index", "riddles.yaml", "--index-base-url", server.base_url, *run_mode
        )
        assert server.requests == []
    assert result.ret == 4
    err = result.stderr.str()
    assert "adapter 'riddles' of distribution 'riddle_dist' cannot be loaded from " in err
    assert "Traceback" not in err + result.stdout.str()
