"""Gate expressions: parsing, precise errors, evaluation against a results document."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import pytest
from factories import make_results, make_sample

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.gates import (
    Gate,
    evaluate_gates,
    failed,
    format_verdicts,
    parse_gate,
    parse_gates,
)

# the samples of a two-dataset index named rag_index
sample = partial(make_sample, index="rag_index", task_type="knowledge", weight=0.5)


@pytest.fixture
def results() -> dict[str, Any]:
    """faq: 8 of 10 right (en, rag); quiz: 3 of 10 right, 2 errors (en); index 0.55."""
    samples = [
        sample(f"faq/{i}", float(i < 8), tags=("en", "rag"), subset="billing") for i in range(10)
    ]
    samples += [
        sample(f"quiz/{i}", float(i < 3), task_type="reasoning", tags=("en",)) for i in range(10)
    ]
    samples += [
        sample(f"quiz/{10 + i}", None, task_type="reasoning", tags=("en",)) for i in range(2)
    ]
    return make_results(samples, index_name="support")


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "table", "name", "metric", "op", "threshold"),
    [
        ("index>=0.5", "index", None, "weighted", ">=", 0.5),
        ("index >= 50%", "index", None, "weighted", ">=", 0.5),
        ("  index.micro > 0.25 ", "index", None, "micro", ">", 0.25),
        ("task_type:instruction>=0.9", "task_type", "instruction", "weighted", ">=", 0.9),
        ("tag: zh >= 35 %", "tag", "zh", "weighted", ">=", 0.35),
        ("tag:zh.micro>=0.4", "tag", "zh", "micro", ">=", 0.4),
        ("dataset:gsm8k.macro<0.99", "dataset", "gsm8k", "macro", "<", 0.99),
        ("dataset:v1.2<=1", "dataset", "v1.2", "weighted", "<=", 1.0),
        ("subset:mmlu/physics==0.5", "subset", "mmlu/physics", "weighted", "==", 0.5),
        ("category:reasoning_index/math>=0.6", "category", "reasoning_index/math",
         "weighted", ">=", 0.6),
        ("index.ci_low>=0.5", "index", None, "ci_low", ">=", 0.5),
        ("errors<=3", "index", None, "errors", "<=", 3),
        ("count >= 100", "index", None, "count", ">=", 100),
        ("tag:zh.count>=20", "tag", "zh", "count", ">=", 20),
    ],
)  # fmt: skip
def test_parse_gate(
    text: str, table: str, name: str | None, metric: str, op: str, threshold: float
) -> None:
    gate = parse_gate(text)
    assert (gate.table, gate.name, gate.metric, gate.op) == (table, name, metric, op)
    assert gate.threshold == pytest.approx(threshold)
    assert str(gate) == text.strip()


def test_count_thresholds_are_ints() -> None:
    assert isinstance(parse_gate("errors<=3").threshold, int)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tag:zh=>0.3",
            "gate 'tag:zh=>0.3': unknown operator '=>'; expected one of >=, >, <=, <, ==",
        ),
        ("tag:zh!=0.3", "unknown operator '!='"),
        ("index 0.5", "gate 'index 0.5': no comparison; expected e.g. 'index>=0.5'"),
        ("index>=", "no threshold after '>='"),
        (">=0.5", "nothing before '>='"),
        ("idx>=0.5", "unknown target 'idx'; expected index, errors, count or task_type:NAME"),
        ("tags:zh>=0.5", "unknown table 'tags'; expected task_type:NAME, tag:NAME"),
        ("tag>=0.5", "'tag' needs a name, e.g. 'tag:NAME>=0.5'"),
        ("tag:>=0.5", "no name after 'tag:'"),
        ("subset:physics>=0.5", "a subset is named DATASET/SUBSET"),
        ("index>=50", "a score threshold is between 0 and 1 (or 0% and 100%); did you mean 50%?"),
        ("index>=150%", "a score threshold is between 0 and 1"),
        ("index>=high", "threshold 'high' is not a number such as 0.5 or 50%"),
        ("index>=nan", "a score threshold is between 0 and 1"),
        ("errors<=1.5", "a count threshold is a whole number, got '1.5'"),
        ("count>=-1", "a count threshold is 0 or more, got -1"),
    ],
)
def test_malformed_gates_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_gate(text)
    assert message in str(info.value)
    assert str(info.value).startswith(f"gate {text.strip()!r}: ")


def test_parse_gate_is_an_argparse_type(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="prog")
    parser.add_argument("--gate", type=parse_gate, action="append", default=[])
    args = parser.parse_args(["--gate", "index>=0.5", "--gate", "tag:zh>=30%"])
    assert [g.text for g in args.gate] == ["index>=0.5", "tag:zh>=30%"]
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--gate", "tag:zh=>0.3"])
    assert info.value.code == 2
    assert "unknown operator '=>'" in capsys.readouterr().err


def test_pytest_reports_a_bad_gate_as_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_evalindex.results.gates import parse_gate

        def pytest_addoption(parser):
            parser.addoption("--my-gate", type=parse_gate, action="append")
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--my-gate", "index=>0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown operator '=>'; expected one of >=, >, <=, <, ==*"])
    assert "Traceback" not in result.stderr.str()


def test_parse_gates_of_a_spec_name_the_entry() -> None:
    gates = parse_gates(["index >= 0.50", "task_type:instruction >= 0.90"], file="index.yaml")
    assert [g.target for g in gates] == ["index", "task_type:instruction"]
    with pytest.raises(EvalIndexError) as info:
        parse_gates(["index>=0.5", "tag:zh=>0.3"], file="index.yaml")
    assert str(info.value).startswith("index.yaml: gates[1]: gate 'tag:zh=>0.3': unknown operator")
    with pytest.raises(EvalIndexError, match=r"gates\[0\]: a gate is a string"):
        parse_gates([0.5])


# --------------------------------------------------------------------------- evaluation


def test_index_gate_compares_the_score(results: dict[str, Any]) -> None:
    assert results["index"]["score"] == pytest.approx(0.55)
    verdicts = evaluate_gates([parse_gate("index>=0.5"), parse_gate("index>=0.6")], results)
    assert [v.passed for v in verdicts] == [True, False]
    assert verdicts[0].value == pytest.approx(0.55)
    assert verdicts[0].ci95 == results["index"]["ci95"]
    assert verdicts[1].reason == "index weighted 0.5500 < 0.6000"


def test_row_gates_compare_the_weighted_value(results: dict[str, Any]) -> None:
    rows = {r["name"]: r for r in results["tables"]["tag"]}
    assert rows["en"]["weighted"] == pytest.approx(0.55)
    assert rows["en"]["micro"] == pytest.approx(11 / 20)
    verdicts = evaluate_gates(
        [
            parse_gate("tag:rag>=0.8"),
            parse_gate("task_type:reasoning>0.3"),
            parse_gate("dataset:quiz==30%"),
            parse_gate("subset:faq/billing>=0.9"),
            parse_gate("category:rag_index/faq>=0.8"),
        ],
        results,
    )
    assert [v.passed for v in verdicts] == [True, False, True, False, True]
    assert verdicts[1].reason == "task_type:reasoning weighted 0.3000 <= 0.3000"


def test_count_and_error_gates(results: dict[str, Any]) -> None:
    verdicts = evaluate_gates(
        [
            parse_gate("errors<=1"),
            parse_gate("errors<=2"),
            parse_gate("count>=20"),
            parse_gate("dataset:quiz.errors==2"),
        ],
        results,
    )
    assert [v.passed for v in verdicts] == [False, True, True, True]
    assert verdicts[0].value == 2 and verdicts[0].reason == "index errors 2 > 1"
    assert verdicts[2].ci95 is None


def test_interval_gates(results: dict[str, Any]) -> None:
    low, high = results["index"]["ci95"]
    verdicts = evaluate_gates(
        [parse_gate(f"index.ci_low>={low - 0.01:.4f}"), parse_gate(f"index.ci_high<={high:.2f}")],
        results,
    )
    assert verdicts[0].passed
    assert verdicts[0].value == pytest.approx(low)
    assert verdicts[1].value == pytest.approx(high)


def test_a_missing_row_fails_and_lists_what_there_is(results: dict[str, Any]) -> None:
    (verdict,) = evaluate_gates([parse_gate("tag:zh>=0.3")], results)
    assert not verdict.passed
    assert verdict.value is None
    assert verdict.reason == "no tag named 'zh' in this run (tags: en, rag)"
    (verdict,) = evaluate_gates([parse_gate("task_type:instruction>=0.9")], results)
    assert verdict.reason == (
        "no task_type named 'instruction' in this run (task types: knowledge, reasoning)"
    )


def test_a_row_without_scores_fails() -> None:
    samples = [sample("faq/0", 1.0), sample("quiz/0", None, tags=("zh",))]
    results = build_results(samples, index_name="x", run={}, n_boot=0)
    (verdict,) = evaluate_gates([parse_gate("tag:zh>=0")], results)
    assert not verdict.passed
    assert verdict.reason == "tag:zh has no scored samples (count 0)"
    (verdict,) = evaluate_gates([parse_gate("index.ci_low>=0")], results)
    assert verdict.reason == "index has no interval (count 1)"


def test_format_verdicts(results: dict[str, Any]) -> None:
    verdicts = evaluate_gates(
        [parse_gate("index >= 0.5"), parse_gate("tag:zh>=0.3"), parse_gate("errors<=5")], results
    )
    lines = format_verdicts(verdicts)
    assert lines[0].split() == ["gate", "value", "95%", "CI", "result"]
    assert set(lines[1]) == {"-"}
    assert lines[2].startswith("index >= 0.5") and lines[2].endswith("PASS")
    assert "0.5500" in lines[2]
    assert lines[3].startswith("tag:zh>=0.3") and lines[3].endswith("FAIL")
    assert lines[4].split()[1:] == ["2", "-", "PASS"]
    assert lines[5] == "FAIL tag:zh>=0.3: no tag named 'zh' in this run (tags: en, rag)"
    assert len({len(line) for line in lines[:2]}) == 1
    assert [v.gate for v in failed(verdicts)] == ["tag:zh>=0.3"]
    assert format_verdicts([]) == []


def test_gate_is_hashable_and_frozen() -> None:
    gate = parse_gate("index>=0.5")
    assert {gate: 1}[Gate("index>=0.5", "index", None, "weighted", ">=", 0.5)] == 1
