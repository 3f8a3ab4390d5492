"""The ``judge`` scorer, the ``json`` scorer, and scorer context binding."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import ScorerError, resolve_scorer
from pytest_evalindex.scoring.json_scorer import json_answer, json_text, same_json
from pytest_evalindex.scoring.judge import judge, parse_rubric_score, parse_verdict
from pytest_evalindex.testset.records import Message, Record, ScorerRef


def make_record(
    target: str | list[str] | None = "Canberra",
    *,
    question: str | None = "What is the capital of Australia?",
    scorer: ScorerRef | None = None,
) -> Record:
    return Record(
        id="simpleqa/3",
        dataset="simpleqa",
        input=[
            Message(role="system", content="Answer briefly."),
            Message(role="user", content="Long context... What is the capital of Australia?"),
        ],
        target=target,
        scorer=scorer or ScorerRef(name="judge"),
        metadata={"question": question} if question is not None else {},
    )


class ScriptedJudge:
    """A judge model that replies with a fixed text and remembers what it was asked."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[list[dict[str, str]]] = []

    def __call__(self, messages: list[dict[str, str]]) -> str:
        self.calls.append(messages)
        return self.reply

    @property
    def prompt(self) -> str:
        return self.calls[-1][-1]["content"]


# --------------------------------------------------------------------------- context binding


def test_resolve_scorer_binds_the_judge_from_the_context() -> None:
    model = ScriptedJudge("GRADE: CORRECT")
    bound = resolve_scorer(ScorerRef(name="judge"), context={"judge_model": model})
    result = bound("Canberra.", make_record())
    assert result.value == 1.0
    assert len(model.calls) == 1


def test_resolve_scorer_without_a_judge_is_bad_input_before_any_call() -> None:
    with pytest.raises(EvalIndexError, match="needs a judge model") as info:
        resolve_scorer(ScorerRef(name="judge"), file="index.yaml")
    message = str(info.value)
    assert "`judge:`" in message and "--index-judge-model" in message
    assert message.startswith("index.yaml: scorer")
    with pytest.raises(EvalIndexError, match="needs a judge model"):
        resolve_scorer(ScorerRef(name="judge"), context={"other": 1})


def uses_context(response: str, record: Record, *, judge_model: Any = None) -> float:
    """A custom scorer with an optional context parameter."""
    return 1.0 if judge_model == "from args" else 0.0


def test_args_win_over_the_context_and_plain_scorers_get_nothing() -> None:
    ref = ScorerRef(name=f"{__name__}:uses_context", args={"judge_model": "from args"})
    bound = resolve_scorer(ref, context={"judge_model": "from context"})
    assert bound.args == {"judge_model": "from args"}
    assert bound("x", make_record()).value == 1.0
    bound = resolve_scorer(ScorerRef(name=f"{__name__}:uses_context"), context={"judge_model": 2})
    assert bound.args == {"judge_model": 2}
    # an optional context parameter may stay unset
    assert resolve_scorer(ScorerRef(name=f"{__name__}:uses_context")).args == {}
    plain = resolve_scorer(ScorerRef(name="includes"), context={"judge_model": object()})
    assert plain.args == {}
    assert plain("Paris is nice", make_record("Paris")).value == 1.0


def test_unknown_judge_argument_is_still_bad_input() -> None:
    with pytest.raises(EvalIndexError, match="cannot take arguments"):
        resolve_scorer(ScorerRef(name="judge", args={"temperature": 0}), context={"judge_model": 1})


# --------------------------------------------------------------------------- templates


def test_binary_template() -> None:
    model = ScriptedJudge("The answer names the same city.\nGRADE: CORRECT")
    result = judge("It is Canberra.", make_record(), judge_model=model)
    assert (result.value, result.extracted) == (1.0, "CORRECT")
    assert "judge (binary): CORRECT" in result.explanation
    prompt = model.prompt
    assert "What is the capital of Australia?" in prompt
    assert "Long context" not in prompt  # the stored question, not the whole prompt
    assert "Canberra" in prompt and "It is Canberra." in prompt
    assert "GRADE: INCORRECT" in prompt
    assert model.calls[-1][0]["role"] == "user"
    wrong = judge("Sydney", make_record(), judge_model=ScriptedJudge("GRADE: INCORRECT"))
    assert (wrong.value, wrong.metrics) == (0.0, {})


def test_simpleqa_template_reports_not_attempted_apart() -> None:
    record = make_record()
    verdicts = {
        "GRADE: CORRECT": (1.0, {"correct": 1.0, "incorrect": 0.0, "not_attempted": 0.0}),
        "GRADE: INCORRECT": (0.0, {"correct": 0.0, "incorrect": 1.0, "not_attempted": 0.0}),
        "GRADE: NOT_ATTEMPTED": (0.0, {"correct": 0.0, "incorrect": 0.0, "not_attempted": 1.0}),
    }
    for reply, (value, metrics) in verdicts.items():
        model = ScriptedJudge(reply)
        result = judge("I am not sure.", record, judge_model=model, template="simpleqa")
        assert (result.value, result.metrics) == (value, metrics), reply
    assert "NOT_ATTEMPTED" in model.prompt and "Gold answer" in model.prompt


def test_rubric_template() -> None:
    model = ScriptedJudge("Covers two of three points.\nSCORE: 7")
    record = make_record(target=None, question="Explain photosynthesis briefly.")
    result = judge(
        "Plants make sugar from light.",
        record,
        judge_model=model,
        template="rubric",
        rubric="Mentions light, water and carbon dioxide.",
    )
    assert result.value == pytest.approx(0.7)
    assert result.extracted == "7"
    assert "Mentions light, water" in model.prompt
    assert "Reference answer" not in model.prompt
    with_reference = ScriptedJudge("SCORE: 10/10")
    full = judge(
        "x", make_record(), judge_model=with_reference, template="rubric", rubric="Be right."
    )
    assert full.value == 1.0
    assert "Reference answer:\nCanberra" in with_reference.prompt


def test_several_targets_are_shown_as_alternatives() -> None:
    model = ScriptedJudge("GRADE: CORRECT")
    judge("Canberra", make_record(["Canberra", "Canberra, ACT"]), judge_model=model)
    assert "- Canberra, ACT" in model.prompt and "any one of these" in model.prompt


def test_question_falls_back_to_the_last_user_message() -> None:
    model = ScriptedJudge("GRADE: CORRECT")
    judge("Canberra", make_record(question=None), judge_model=model)
    assert "Long context... What is the capital" in model.prompt


def test_bad_template_or_missing_pieces_are_scorer_errors() -> None:
    model = ScriptedJudge("GRADE: CORRECT")
    with pytest.raises(ScorerError, match="unknown judge template 'simpleQA'"):
        judge("x", make_record(), judge_model=model, template="simpleQA")
    with pytest.raises(ScorerError, match=r"needs args\.rubric"):
        judge("x", make_record(), judge_model=model, template="rubric")
    with pytest.raises(ScorerError, match="no target"):
        judge("x", make_record(target=None), judge_model=model)
    with pytest.raises(ScorerError, match="must be callable"):
        judge("x", make_record(), judge_model="qwen3-max")  # type: ignore[arg-type]
    assert model.calls == []


def test_unparseable_reply_is_an_error_not_a_zero() -> None:
    model = ScriptedJudge("I think the answer is probably fine.")
    with pytest.raises(ScorerError, match="cannot read a verdict"):
        judge("Canberra", make_record(), judge_model=model)
    bound = resolve_scorer(ScorerRef(name="judge"), context={"judge_model": model})
    with pytest.raises(ScorerError, match="cannot read a verdict"):
        bound("Canberra", make_record())


def test_judge_failure_marks_the_sample_as_an_error() -> None:
    def broken(messages: list[dict[str, str]]) -> str:
        raise ConnectionError("judge unreachable")

    bound = resolve_scorer(ScorerRef(name="judge"), context={"judge_model": broken})
    with pytest.raises(ScorerError, match="judge unreachable"):
        bound("Canberra", make_record())


# --------------------------------------------------------------------------- parsing


ALL = ("CORRECT", "INCORRECT", "NOT_ATTEMPTED")


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("GRADE: CORRECT", "CORRECT"),
        ("grade: incorrect", "INCORRECT"),
        ("**Grade:** NOT_ATTEMPTED", "NOT_ATTEMPTED"),
        ("GRADE: NOT ATTEMPTED", "NOT_ATTEMPTED"),
        ("Verdict: CORRECT", "CORRECT"),
        ("INCORRECT", "INCORRECT"),
        ("CORRECT.", "CORRECT"),
        ("First I thought CORRECT, but no: INCORRECT", "INCORRECT"),
        ("GRADE: INCORRECT\nOn reflection:\nGRADE: CORRECT", "CORRECT"),
        # a GRADE line beats a later verdict word in the reasoning
        ("GRADE: CORRECT\n(not INCORRECT as I first wrote)", "CORRECT"),
        ("<think>GRADE: INCORRECT</think>\nGRADE: CORRECT", "CORRECT"),
        ("The answer is not correct.\nINCORRECT", "INCORRECT"),
    ],
)
def test_parse_verdict(reply: str, verdict: str) -> None:
    assert parse_verdict(reply, ALL) == verdict


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "The answer is correct.",  # prose in lower case is not a verdict
        "<think>GRADE: CORRECT</think>",  # only inside the thinking
        "<think>still thinking, GRADE: CORRECT",  # unfinished thinking
        "GRADE: MAYBE",
    ],
)
def test_parse_verdict_rejects(reply: str) -> None:
    with pytest.raises(ScorerError, match="cannot read a verdict"):
        parse_verdict(reply, ALL)


def test_binary_ignores_a_not_attempted_verdict() -> None:
    assert parse_verdict("NOT_ATTEMPTED ... GRADE: INCORRECT", ("CORRECT", "INCORRECT")) == (
        "INCORRECT"
    )
    with pytest.raises(ScorerError, match="CORRECT / INCORRECT"):
        parse_verdict("GRADE: NOT_ATTEMPTED", ("CORRECT", "INCORRECT"))


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("SCORE: 7", 0.7),
        ("Reasoning...\nscore: 8.5", 0.85),
        ("**Score:** 3/5", 0.6),
        ("Rating: 10", 1.0),
        ("SCORE: 2\nthen SCORE: 9", 0.9),
        ("6", 0.6),
        ("GRADE: CORRECT", 1.0),
        ("INCORRECT", 0.0),
    ],
)
def test_parse_rubric_score(reply: str, value: float) -> None:
    assert parse_rubric_score(reply) == pytest.approx(value)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("SCORE: 12", "outside 0-10"),
        ("SCORE: 6/5", "outside 0-5"),
        ("Pretty good overall, maybe 7 or 8 out of 10.", "cannot read a score"),
    ],
)
def test_parse_rubric_score_rejects(reply: str, message: str) -> None:
    with pytest.raises(ScorerError, match=message):
        parse_rubric_score(reply)


# --------------------------------------------------------------------------- a real client


def test_judge_through_chat_client_and_fake_server() -> None:
    from pytest_evalindex.run.client import ChatClient, RetryPolicy
    from pytest_evalindex.testing import FakeOpenAI

    def grade(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        prompt = messages[-1]["content"]
        answer = prompt.split("Answer to grade:\n", 1)[1].split("\n", 1)[0]
        grade = "CORRECT" if "Canberra" in answer else "INCORRECT"
        return f"<think>compare the cities</think>Checked.\nGRADE: {grade}"

    with FakeOpenAI(responder=grade) as server:
        client = ChatClient(
            base_url=server.base_url, model="judge-model", retry=RetryPolicy(max_attempts=1)
        )
        try:
            bound = resolve_scorer(
                ScorerRef(name="judge", args={"template": "simpleqa"}),
                context={"judge_model": lambda messages: client.chat(messages).content},
            )
            right = bound("It is Canberra.", make_record())
            wrong = bound("It is Sydney.", make_record())
        finally:
            client.close()
        assert server.request_count == 2
        assert server.requests[0].json["model"] == "judge-model"
    assert (right.value, right.metrics["correct"]) == (1.0, 1.0)
    assert (wrong.value, wrong.metrics["incorrect"]) == (0.0, 1.0)


def test_judge_reply_must_be_text() -> None:
    with pytest.raises(ScorerError, match="returned dict, expected text"):
        judge("x", make_record(), judge_model=lambda messages: {"content": "GRADE: CORRECT"})  # type: ignore[arg-type,return-value]


# --------------------------------------------------------------------------- json scorer


def json_record(target: str | list[str] | None = None) -> Record:
    return Record(
        id="tools/1",
        dataset="tools",
        input=[Message(role="user", content="Reply in JSON.")],
        target=target,
        scorer=ScorerRef(name="json"),
    )


def test_json_text_prefers_the_last_json_block() -> None:
    response = 'Draft:\n```json\n{"a": 1}\n```\nFinal:\n```JSON\n{"a": 2}\n```\n'
    assert json_text(response) == ('{"a": 2}', "```json block")
    assert json_text("```\n[1, 2]\n```") == ("[1, 2]", "``` block")
    assert json_text('  {"x": null} ') == ('{"x": null}', "whole response")
    assert json_text('```python\nprint(1)\n```\n{"k": 1}')[1] == "whole response"


def test_json_scorer_parses() -> None:
    scorer = resolve_scorer(ScorerRef(name="json"))
    good = scorer('Here you go:\n```json\n{"name": "Ada", "age": 36}\n```', json_record())
    assert (good.value, good.metrics) == (1.0, {"parsed": 1.0})
    assert good.extracted == '{"name": "Ada", "age": 36}'
    bad = scorer("{'name': 'Ada'}", json_record())
    assert (bad.value, bad.metrics) == (0.0, {"parsed": 0.0})
    assert "not JSON" in bad.explanation


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}


def test_json_scorer_schema() -> None:
    ok = json_answer('{"name": "Ada", "age": 36}', json_record(), schema=SCHEMA)
    assert (ok.value, ok.metrics) == (1.0, {"parsed": 1.0, "schema_valid": 1.0})
    broken = json_answer('{"name": "Ada", "age": -1}', json_record(), schema=SCHEMA)
    assert (broken.value, broken.metrics) == (0.0, {"parsed": 1.0, "schema_valid": 0.0})
    assert "at age" in broken.explanation and "minimum" in broken.explanation
    missing = json_answer('{"name": "Ada"}', json_record(), schema=SCHEMA)
    assert "'age' is a required property" in missing.explanation
    not_json = json_answer("nope", json_record(), schema=SCHEMA)
    assert not_json.metrics == {"parsed": 0.0, "schema_valid": 0.0}
    with pytest.raises(ScorerError, match="not a valid JSON Schema"):
        json_answer("{}", json_record(), schema={"type": "no-such-type"})


def test_json_scorer_schema_without_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ScorerError, match=r"pytest-evalindex\[jsonschema\]"):
        json_answer("{}", json_record(), schema=SCHEMA)
    assert json_answer("{}", json_record()).value == 1.0  # parsing alone needs nothing


def test_json_scorer_equals() -> None:
    target = '{"b": [1, 2.0], "a": true}'
    same = json_answer('{"a": true, "b": [1.0, 2]}', json_record(target), equals=True)
    assert (same.value, same.metrics) == (1.0, {"parsed": 1.0, "equal": 1.0})
    other = json_answer('{"a": 1, "b": [1, 2]}', json_record(target), equals=True)
    assert (other.value, other.metrics["equal"]) == (0.0, 0.0)
    any_of = json_answer("[3]", json_record(["[1]", "[3]"]), equals=True)
    assert any_of.value == 1.0
    with pytest.raises(ScorerError, match="not JSON"):
        json_answer("{}", json_record("not json"), equals=True)
    with pytest.raises(ScorerError, match="no target"):
        json_answer("{}", json_record(None), equals=True)


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        ({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [2, 1], False),
        ("1", 1, False),
        (None, None, True),
    ],
)
def test_same_json(left: Any, right: Any, equal: bool) -> None:
    assert same_json(left, right) is equal
