"""The ``math`` scorer: answer extraction, the fast path, the bounded math-verify calls."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from math_fidelity_table import FIDELITY

from pytest_evalindex.scoring import ScorerError, math_scorer, resolve_scorer
from pytest_evalindex.scoring.math_scorer import (
    MathVerifyMissingWarning,
    OnceWarning,
    WorkerPool,
    answers_match,
    clean_answer,
    clean_pair,
    extract_final_answer,
    extraction_configs,
    fast_match,
    math_answer,
    mv_extraction,
    symbolic_calls,
    target_answer,
)
from pytest_evalindex.testset.records import Message, Record, ScorerRef

ROOT = Path(__file__).resolve().parents[1]


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
    ("1 2", "12", False),  # not a number: ambiguous
    ("3+2\\mathrm{i}", "3+2", False),
    ("3+2\\mathrm{i}", "3+2i", True),
    ("\\frac{1}{\\mathrm{e}}", "\\frac{1}{e}", True),
    ("\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False),
    ("111", "0,111", False),
    ("0.111", "0,111", True),
    ("-4 \\cdot 0/0", "0", False),
    ("5\\text{ cm}^2", "25", False),
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
    assert answers_match("73", "72").how == "different numbers"
    assert answers_match("2+3x", "3x+2").how == "equivalent (math-verify)"
    assert answers_match("73.5", "72").how == "not equivalent (math-verify)"
    assert answers_match("-4 \\cdot 0/0", "0").how == (
        "math-verify: the answer is undefined (a division by zero)"
    )


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
            "box",
        ),
        ("so $\\boxed{\\{1, 2\\}}$ done", "\\{1, 2\\}", "box"),
        ("3 + 4 = 7\n#### 7", "7", "gsm8k ####"),
        ("ANSWER: 1,250", "1,250", "answer phrase"),
        ("The answer is $1{,}000$.", "1,000", "answer phrase"),
        ("**Answer:**\n\n**42.**\n", "42", "answer phrase"),
        ("答案是 12", "12", "answer phrase"),
        (" 72 ", "72", "whole response"),
    ],
)
def test_extract_final_answer(response: str, answer: str, rule: str) -> None:
    assert extract_final_answer(response) == (answer, rule)


@pytest.mark.parametrize(
    "response",
    [
        "I cannot solve this.",
        "We get 3 apples, then 5 more, so 8",  # no last-number guess of our own
        "The final answer is $\\frac{3}{4}$.",  # not a plain number: math-verify reads it
        "$\\frac{1+\\sqrt{5}}{2}$",
    ],
)
def test_extract_final_answer_leaves_the_rest_to_math_verify(response: str) -> None:
    assert extract_final_answer(response) is None


@pytest.mark.parametrize(
    ("response", "answer", "how"),
    [
        ("$\\frac{1+\\sqrt{5}}{2}$", "\\frac{1+\\sqrt{5}}{2}",
         "math span $…$, the last in the text"),
        ("$1 + \\frac{1}{\\mathrm{e}}$", "1 + \\frac{1}{\\mathrm{e}}", "math span $…$"),
        ("The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}",
         "math span $…$, after 'final answer is'"),
        ("Hence \\(y = 3\\).", "y = 3", "math span \\(…\\)"),
        ("So the area is $$24\\sqrt{3}.$$", "24\\sqrt{3}.", "display math $$…$$"),
        ("The probability is 1/2.", "1/2.", "expression, the last in the text"),
        ("So the total is 5 + 7 = 12 dollars.", "12", "number, the last in the text"),
        ("$-[0,1)$", "-[0,1)", "not readable as math"),
        ("-4 0/0", "-4 0/0", "not readable as math"),  # not its last number, 0
    ],
)  # fmt: skip
def test_math_verify_extraction(response: str, answer: str, how: str) -> None:
    found = mv_extraction(response)
    assert found is not None
    assert found[1] == answer
    assert how in found[2]


def test_math_verify_extraction_finds_what_parse_finds() -> None:
    """The scorer's walk through math-verify's patterns picks the answer ``parse`` picks."""
    from math_verify import parse

    compared = 0
    for response, _, _ in FIDELITY:
        if extract_final_answer(response) is not None:
            continue
        ours = mv_extraction(response)
        theirs = parse(response, extraction_config=extraction_configs(), parsing_timeout=None)
        if ours is None or ours[0] is None:
            continue  # nothing read, or a fragment refused: the scorer misses on purpose
        compared += 1
        assert theirs and theirs[0] == ours[0], (response, theirs, ours)
    assert compared >= 40


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
    assert clean_answer("5\\text{ cm}^2") == "5"
    assert clean_answer("x \\leftarrow y") == "x \\leftarrow y"


def test_cleaning_keeps_what_carries_meaning() -> None:
    assert clean_answer("3+2\\mathrm{i}") == "3+2i"
    assert clean_answer("\\frac{1}{\\mathrm{e}}") == "\\frac{1}{e}"
    assert clean_answer("\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}") == (
        "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"
    )
    assert clean_answer("0,111") == "0,111"  # a decimal comma: math-verify reads it
    assert clean_answer("x + c") == "x + c"  # a letter is no unit
    assert clean_pair("1 2", "12").refused == "digits separated by a space are ambiguous"


# --------------------------------------------------------------------------- the scorer


def test_math_scorer_scores_a_response() -> None:
    scorer = resolve_scorer(ScorerRef(name="math"))
    record = make_record("\\frac{\\sqrt{2}}{2}")
    right = scorer("Rationalising gives $\\boxed{\\sqrt{2}/2}$.", record)
    assert right.value == 1.0
    assert right.extracted == "\\sqrt{2}/2"
    assert "(box)" in right.explanation and "math-verify" in right.explanation
    wrong = scorer("The answer is 2.", record)
    assert wrong.value == 0.0
    assert wrong.extracted == "2"


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


def test_math_scorer_reports_a_timed_out_check() -> None:
    # a sum of 400 terms takes math-verify about half a second, so a microsecond's wait
    # gives up even when this thread waits a while for the GIL before it looks for the reply
    # (a quick pair can be answered in that time on a busy machine)
    response = "\\boxed{" + "+".join(["x"] * 400) + "}"
    result = math_answer(response, make_record("400x"), timeout_s=1e-6)
    assert result.value == 0.0
    assert result.explanation.endswith("symbolic check gave up after 1e-06s")


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
    assert sleep_pool.started_workers == 2  # the first, and the one that replaced it


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


@pytest.fixture
def unwarned() -> Iterator[OnceWarning]:
    """The missing-math-verify warning, not yet issued in this process, and re-armed after."""
    math_scorer.missing_math_verify.reset()
    yield math_scorer.missing_math_verify
    math_scorer.missing_math_verify.reset()


def test_without_math_verify_normalised_comparison_and_one_warning(
    monkeypatch: pytest.MonkeyPatch, unwarned: OnceWarning
) -> None:
    monkeypatch.setitem(sys.modules, "math_verify", None)  # makes it unimportable
    assert not math_scorer.math_verify_available()
    calls = symbolic_calls()
    with pytest.warns(MathVerifyMissingWarning, match=r"pytest-evalindex\[math\]") as caught:
        symbolic = math_answer("\\boxed{2+3x}", make_record("3x+2"))
        again = math_answer("\\boxed{x+1}", make_record("1+x"))
        # no box and no plain number after "answer is": no guess from the last number
        unboxed = math_answer("So the total is 5 + 7 = 12 dollars.", make_record("12"))
    assert len(caught) == 1
    assert unwarned.issued
    assert (symbolic.value, again.value, unboxed.value) == (0.0, 0.0, 0.0)
    assert "pytest-evalindex[math]" in symbolic.explanation
    assert unboxed.explanation.startswith("no \\boxed{}, '####' or plain number after")
    assert "pytest-evalindex[math]" in unboxed.explanation
    # the fast path still does its part, with or without the shortcut flag
    assert math_answer("\\boxed{1,000}", make_record("1000")).value == 1.0
    assert math_answer("ANSWER: 1,000", make_record("#### 1000")).value == 1.0
    assert answers_match("0.5", "\\frac{1}{2}", shortcut=False).equal
    assert not answers_match("73", "72", shortcut=False).equal
    assert symbolic_calls() == calls


def test_the_missing_math_verify_warning_points_at_the_caller_and_can_be_rearmed(
    monkeypatch: pytest.MonkeyPatch, unwarned: OnceWarning
) -> None:
    monkeypatch.setitem(sys.modules, "math_verify", None)
    with pytest.warns(MathVerifyMissingWarning) as first:
        answers_match("2+3x", "3x+2")
        answers_match("2+3y", "3y+2")
    assert len(first) == 1
    assert first[0].filename == __file__  # the line that compared, not the scorer's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not answers_match("2+3x", "3x+2").equal  # issued once: silent now
    unwarned.reset()
    assert not unwarned.issued
    with pytest.warns(MathVerifyMissingWarning) as again:
        answers_match("2+3x", "3x+2")
    assert len(again) == 1


# --------------------------------------------------------------------------- the fast path


def _number_forms(n: int) -> list[str]:
    return [
        str(n), f"{n}.0", f"{n}.00", f"\\frac{{{2 * n}}}{{2}}", f"{2 * n}/2", f"{n:,}",
        f"{n:,}".replace(",", "{,}"), f"\\${n}", f"{n}\\%", f"{n}^\\circ", f"{n}\\text{{ cm}}",
        f"{n} \\text{{ inches}}", f"x = {n}", f"${n}$", f"\\({n}\\)", f"{n}.", f"+{n}",
        f"0{n}", f"{n} dollars", f"{-n}", f"{n} \\cdot 1", f"\\left({n}\\right)",
    ]  # fmt: skip


def fast_path_table() -> list[tuple[str, str]]:
    """(predicted, gold) pairs: the fidelity table's answers, the pairs above, and numbers
    and expressions in many written forms against each other."""
    pairs = [(p, g) for p, g, _ in PAIRS]
    for response, gold, _ in FIDELITY:
        found = extract_final_answer(response)
        if found is None:
            extracted = mv_extraction(response)
            found = None if extracted is None else (extracted[1], "")
        if found is not None:
            pairs.append((found[0], target_answer(gold)))
    for n, m in [(1234, 1234), (72, 72), (1000, 1000), (72, 27), (1234, 1243), (5, 50)]:
        for predicted in _number_forms(n):
            for gold in _number_forms(m)[:8]:
                pairs.append((predicted, gold))
    expressions = [
        "\\frac{1}{2}", "0.5", "\\tfrac12", "1/2", "\\sqrt{2}", "\\sqrt2", "2^{1/2}", "\\pi r^2",
        "\\pi r ^ 2", "\\pir^2", "3x+2", "3 x + 2", "2+3x", "(1,2)", "( 1 , 2 )", "[1,2)",
        "\\{1,2\\}",
        "a b", "ab", "\\frac{1}{\\mathrm{e}}", "\\frac{1}{e}", "e^{-1}", "3+2\\mathrm{i}", "3+2i",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}",
        "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "0,111", "0.111", "111", "x = 3", "3",
        "\\text{Evelyn}", "Evelyn", "1 \\frac{1}{2}", "\\frac{3}{2}", "-\\frac{1}{2}",
        "\\frac{-1}{2}",
    ]  # fmt: skip
    pairs += [(p, g) for p in expressions for g in expressions]
    return pairs


def math_verify_alone(gold: str, predicted: str) -> bool:
    """math-verify's documented use on two answers: parse each, then verify."""
    from math_verify import parse, verify

    return bool(
        verify(
            parse(f"${gold}$", parsing_timeout=None),
            parse(f"${predicted}$", parsing_timeout=None),
            timeout_seconds=None,
        )
    )


def test_the_fast_path_never_settles_against_math_verify() -> None:
    """Wherever the fast path says equal, math-verify on the same cleaned answers says
    equal too; wherever it says not equal (two different integers, or a refused pair),
    math-verify does not say equal."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    pairs = fast_path_table()
    settled_equal = settled_unequal = disagreements = 0
    for predicted, gold in pairs:
        cleaned = clean_pair(predicted, gold)
        verdict = fast_match(cleaned)
        if verdict is None:
            continue
        if cleaned.refused:
            continue  # refused pairs are a miss by design (digits separated by a space)
        alone = math_verify_alone(cleaned.gold, cleaned.predicted)
        if verdict.equal:
            settled_equal += 1
        else:
            settled_unequal += 1
        if alone is not verdict.equal:
            disagreements += 1
            print("disagree:", repr(predicted), repr(gold), verdict, alone)
    print(f"{len(pairs)} pairs; fast path settled {settled_equal} equal, "
          f"{settled_unequal} unequal")  # fmt: skip
    assert len(pairs) >= 2000
    assert settled_equal >= 300 and settled_unequal >= 100
    assert disagreements == 0


# --------------------------------------------------------------------------- fidelity


def test_fidelity_table_zero_false_passes() -> None:
    """The scorer against the verdicts of the table, and math-verify alone beside it."""
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    assert len(FIDELITY) >= 200
    ours_agree = alone_agree = 0
    false_passes: list[tuple[str, str, str]] = []
    for response, gold, correct in FIDELITY:
        score = math_answer(response, make_record(gold))
        passed = score.value == 1.0
        ours_agree += passed is correct
        if passed and not correct:
            false_passes.append((response, gold, score.explanation))
        gold_parsed = parse(gold) if "####" in gold else parse(f"${gold}$")
        alone = bool(verify(gold_parsed, parse(response)))
        alone_agree += alone is correct
    ours, alone_share = ours_agree / len(FIDELITY), alone_agree / len(FIDELITY)
    print(f"fidelity table: {len(FIDELITY)} rows; the math scorer agrees on {ours:.1%}, "
          f"math-verify alone on {alone_share:.1%}")  # fmt: skip
    assert false_passes == []
    assert ours >= 0.98
    assert alone_share < ours  # the table holds cases where math-verify alone errs


# --------------------------------------------------------------------------- explanations


@pytest.mark.parametrize(
    ("response", "rule"),
    [
        ("so $\\boxed{12}$", "(box)"),
        ("7 + 5 = 12\n#### 12", "(gsm8k ####)"),
        ("ANSWER: 12", "(answer phrase)"),
        ("12", "(whole response)"),
        ("The final answer is 12.", "(answer phrase)"),
        ("The final answer is $x=12$. I hope it is correct.",
         "(math-verify: math span $…$, after 'final answer is')"),
        ("Adding up, $7 + 5 = 12$", "(math-verify: math span $…$, the last in the text)"),
        ("Adding up, 7 + 5 = 12 apples", "(math-verify: number, the last in the text)"),
        ("so \\[ 12 \\]", "(math-verify: display math \\[…\\], the last in the text)"),
    ],
)  # fmt: skip
def test_the_explanation_names_the_extraction(response: str, rule: str) -> None:
    score = math_answer(response, make_record("12"))
    assert score.value == 1.0, score.explanation
    assert rule in score.explanation


def test_the_explanation_says_why_an_answer_was_refused() -> None:
    spaced = math_answer("\\boxed{1 2}", make_record("12"))
    assert spaced.explanation.endswith("digits separated by a space are ambiguous")
    unreadable = math_answer("$-[0,1)$", make_record("1"))
    assert "not readable as math" in unreadable.explanation
    assert unreadable.explanation.endswith("math-verify: cannot read the answer")
    nothing = math_answer("I cannot solve this.", make_record("1"))
    assert nothing.explanation.startswith("no final answer found")


# --------------------------------------------------------------------------- cost


def test_gsm8k_style_numbers_never_call_math_verify() -> None:
    cases = [
        ("Each day 12 + 30 = 42.\nANSWER: 42", "Steps.\n#### 42", 1.0),
        ("So the answer is $\\boxed{1,250}$.", "#### 1,250", 1.0),
        ("The answer is 1,250.", "#### 1250", 1.0),
        ("#### 1250", "#### 1250", 1.0),
        ("$\\boxed{1250.0}$", "#### 1250", 1.0),
        ("$\\boxed{\\frac{2500}{2}}$", "#### 1250", 1.0),
        ("Each day 12 + 31 = 43.\nANSWER: 43", "Steps.\n#### 42", 0.0),
        ("1250", "#### 1250", 1.0),
    ]
    before = symbolic_calls()
    for response, target, value in cases:
        assert math_answer(response, make_record(target)).value == value, response
    assert symbolic_calls() == before
    math_answer("$\\boxed{25 \\cdot 50}$", make_record("#### 1250"))
    assert symbolic_calls() == before + 1  # the counter does count


# --------------------------------------------------------------------------- determinism

DETERMINISM_PAIRS = [
    ("\\boxed{-4 0/0}", "0"), ("-4 0/0", "0"), ("\\boxed{-4 \\cdot 0/0}", "0"),
    ("$-4 \\cdot 0/0$", "0"), ("\\boxed{0/0}", "0"), ("\\boxed{\\frac{0}{0}}", "1"),
    ("\\boxed{0 \\cdot \\frac{1}{0}}", "0"), ("\\boxed{x/0}", "0"),
    ("\\boxed{2+3x}", "3x+2"), ("\\boxed{(x+1)^2}", "x^2+2x+1"),
    ("\\boxed{\\{2,1\\}}", "\\{1,2\\}"),
    ("\\boxed{[1,2)}", "[1, 2)"), ("$\\frac{1+\\sqrt{5}}{2}$", "2"), ("\\boxed{1 2}", "12"),
]  # fmt: skip

_DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    logging.disable(logging.WARNING)
    from pytest_evalindex.testset.records import Message, Record, ScorerRef
    from pytest_evalindex.scoring.math_scorer import math_answer
    pairs, order, timeout = (json.loads(argument) for argument in sys.argv[1:4])
    verdicts = {}
    for i in order:
        response, target = pairs[i]
        record = Record(id=f"m/{i}", dataset="m", input=[Message(role="user", content="?")],
                        target=target, scorer=ScorerRef(name="math"))
        verdicts[i] = math_answer(response, record, timeout_s=timeout).value
    print(json.dumps([verdicts[i] for i in range(len(pairs))]))
    """
)


def test_verdicts_do_not_depend_on_hash_seed_or_scoring_order() -> None:
    """Real processes with different PYTHONHASHSEED values score the pairs forwards and
    backwards, in worker processes and in the scoring thread: one verdict each."""
    n = len(DETERMINISM_PAIRS)
    runs = []
    for seed, order, timeout in [
        ("0", list(range(n)), None), ("1", list(range(n))[::-1], None),
        ("2", [*range(0, n, 2), *range(1, n, 2)], None), ("3", list(range(n)), 5.0),
        ("4", list(range(n))[::-1], 5.0),
    ]:  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", _DETERMINISM_SCRIPT, json.dumps(DETERMINISM_PAIRS),
             json.dumps(order), json.dumps(timeout)],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert all(run == runs[0] for run in runs), runs
    # the undefined answers never pass; the defined ones get their verdicts
    assert runs[0] == [0.0] * 8 + [1.0] * 4 + [0.0, 0.0]
