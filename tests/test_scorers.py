"""Scorers: the registry, custom scorer loading, coercion, and every built-in scorer."""

from __future__ import annotations

import math
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import (
    BUILTIN_SCORERS,
    BoundScorer,
    Score,
    ScorerError,
    coerce_score,
    known_scorers,
    resolve_scorer,
    run_scorer,
)
from pytest_evalindex.scoring.choice import extract_choice
from pytest_evalindex.scoring.numeric import extract_number, parse_numbers
from pytest_evalindex.testset.records import Message, Record, ScorerRef


def make_record(
    target: str | list[str] | None = None,
    choices: list[str] | None = None,
    scorer: str = "exact_match",
) -> Record:
    return Record(
        id="demo/1",
        dataset="demo",
        input=[Message(role="user", content="question")],
        target=target,
        choices=choices,
        scorer=ScorerRef(name=scorer),
    )


def score_with(name: str, response: str, target: str | list[str] | None, **args: Any) -> Score:
    choices = args.pop("choices", None)
    scorer = resolve_scorer(ScorerRef(name=name, args=args))
    return scorer(response, make_record(target, choices, name))


# registry


def test_known_scorers_lists_every_builtin_sorted() -> None:
    names = known_scorers()
    assert names == sorted(names)
    assert {"exact_match", "includes", "regex", "choice", "numeric"} <= set(names)


@pytest.mark.parametrize("name", sorted(BUILTIN_SCORERS))
def test_every_registry_entry_resolves_to_a_callable(name: str) -> None:
    # scorers that ask for run context (the judge) get it; the rest ignore it
    bound = resolve_scorer(ScorerRef(name=name), context={"judge_model": lambda messages: ""})
    assert isinstance(bound, BoundScorer)
    assert callable(bound.function)
    assert bound.name == name


def test_unknown_builtin_suggests_close_names_and_lists_known() -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name="exact_mach"), file="spec.yaml", field="datasets[0].scorer")
    message = str(info.value)
    assert "unknown scorer 'exact_mach'" in message
    assert "did you mean 'exact_match'" in message
    assert "includes" in message and "numeric" in message
    assert message.startswith("spec.yaml: datasets[0].scorer.name:")


def test_unknown_name_without_close_match_has_no_suggestion() -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name="zzzzzz"))
    assert "did you mean" not in str(info.value)
    assert "package.module:function" in str(info.value)


def test_unknown_argument_is_rejected_early_with_the_accepted_ones() -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name="regex", args={"patern": "x"}))
    message = str(info.value)
    assert "patern" in message
    assert "pattern" in message and "flags" in message and "mode" in message
    assert info.value.field == "scorer.args"


def test_choice_takes_no_arguments() -> None:
    with pytest.raises(EvalIndexError, match="takes no arguments"):
        resolve_scorer(ScorerRef(name="choice", args={"letters": "AB"}))


def test_scorer_error_is_not_bad_input() -> None:
    assert not issubclass(ScorerError, EvalIndexError)
    assert issubclass(ScorerError, Exception)


# custom scorers

CUSTOM_MODULE = """
from pytest_evalindex.scoring import Score

def as_score(response, record):
    return Score(1.0 if response == record.target else 0.0, "compared", extracted=response)

def as_bool(response, record):
    return response == "yes"

def as_tuple(response, record):
    return 0.5, "half right"

def as_dict(response, record):
    return {"score": 0.25, "explanation": "a quarter", "metrics": {"length": len(response)}}

def with_args(response, record, *, bonus=0.0):
    return min(1.0, 0.5 + bonus)

def too_big(response, record):
    return 1.5

def raises(response, record):
    raise ValueError("cannot parse")

NOT_CALLABLE = 3

class Holder:
    @staticmethod
    def nested(response, record):
        return True
"""


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_scorers_mod.py").write_text(textwrap.dedent(CUSTOM_MODULE), "utf-8")
    (tmp_path / "broken_scorers_mod.py").write_text("raise RuntimeError('boom')\n", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_scorers_mod"


@pytest.mark.parametrize(
    ("function", "response", "value", "explanation"),
    [
        ("as_score", "Paris", 1.0, "compared"),
        ("as_bool", "yes", 1.0, ""),
        ("as_bool", "no", 0.0, ""),
        ("as_tuple", "x", 0.5, "half right"),
        ("as_dict", "abc", 0.25, "a quarter"),
        ("Holder.nested", "x", 1.0, ""),
    ],
)
def test_custom_scorer_return_shapes(
    custom_module: str, function: str, response: str, value: float, explanation: str
) -> None:
    scorer = resolve_scorer(ScorerRef(name=f"{custom_module}:{function}"))
    score = scorer(response, make_record("Paris"))
    assert score.value == value
    assert score.explanation == explanation


def test_custom_scorer_metrics_and_args(custom_module: str) -> None:
    score = resolve_scorer(ScorerRef(name=f"{custom_module}:as_dict"))("abcd", make_record("x"))
    assert score.metrics == {"length": 4.0}
    bound = resolve_scorer(ScorerRef(name=f"{custom_module}:with_args", args={"bonus": 0.25}))
    assert bound("x", make_record("x")).value == 0.75


def test_custom_scorer_bad_value_and_exception_become_scorer_errors(custom_module: str) -> None:
    too_big = resolve_scorer(ScorerRef(name=f"{custom_module}:too_big"))
    with pytest.raises(ScorerError, match=r"returned score 1\.5; a score must lie in \[0, 1\]"):
        too_big("x", make_record("x"))
    raises = resolve_scorer(ScorerRef(name=f"{custom_module}:raises"))
    with pytest.raises(ScorerError, match="raised ValueError: cannot parse") as info:
        raises("x", make_record("x"))
    assert isinstance(info.value.__cause__, ValueError)
    assert f"{custom_module}:raises" in str(info.value)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("broken_scorers_mod:f", "RuntimeError: boom"),
        ("my_scorers_mod:missing", "has no attribute 'missing'"),
        ("my_scorers_mod:NOT_CALLABLE", "is a int, not a function"),
        ("my_scorers_mod:", "must look like 'package.module:function'"),
        (":as_bool", "must look like 'package.module:function'"),
    ],
)
def test_custom_reference_failures_name_the_reference(
    custom_module: str, reference: str, expected: str
) -> None:
    with pytest.raises(EvalIndexError) as info:
        resolve_scorer(ScorerRef(name=reference), file="index.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("index.yaml: scorer.name:")


def test_custom_scorer_with_unknown_argument_is_rejected(custom_module: str) -> None:
    with pytest.raises(EvalIndexError, match="bonus"):
        resolve_scorer(ScorerRef(name=f"{custom_module}:with_args", args={"bonsu": 1}))


# coerce_score and run_scorer


@pytest.mark.parametrize(
    ("result", "value", "explanation"),
    [
        (Score(0.5, "given"), 0.5, "given"),
        (True, 1.0, ""),
        (False, 0.0, ""),
        (1, 1.0, ""),
        (0, 0.0, ""),
        (0.25, 0.25, ""),
        (Fraction(1, 4), 0.25, ""),
        ((1, "right"), 1.0, "right"),
        ((True, "right"), 1.0, "right"),
        ({"score": 0.75, "explanation": "mostly"}, 0.75, "mostly"),
        ({"value": 0.0}, 0.0, ""),
    ],
)
def test_coerce_score_accepted_shapes(result: Any, value: float, explanation: str) -> None:
    score = coerce_score(result)
    assert score.value == value
    assert type(score.value) is float
    assert score.explanation == explanation


def test_coerce_score_keeps_extracted_and_metrics_as_builtins() -> None:
    score = coerce_score(
        {"score": 1, "explanation": "", "extracted": 42, "metrics": {"loose": Fraction(1, 2)}}
    )
    assert score.extracted == "42"
    assert score.metrics == {"loose": 0.5}
    assert type(score.metrics["loose"]) is float
    assert score.to_dict() == {
        "score": 1.0,
        "explanation": "",
        "extracted": "42",
        "metrics": {"loose": 0.5},
    }


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (1.5, r"1\.5; a score must lie in \[0, 1\]"),
        (-0.1, r"-0\.1; a score must lie"),
        (math.nan, "nan; a score must lie"),
        (Score(2.0, "x"), "2.0; a score must lie"),
        ("1", "returned str '1'; expected a Score"),
        (None, "returned NoneType None"),
        ([1.0], "returned list"),
        ((1.0,), "tuple of 1 items"),
        ((1.0, "a", "b"), "tuple of 3 items"),
        ((1.0, 5), "explanation of type int"),
        (("1", "x"), "score '1' of type str"),
        ({"score": 1, "value": 1}, "exactly one of 'score' or 'value'"),
        ({"explanation": "x"}, "exactly one of 'score' or 'value'"),
        ({"score": 1, "metrics": []}, "metrics of type list"),
        ({"score": 1, "metrics": {"m": "high"}}, "metric 'm' = 'high'"),
        ({"score": 1, "metrics": {"m": math.nan}}, "metric 'm' = nan"),
    ],
)
def test_coerce_score_rejections(result: Any, message: str) -> None:
    with pytest.raises(ScorerError, match=message):
        coerce_score(result, scorer_name="mine")


def test_coerce_score_names_the_scorer() -> None:
    with pytest.raises(ScorerError, match="scorer 'mine' returned"):
        coerce_score(7, scorer_name="mine")


def test_run_scorer_passes_scorer_errors_through_unchanged() -> None:
    original = ScorerError("record has no target")

    def failing(response: str, record: Record) -> Score:
        raise original

    with pytest.raises(ScorerError) as info:
        run_scorer(failing, "x", make_record("x"))
    assert info.value is original


def test_run_scorer_names_plain_functions() -> None:
    def half(response: str, record: Record) -> float:
        return 0.5

    def bad(response: str, record: Record) -> float:
        return 9.0

    assert run_scorer(half, "x", make_record("x")).value == 0.5
    with pytest.raises(ScorerError, match=r"scorer 'bad' returned score 9\.0"):
        run_scorer(bad, "x", make_record("x"))


# exact_match


@pytest.mark.parametrize(
    ("response", "target", "args", "value"),
    [
        ("Paris", "Paris", {}, 1.0),
        ("  Paris \n", "Paris", {}, 1.0),
        ("New   York\tCity", "New York City", {}, 1.0),
        ("paris", "Paris", {}, 0.0),
        ("paris", "Paris", {"ignore_case": True}, 1.0),
        ("Paris.", "Paris", {}, 0.0),
        ("Paris.", "Paris", {"ignore_punctuation": True}, 1.0),
        ("“北京”。", "北京", {"ignore_punctuation": True}, 1.0),
        ("U.S.A.", "usa", {"ignore_punctuation": True, "ignore_case": True}, 1.0),
        ("Paris is the capital", "Paris", {}, 0.0),
        ("Lyon", ["Paris", "Lyon"], {}, 1.0),
        ("Nice", ["Paris", "Lyon"], {}, 0.0),
    ],
)
def test_exact_match(
    response: str, target: str | list[str], args: dict[str, Any], value: float
) -> None:
    assert score_with("exact_match", response, target, **args).value == value


def test_exact_match_explanations() -> None:
    right = score_with("exact_match", " Paris ", "Paris")
    assert right.explanation == "response 'Paris' equals target 'Paris'"
    assert right.extracted == "Paris"
    wrong = score_with("exact_match", "Nice", ["Paris", "Lyon"])
    assert wrong.explanation == "response 'Nice' does not equal target any of ['Paris', 'Lyon']"


def test_missing_target_is_a_scorer_error() -> None:
    for name in ("exact_match", "includes", "regex", "choice", "numeric"):
        with pytest.raises(ScorerError, match=f"has no target for scorer '{name}'"):
            score_with(name, "anything", None)
    with pytest.raises(ScorerError, match="has no target"):
        score_with("exact_match", "anything", [])


# includes


@pytest.mark.parametrize(
    ("response", "target", "args", "value"),
    [
        ("It is Paris.", "Paris", {}, 1.0),
        ("it is paris.", "Paris", {}, 1.0),
        ("it is paris.", "Paris", {"ignore_case": False}, 0.0),
        ("New\nYork", "New York", {}, 1.0),
        ("Barcelona", "Madrid", {}, 0.0),
        ("I would say Lyon", ["Paris", "Lyon"], {}, 1.0),
        ("anything", "", {}, 0.0),
    ],
)
def test_includes(
    response: str, target: str | list[str], args: dict[str, Any], value: float
) -> None:
    assert score_with("includes", response, target, **args).value == value


def test_includes_explanations() -> None:
    found = score_with("includes", "It is Paris.", "Paris")
    assert found.explanation == "found 'Paris' in the response"
    assert found.extracted == "Paris"
    missing = score_with("includes", "Barcelona", "Madrid")
    assert missing.explanation == "'Madrid' not found in response 'Barcelona'"
    assert missing.extracted is None


# regex


@pytest.mark.parametrize(
    ("response", "target", "args", "value", "extracted"),
    [
        ("The code is AB-123.", None, {"pattern": r"[A-Z]{2}-\d+"}, 1.0, "AB-123"),
        ("the code is ab-123", None, {"pattern": r"[A-Z]{2}-\d+"}, 0.0, None),
        ("the code is ab-123", None, {"pattern": "[A-Z]{2}-\\d+", "flags": ["IGNORECASE"]}, 1.0,
         "ab-123"),
        ("the code is ab-123", None, {"pattern": "[A-Z]{2}-\\d+", "flags": "i"}, 1.0, "ab-123"),
        ("yes\n", None, {"pattern": "yes|no", "mode": "fullmatch"}, 1.0, "yes"),
        ("yes, surely", None, {"pattern": "yes|no", "mode": "fullmatch"}, 0.0, None),
        ("a\nb", None, {"pattern": "^b$", "flags": ["MULTILINE"]}, 1.0, "b"),
        ("answer 42", r"\b42\b", {}, 1.0, "42"),
        ("answer 421", r"\b42\b", {}, 0.0, None),
        ("it is blue", ["red", "blue"], {}, 1.0, "blue"),
    ],
)  # fmt: skip
def test_regex(
    response: str,
    target: str | list[str] | None,
    args: dict[str, Any],
    value: float,
    extracted: str | None,
) -> None:
    score = score_with("regex", response, target, **args)
    assert score.value == value
    assert score.extracted == extracted


def test_regex_explanations() -> None:
    hit = score_with("regex", "id 77", None, pattern=r"\d+")
    assert hit.explanation == r"pattern '\\d+' matched '77'"
    miss = score_with("regex", "none", None, pattern=r"\d+", mode="fullmatch")
    assert miss.explanation == r"pattern '\\d+' did not fully match response 'none'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"pattern": "(unclosed"}, r"invalid regular expression '\(unclosed'"),
        ({"pattern": "x", "flags": ["SHOUTING"]}, "unknown regex flag 'SHOUTING'"),
        ({"pattern": "x", "mode": "match-ish"}, "regex mode must be one of search, fullmatch"),
    ],
)
def test_regex_bad_arguments_are_scorer_errors(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ScorerError, match=message):
        score_with("regex", "x", None, **args)


# choice

CHOICE_CASES = [
    ("ANSWER: C", "C", "label"),
    ("Answer: (C)", "C", "label"),
    ("**Answer:** B", "B", "label"),
    ("Final answer: D.", "D", "label"),
    ("答案：C", "C", "label"),
    ("答案: (B)", "B", "label"),
    ("The reasoning is long.\nanswer: c", "C", "label"),
    ("答案是C", "C", "answer-is"),
    ("所以答案为 D。", "D", "answer-is"),
    ("the answer is C", "C", "answer-is"),
    ("The correct answer is (C).", "C", "answer-is"),
    ("I think A is wrong, the answer is C", "C", "answer-is"),
    ("The best option is B because it fits.", "B", "answer-is"),
    ("so the answer would be option D", "D", "answer-is"),
    ("Therefore $\\boxed{B}$", "B", "boxed"),
    ("\\boxed{\\text{A}}", "A", "boxed"),
    ("C", "C", "whole"),
    ("C.", "C", "whole"),
    ("(C)", "C", "whole"),
    ("**C**", "C", "whole"),
    (" C) Paris \n", "C", "whole"),
    ("B. Because the sky is blue", "B", "whole"),
    ("After thinking, **B** is what I pick.", "B", "bold"),
    ("I pick **D. Rome** here", "D", "bold"),
    ("Let me look.\nB. seems right\nThat is all", "B", "line-start"),
    ("Considering all of this, I believe it's B here", "B", "last-letter"),
    ("A good question. Option D fits.", "D", "last-letter"),
    ("A is correct.", "A", "last-letter"),
]


@pytest.mark.parametrize(("response", "letter", "rule"), CHOICE_CASES)
def test_choice_extraction(response: str, letter: str, rule: str) -> None:
    found = extract_choice(response, "ABCD")
    assert found is not None
    assert found[:2] == (letter, rule)


@pytest.mark.parametrize(
    "response",
    [
        "I think so.",
        "A good answer needs more context, I am not sure.",
        "the answer is a bit unclear",
        "Answer: Cats are mammals",
        "The answer is E",  # E is not a valid letter among four choices
        "",
    ],
)
def test_choice_finds_no_letter(response: str) -> None:
    assert extract_choice(response, "ABCD") is None


def test_choice_priority_and_last_occurrence() -> None:
    assert extract_choice("**B** looks good.\nANSWER: C", "ABCD") == ("C", "label", "ANSWER: C")
    found = extract_choice("Answer: A\nOn reflection... Answer: D", "ABCD")
    assert found is not None and found[0] == "D"


def test_choice_letters_default_to_a_through_j() -> None:
    record = make_record("J", scorer="choice")
    scorer = resolve_scorer(ScorerRef(name="choice"))
    assert scorer("Answer: J", record).value == 1.0
    assert scorer("Answer: K", record).extracted is None


def test_choice_text_match_picks_its_letter() -> None:
    score = score_with("choice", "  paris. ", "B", choices=["London", "Paris", "Rome"])
    assert score.value == 1.0
    assert score.extracted == "B"
    assert "(choice-text)" in score.explanation


def test_choice_scores_and_explains() -> None:
    choices = ["1", "2", "3", "4"]
    right = score_with("choice", "I think A is wrong, the answer is C", "C", choices=choices)
    assert right.value == 1.0
    assert right.explanation == "extracted 'C' from 'answer is C' (answer-is); target C"
    wrong = score_with("choice", "ANSWER: B", "C", choices=choices)
    assert (wrong.value, wrong.extracted) == (0.0, "B")
    none = score_with("choice", "no idea", "C", choices=choices)
    assert none.value == 0.0
    assert none.extracted is None
    assert none.explanation == "no answer letter found in 'no idea'; target C"


@pytest.mark.parametrize(
    ("target", "value"),
    [("(C)", 1.0), ("c", 1.0), ("C.", 1.0), (["A", "C"], 1.0), (["A", "B"], 0.0), ("Rome", 1.0)],
)
def test_choice_target_forms(target: str | list[str], value: float) -> None:
    choices = ["London", "Paris", "Rome"]
    assert score_with("choice", "Answer: C", target, choices=choices).value == value


def test_choice_target_that_is_no_letter_is_a_scorer_error() -> None:
    with pytest.raises(ScorerError, match="neither a letter nor the text of one of its choices"):
        score_with("choice", "Answer: C", "Madrid", choices=["London", "Paris"])


# numeric

NUMERIC_CASES = [
    ("#### 72", 72.0, "#### 72"),
    ("She sold 48 + 24 = 72 clips.\n#### 72", 72.0, "#### 72"),
    ("#### $1,000", 1000.0, "#### $1,000"),
    ("first \\boxed{3}, then \\boxed{5}", 5.0, "\\boxed{5}"),
    ("so \\boxed{\\frac{3}{4}}", 0.75, "\\boxed{\\frac{3}{4}}"),
    ("\\boxed{x = -\\dfrac{10}{4}}", -2.5, "\\boxed{x = -\\dfrac{10}{4}}"),
    ("The year 2023 was busy. The answer: 5", 5.0, "answer: 5"),
    ("The answer is $1,000.50, I think. Then 7.", 1000.5, "answer is $1,000.50, I think. Then 7."),
    ("答案是72", 72.0, "答案是72"),
    ("所以答案：-4", -4.0, "答案：-4"),
    ("the answer to question 3 is 5 apples", 5.0, "5"),
    ("1,234,567", 1234567.0, "1,234,567"),
    ("It is -3.5 degrees", -3.5, "-3.5"),
    ("It costs $1,000.50", 1000.5, "1,000.50"),
    ("She has 72 apples", 72.0, "72"),
    ("The rate is 15%", 15.0, "15"),
    ("Pour 3/4 of a cup", 0.75, "3/4"),
    ("items 1,2", 2.0, "2"),
    ("It is 1{,}000", 1000.0, "1,000"),
    ("about 2.5e3 units", 2500.0, "2.5e3"),
    ("minus −7", -7.0, "−7"),
    ("from 3-5 days", 5.0, "5"),
    ("x2 and step_3 then 4", 4.0, "4"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value", "context"), NUMERIC_CASES)
def test_extract_number(text: str, value: float, context: str) -> None:
    found = extract_number(text)
    assert found is not None
    assert found.value == pytest.approx(value)
    assert found.context.strip() == context


def test_parse_numbers_thousands_only_in_groups_of_three() -> None:
    assert [v for v, _ in parse_numbers("1,2 and 1,2345 and 12,345,678")] == [
        1.0,
        2.0,
        1.0,
        2345.0,
        12345678.0,
    ]
    # a date is three numbers; n/0 and a version string are none
    assert [v for v, _ in parse_numbers("on 12/25/2023 we had 1/0 and v1.2.3")] == [
        12.0,
        25.0,
        2023.0,
    ]


def test_extract_number_none_without_digits() -> None:
    assert extract_number("no digits here") is None
    assert extract_number("#### none\nanswer: unknown") is None


@pytest.mark.parametrize(
    ("response", "target", "args", "value"),
    [
        ("#### 72", "72", {}, 1.0),
        ("The answer is 72.", "Natalia sold 48/2 = 24 clips.\n#### 72", {}, 1.0),
        ("The answer is 72.0", "72", {}, 1.0),
        ("The answer is 71", "72", {}, 0.0),
        ("The answer is 1,000", "1000", {}, 1.0),
        ("0.3333", "1/3", {}, 0.0),
        ("0.3333", "1/3", {"rel_tol": 1e-3}, 1.0),
        ("0.3333333", "1/3", {}, 1.0),
        ("0.1", "0", {"abs_tol": 0.2}, 1.0),
        ("about 0.75", "\\frac{3}{4}", {}, 1.0),
        ("It is 8", ["7", "8"], {}, 1.0),
    ],
)
def test_numeric(
    response: str, target: str | list[str], args: dict[str, Any], value: float
) -> None:
    assert score_with("numeric", response, target, **args).value == value


def test_numeric_explanations() -> None:
    score = score_with("numeric", "#### 72", "72")
    assert score.explanation == "extracted 72 (from '#### 72'); target 72"
    assert score.extracted == "72"
    fraction = score_with("numeric", "so 3/4", "0.5")
    assert fraction.explanation == "extracted 0.75 (from '3/4'); target 0.5"
    nothing = score_with("numeric", "I do not know", "72")
    assert nothing.value == 0.0
    assert nothing.extracted is None
    assert nothing.explanation == "no number found in 'I do not know'; target 72"


def test_numeric_target_without_number_is_a_scorer_error() -> None:
    with pytest.raises(ScorerError, match="target 'seventy-two' of record 'demo/1' has no number"):
        score_with("numeric", "72", "seventy-two")
