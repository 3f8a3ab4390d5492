"""LLM-as-judge: another model grades the answer.

Registered as the scorer ``judge``. The judge is ``judge_model``, a callable taking chat
messages (``[{"role": ..., "content": ...}]``) and returning the judge's reply text; the run
binds it from its context (see ``resolve_scorer``), so a spec never names it. Without a
judge the index stops before any request, asking for ``judge:`` in the spec or
``--index-judge-model``/``--index-judge-base-url``.

Templates (``args.template``):

- ``binary`` (default): is the answer consistent with the reference answer? The judge ends
  with ``GRADE: CORRECT`` or ``GRADE: INCORRECT``; score 1 or 0.
- ``simpleqa``: short factual questions. ``CORRECT``, ``INCORRECT`` or ``NOT_ATTEMPTED``
  (the answer declines or hedges without committing); score 1 only for CORRECT. Metrics
  ``correct``, ``incorrect``, ``not_attempted`` (one of them 1) so a report can show
  not-attempted apart from wrong.
- ``rubric``: ``args.rubric`` says what a good answer does; the judge ends with
  ``SCORE: N`` (N from 0 to 10, fractions allowed), or a CORRECT/INCORRECT verdict.
  The score is N/10. A reference answer is shown to the judge when the record has one.

The question shown to the judge is ``record.metadata["question"]`` when the adapter stored
one (the built-in benchmarks do, so a long document is not sent twice), else the last user
message. How the reply is read: the last ``GRADE:`` (or ``SCORE:``) line wins; failing that,
the last verdict word written in capitals (``CORRECT``, ``INCORRECT``, ``NOT_ATTEMPTED``)
or, for the rubric, a lone number or ``N/10``. ``<think>`` blocks are ignored. A reply with
none of these raises ScorerError: the sample becomes an error, never a silent 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pytest_evalindex.scoring import Score, ScorerError, ScorerTraits, clip
from pytest_evalindex.testset.records import Record

JudgeModel = Callable[[list[dict[str, str]]], str]

TEMPLATES = ("binary", "simpleqa", "rubric")
RUBRIC_MAX = 10.0

_BINARY_PROMPT = """\
You are grading an answer against a reference answer.

Question:
{question}

Reference answer:
{target}

Answer to grade:
{response}

The answer is CORRECT when its final conclusion agrees with the reference answer: the same \
fact, value or choice, in any wording; extra explanation is fine as long as it does not \
contradict the reference. It is INCORRECT when it disagrees with the reference, gives \
several conflicting answers, or gives no answer.

Think briefly if you need to, then finish with one line that is exactly \
"GRADE: CORRECT" or "GRADE: INCORRECT".\
"""

_SIMPLEQA_PROMPT = """\
You are grading the answer to a short factual question.

Question:
{question}

Gold answer:
{target}

Answer to grade:
{response}

Choose one grade:
- CORRECT: the answer contains the gold answer's key fact and says nothing that \
contradicts it. Wording, capitalisation and small spelling differences do not matter; \
a number must match to the precision the gold answer gives.
- INCORRECT: the answer states something that contradicts the gold answer, or commits to \
a different answer, even if it also hedges.
- NOT_ATTEMPTED: the answer does not commit to an answer (it declines, says it does not \
know, or only asks for more information), and contradicts nothing.

Finish with one line that is exactly "GRADE: CORRECT", "GRADE: INCORRECT" or \
"GRADE: NOT_ATTEMPTED".\
"""

_RUBRIC_PROMPT = """\
You are grading an answer using a rubric.

Question:
{question}
{reference}
Answer to grade:
{response}

Rubric:
{rubric}

Give a score from 0 (fails the rubric completely) to 10 (meets every point of it). \
Explain briefly, then finish with one line that is exactly "SCORE: N" with N the score.\
"""

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
_GRADE_LINE = re.compile(
    r"\b(?:GRADE|VERDICT)[\s*_]*[:：][\s*_\"'`]*"
    r"(NOT[ _-]?ATTEMPTED|INCORRECT|CORRECT)\b",
    re.IGNORECASE,
)
# a bare verdict word counts only in capitals: prose like "not correct" must not be read
_VERDICT_WORD = re.compile(r"\b(NOT[ _-]?ATTEMPTED|INCORRECT|CORRECT)\b")
_SCORE_LINE = re.compile(
    r"\b(?:SCORE|RATING)[\s*_]*[:：][\s*_\"'`]*(\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?",
    re.IGNORECASE,
)
_LONE_SCORE = re.compile(r"^\s*(\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?\s*\.?\s*$")


def _verdict(word: str) -> str:
    word = word.upper()
    return "NOT_ATTEMPTED" if word.startswith("NOT") else word


def parse_verdict(reply: str, allowed: tuple[str, ...]) -> str:
    """The judge's verdict, one of ``allowed``; ScorerError when the reply has none."""
    text = _THINK.sub("", reply)
    lines = [_verdict(m.group(1)) for m in _GRADE_LINE.finditer(text)]
    words = [_verdict(m.group(1)) for m in _VERDICT_WORD.finditer(text)]
    for found in (lines, words):
        usable = [verdict for verdict in found if verdict in allowed]
        if usable:
            return usable[-1]
    raise ScorerError(
        f"cannot read a verdict ({' / '.join(allowed)}) in the judge's reply: {clip(reply, 120)!r}"
    )


def parse_rubric_score(reply: str) -> float:
    """The judge's rubric score in [0, 1]; ScorerError when the reply has none."""
    text = _THINK.sub("", reply)
    found = list(_SCORE_LINE.finditer(text))
    match = found[-1] if found else _LONE_SCORE.match(text)
    if match is None:
        lines = [_verdict(m.group(1)) for m in _GRADE_LINE.finditer(text)]
        words = [_verdict(m.group(1)) for m in _VERDICT_WORD.finditer(text)]
        verdicts = [v for v in (lines or words) if v in ("CORRECT", "INCORRECT")]
        if verdicts:
            return 1.0 if verdicts[-1] == "CORRECT" else 0.0
        raise ScorerError(
            f"cannot read a score (SCORE: N, 0-{RUBRIC_MAX:g}) in the judge's reply: "
            f"{clip(reply, 120)!r}"
        )
    value = float(match.group(1))
    scale = float(match.group(2)) if match.group(2) else RUBRIC_MAX
    if scale <= 0 or not 0 <= value <= scale:
        raise ScorerError(f"the judge's score {match.group(0).strip()!r} is outside 0-{scale:g}")
    return value / scale


def question_of(record: Record) -> str:
    """What the judge is told the question was."""
    question = record.metadata.get("question")
    if isinstance(question, str) and question.strip():
        return question
    for message in reversed(record.input):
        if message.role == "user":
            return message.content
    return record.input[-1].content if record.input else ""


def _targets_text(record: Record) -> str | None:
    target = record.target
    if target is None or (isinstance(target, list) and not target):
        return None
    if isinstance(target, str):
        return target
    return "\n".join(f"- {item}" for item in target) + "\n(any one of these is right)"


def _ask(judge_model: Any, prompt: str) -> str:
    if not callable(judge_model):
        raise ScorerError(f"judge_model must be callable, got {type(judge_model).__name__}")
    reply = judge_model([{"role": "user", "content": prompt}])
    if not isinstance(reply, str):
        raise ScorerError(f"the judge returned {type(reply).__name__}, expected text")
    return reply


def judge(
    response: str,
    record: Record,
    *,
    judge_model: JudgeModel,
    template: str = "binary",
    rubric: str | None = None,
) -> Score:
    """Ask ``judge_model`` to grade ``response`` with ``template`` (module docstring)."""
    if template not in TEMPLATES:
        raise ScorerError(f"unknown judge template {template!r}; known: {', '.join(TEMPLATES)}")
    question = question_of(record)
    target = _targets_text(record)
    if template == "rubric":
        if not rubric or not isinstance(rubric, str):
            raise ScorerError("the judge's rubric template needs args.rubric, the grading text")
        reference = f"\nReference answer:\n{target}\n" if target is not None else ""
        prompt = _RUBRIC_PROMPT.format(
            question=question, reference=reference, response=response, rubric=rubric
        )
        reply = _ask(judge_model, prompt)
        value = parse_rubric_score(reply)
        return Score(
            value,
            f"judge (rubric) gave {value * RUBRIC_MAX:g}/{RUBRIC_MAX:g}: {clip(reply, 100)!r}",
            extracted=f"{value * RUBRIC_MAX:g}",
        )
    if target is None:
        raise ScorerError(f"record {record.id!r} has no target for the judge to compare with")
    if template == "simpleqa":
        prompt = _SIMPLEQA_PROMPT.format(question=question, target=target, response=response)
        allowed: tuple[str, ...] = ("CORRECT", "INCORRECT", "NOT_ATTEMPTED")
    else:
        prompt = _BINARY_PROMPT.format(question=question, target=target, response=response)
        allowed = ("CORRECT", "INCORRECT")
    reply = _ask(judge_model, prompt)
    verdict = parse_verdict(reply, allowed)
    metrics: dict[str, float] = {}
    if template == "simpleqa":
        metrics = {name.lower(): float(verdict == name) for name in allowed}
    return Score(
        1.0 if verdict == "CORRECT" else 0.0,
        f"judge ({template}): {verdict}; target {clip(target.splitlines()[0], 40)!r}",
        extracted=verdict,
        metrics=metrics,
    )


# the verdict comes from the judge's endpoint: score ahead
judge.evalindex_traits = ScorerTraits(  # type: ignore[attr-defined]
    scores_outside_interpreter=True, waits_on_requests=True
)
