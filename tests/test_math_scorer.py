"""The ``math`` scorer: answer extraction, cheap comparison, bounded symbolic check."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_evalindex.records import Message, Record, ScorerRef
from pytest_evalindex.scorers import ScorerError, math_scorer, resolve_scorer
from pytest_evalindex.scorers.math_scorer import (
    MathVerifyMissingWarning,
    WorkerPool,
    answers_match,
    clean_answer,
    extract_final_answer,
    math_answer,
    target_answer,
)


def make_record(target: str | list[str] | None, **scorer_args: Any) -> Record:
    return Record(
        id="math_500/7",
        dataset="math_500",
        input=[Message(role="user", content="Solve it.")],
        target=target,
        scorer=ScorerRef(name="math", args=scorer_args),
    )


# (predicted answer, gold answer, equal?)
PAIRS = [
    ("72", "72", True),
    ("1,000", "1000", True),
    ("1{,}000", "1000", True),
    ("0.5", "\\frac{1}{2}", True),
    ("-\\frac{1}{2}", "-0.5", True),
    ("\\dfrac{14}{3}", "\\frac{14}{3}", True),
    ("\\frac12", "0.5", True),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("2+3x", "3x+2", True),
    ("(x+1)^2", "x^2+2x+1", True),
    ("[1, 2)", "[1,2)", True),
    ("(0, \\infty)", "(0,\\infty)", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
    ("-5", "-5", True),
    ("−5", "-5", True),  # a Unicode minus sign
    ("x = 5", "5", True),
    ("30^\\circ", "30", True),
    ("50\\%", "50", True),
    ("\\$18.90", "18.90", True),
    ("5\\text{ cm}", "5", True),
    ("10 dollars", "10", True),
    ("72.", "72", True),
    ("\\text{Evelyn}", "\\text{Evelyn}", True),
    ("73", "72", False),
    ("-5", "5", False),
    ("(1,2)", "(2,1)", False),
    ("[1,2]", "[1,2)", False),
    ("\\frac{1}{3}", "0.33", False),
    ("3x+2", "3x-2", False),
    ("Nevely", "\\text{Evelyn}", False),  # words are not products of symbols
    ("", "4", False),
]


@pytest.mark.parametrize(("predicted", "gold", "equal"), PAIRS)
def test_cheap_path_changes_cost_not_result(predicted: str, gold: str, equal: bool) -> None:
    with_shortcut = answers_match(predicted, gold)
    symbolic_only = answers_match(predicted, gold, shortcut=False)
    assert with_shortcut.equal is equal, with_shortcut
    assert symbolic_only.equal is equal, symbolic_only


def test_cheap_path_settles_common_forms_without_math_verify() -> None:
    assert answers_match("1,000", "1000").how == "same after normalisation"
    assert answers_match("0.5", "\\frac{1}{2}").how == "same number"
    assert answers_match("2+3x", "3x+2").how == "equivalent (math-verify)"
    assert answers_match("73", "72").how == "not equivalent (math-verify)"


def test_in_process_check_gives_the_same_answers() -> None:
    for predicted, gold, equal in PAIRS[7:12] + PAIRS[24:28]:
        assert answers_match(predicted, gold, shortcut=False, timeout_s=None).equal is equal


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize(
    ("response", "answer", "rule"),
    [
        (
            "First \\boxed{3}, no wait: \\boxed{\\frac{1}{\\sqrt{2}}}.",
            "\\frac{1}{\\sqrt{2}}",
            "boxed",
        ),
        ("so $\\boxed{\\{1, 2\\}}$ done", "\\{1, 2\\}", "boxed"),
        ("The final answer is $\\frac{3}{4}$.", "$\\frac{3}{4}$.", "answer-is"),
        ("**Answer:**\n\n$x = 2$\n", "$x = 2$", "answer-is"),
        ("答案是 12", "12", "answer-is"),
        ("We get 3 apples, then 5 more, so 8", "8", "last-number"),
    ],
)
def test_extract_final_answer(response: str, answer: str, rule: str) -> None:
    assert extract_final_answer(response) == (answer, rule)


def test_extract_final_answer_none() -> None:
    assert extract_final_answer("I cannot solve this.") is None


def test_target_answer() -> None:
    assert target_answer("so it is \\boxed{42}") == "42"
    assert target_answer("steps\n#### 1,250") == "1,250"
    assert target_answer("  \\frac{14}{3} ") == "\\frac{14}{3}"


def test_clean_answer() -> None:
    assert clean_answer("$\\left( 1, 2 \\right)$.") == "( 1, 2 )"
    assert clean_answer("\\tfrac{1}{2}") == "\\frac{1}{2}"
    assert clean_answer("\\sqrt2") == "\\sqrt{2}"
    assert clean_answer("12{,}345") == "12345"
    assert clean_answer("\\text{(C)}") == "(C)"
    assert clean_answer("4 square feet") == "4"
    assert clean_answer("x \\leftarrow y") == "x \\leftarrow y"


# --------------------------------------------------------------------------- the scorer


def test_math_scorer_scores_a_response() -> None:
    scorer = resolve_scorer(ScorerRef(name="math"))
    record = make_record("\\frac{\\sqrt{2}}{2}")
    right = scorer("Rationalising gives $\\boxed{\\sqrt{2}/2}$.", record)
    assert right.value == 1.0
    assert right.extracted == "\\sqrt{2}/2"
    assert "boxed" in right.explanation and "math-verify" in right.explanation
    wrong = scorer("The answer is 2.", record)
    assert wrong.value == 0.0
    assert wrong.extracted == "2."


def test_math_scorer_any_of_several_targets_and_gsm8k_style_target() -> None:
    assert math_answer("\\boxed{6}", make_record(["5", "6"])).value == 1.0
    assert math_answer("so 1250", make_record("work\n#### 1,250")).value == 1.0


def test_math_scorer_without_an_answer_or_target() -> None:
    assert math_answer("no idea", make_record("4")).value == 0.0
    with pytest.raises(ScorerError, match="no target"):
        math_answer("\\boxed{4}", make_record(None))
    with pytest.raises(ScorerError, match="empty target"):
        math_answer("\\boxed{4}", make_record("  "))


def test_math_scorer_rejects_a_negative_timeout() -> None:
    with pytest.raises(ScorerError, match="timeout_s"):
        math_answer("\\boxed{1}", make_record("1"), timeout_s=-1)


def test_math_scorer_works_outside_the_main_thread() -> None:
    results: dict[str, Any] = {}

    def score_in_thread() -> None:
        try:
            pooled = math_answer("\\boxed{2+3x}", make_record("3x+2"))
            in_thread = math_answer("\\boxed{(x+1)^2}", make_record("x^2+2x+1"), timeout_s=None)
            results["values"] = (pooled.value, in_thread.value)
        except BaseException as exc:  # reported by the assertion below
            results["error"] = exc

    worker = threading.Thread(target=score_in_thread)
    worker.start()
    worker.join(timeout=120)
    assert "error" not in results, results.get("error")
    assert results["values"] == (1.0, 1.0)


def test_math_scorer_reports_a_timed_out_check(monkeypatch: pytest.MonkeyPatch) -> None:
    class GaveUp:
        def call(self, args: tuple[Any, ...], timeout_s: float) -> None:
            return None

    monkeypatch.setattr(math_scorer, "_pool", lambda: GaveUp())
    result = math_answer("\\boxed{2+3x}", make_record("3x+2"), timeout_s=0.5)
    assert result.value == 0.0
    assert "gave up after 0.5s" in result.explanation


# --------------------------------------------------------------------------- worker pool


@pytest.fixture
def sleep_pool() -> Iterator[WorkerPool]:
    pool = WorkerPool("time:sleep", max_workers=1)
    yield pool
    pool.close()


def test_pool_timeout_kills_the_worker_and_recovers(sleep_pool: WorkerPool) -> None:
    assert sleep_pool.call((0,), 30) is None  # time.sleep returns None: a normal reply
    assert sleep_pool.idle_workers == 1
    started = time.monotonic()
    assert sleep_pool.call((30,), 0.3) is None
    assert time.monotonic() - started < 5
    assert sleep_pool.idle_workers == 0  # the overrunning worker was killed
    assert sleep_pool.call((0,), 30) is None
    assert sleep_pool.idle_workers == 1


def test_pool_reports_errors_of_the_function() -> None:
    pool = WorkerPool("math:sqrt", max_workers=1)
    try:
        assert pool.call((16,), 30) == 4.0
        with pytest.raises(ScorerError, match="TypeError"):
            pool.call(("x",), 30)
        assert pool.call((9,), 30) == 3.0
    finally:
        pool.close()


def test_pool_reports_a_worker_that_cannot_start() -> None:
    pool = WorkerPool("no_such_module_for_evalindex:f", max_workers=1)
    try:
        with pytest.raises(ScorerError, match=r"cannot start.*no_such_module_for_evalindex"):
            pool.call((), 30)
    finally:
        pool.close()


def test_closed_pool_refuses_calls(sleep_pool: WorkerPool) -> None:
    sleep_pool.close()
    with pytest.raises(ScorerError, match="closed"):
        sleep_pool.call((0,), 1)


# --------------------------------------------------------------------------- without math-verify


def test_without_math_verify_normalised_comparison_and_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "math_verify", None)  # makes it unimportable
    monkeypatch.setattr(math_scorer, "_warned_missing", False)
    assert not math_scorer.math_verify_available()
    with pytest.warns(MathVerifyMissingWarning, match=r"pytest-evalindex\[math\]") as caught:
        symbolic = math_answer("\\boxed{2+3x}", make_record("3x+2"))
        again = math_answer("\\boxed{x+1}", make_record("1+x"))
    assert len(caught) == 1
    assert (symbolic.value, again.value) == (0.0, 0.0)
    assert "pytest-evalindex[math]" in symbolic.explanation
    # the cheap comparison still does its part, with or without the shortcut flag
    assert math_answer("\\boxed{1,000}", make_record("1000")).value == 1.0
    assert answers_match("0.5", "\\frac{1}{2}", shortcut=False).equal
    assert not answers_match("73", "72", shortcut=False).equal
