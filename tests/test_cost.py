"""Prices: what a run cost, by dataset, for the judge and in total, everywhere it is shown."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pytest
from factories import make_results, make_sample
from helpers import assert_valid_results

from pytest_evalindex.report.markdown import format_markdown
from pytest_evalindex.report.terminal import format_summary
from pytest_evalindex.results.usage import answer_cost, cost_summary
from pytest_evalindex.run.budget import parse_price
from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

N = 6
SPEC = f"""
name: priced
sampler: uniform
count: {N}
seed: 1
model:
  generation: {{max_tokens: 50}}
  pricing: {{input: 2.0, output: 10.0, cached_input: 1.0}}
datasets:
  - name: facts
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""
# every model answer reports these tokens: its cost is fixed
PROMPT, COMPLETION = 100, 20
EACH = (PROMPT * 2.0 + COMPLETION * 10.0) / 1e6


def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    content = "A" + str(messages[-1]["content"]).split()[-1]
    return {"content": content, "usage": {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION}}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", priced=SPEC)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(N)]
    (pytester.path / "facts.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run(pytester: pytest.Pytester, server: FakeOpenAI, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--index", "priced.yaml", "--index-base-url", server.base_url, "--index-model", "m",
        "-p", "no:cacheprovider", "--index-json", "out.json", "--index-markdown", "out.md",
        "--index-html", "out.html", *args,
    )  # fmt: skip


def results_of(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((pytester.path / "out.json").read_text("utf-8"))
    assert_valid_results(document)
    return document


# --------------------------------------------------------------------------- pure functions


def test_answer_cost_prices_cached_prompt_tokens_apart() -> None:
    prices = {"input": 2.0, "output": 10.0, "cached_input": 0.5}
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "cached_tokens": 400}
    assert answer_cost(usage, prices) == pytest.approx((600 * 2.0 + 400 * 0.5 + 100 * 10.0) / 1e6)
    # without a cached price the cached tokens cost the input price
    assert answer_cost(usage, {"input": 2.0, "output": 10.0}) == pytest.approx(3000 / 1e6)
    assert answer_cost({}, prices) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.50,1.50", {"input": 0.5, "output": 1.5}),
        (" 3 , 15 , 0.3 ", {"input": 3.0, "output": 15.0, "cached_input": 0.3}),
        ("0,0", {"input": 0.0, "output": 0.0}),
    ],
)
def test_price_text_is_read(text: str, expected: dict[str, float]) -> None:
    assert parse_price(text) == expected


@pytest.mark.parametrize("text", ["1.5", "a,b", "1,-2", "1,2,3,4", "1,inf", ""])
def test_bad_price_text_says_what_was_expected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="INPUT,OUTPUT"):
        parse_price(text)


def test_cost_summary_splits_model_judge_and_cached_by_dataset() -> None:
    prices = {"input": 1.0, "output": 2.0}
    asked = make_sample("a", 1.0, dataset="d1", usage={"prompt_tokens": 10, "completion_tokens": 5})
    asked["judge_calls"] = [
        {"usage": {"prompt_tokens": 1, "completion_tokens": 1}, "cached": False, "cost": 0.25},
        {"usage": {"prompt_tokens": 1, "completion_tokens": 1}, "cached": True, "cost": 0.5},
    ]
    cached = make_sample(
        "b", 1.0, dataset="d2", usage={"prompt_tokens": 100, "completion_tokens": 0}
    )
    cached["cached"] = True
    cost = cost_summary([asked, cached], prices=prices)
    assert cost is not None
    assert cost["model"] == pytest.approx(20 / 1e6)
    assert cost["judge"] == pytest.approx(0.25)
    assert cost["total"] == pytest.approx(0.25 + 20 / 1e6)
    assert cost["by_dataset"] == {"d1": pytest.approx(0.25 + 20 / 1e6), "d2": 0.0}
    # what the cached answer and the cached verdict cost when first asked
    assert cost["cached"] == pytest.approx(0.5 + 100 / 1e6)
    assert cost_summary([make_sample("c", 1.0)], prices=None) is None


def test_terminal_and_markdown_show_the_cost_table_and_the_first_cost() -> None:
    sample = make_sample(
        "a", 1.0, dataset="d1", usage={"prompt_tokens": 10, "completion_tokens": 5}
    )
    sample["cached"] = True
    results = make_results([sample])
    cost = cost_summary([sample], prices={"input": 1000.0, "output": 2000.0}, budget=1.0)
    assert cost is not None
    results["usage"]["cost"] = cost
    text = "\n".join(format_summary(results))
    assert "cost (USD)" in text
    assert "they cost $0.020000 when first asked" in text
    assert "budget: $0.000000 spent of --index-budget $1" in text
    markdown = format_markdown(results)
    assert "### Cost" in markdown
    assert "| d1 | 0.000000 | - | 0.000000 | 0.020000 |" in markdown


# --------------------------------------------------------------------------- plugin runs


def test_a_priced_run_reports_its_cost_and_a_rerun_costs_nothing(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=answer) as server:
        first = run(project, server, *run_mode)
        asked = server.request_count
        second = run(project, server, *run_mode)
        assert server.request_count == asked  # the rerun came from the cache
    assert first.ret == 0, first.stdout.str()
    assert asked == N
    cost = results_of(project)["usage"]["cost"]
    first.stdout.fnmatch_lines(["cost (USD)*model*judge*total*cached", f"total*{N * EACH:.6f}*"])
    # the rerun: nothing spent, and what the answers cost when first asked
    assert cost["model"] == 0.0 and cost["total"] == 0.0
    assert cost["judge"] is None
    assert cost["cached"] == pytest.approx(N * EACH)
    assert cost["prices"] == {"input": 2.0, "output": 10.0, "cached_input": 1.0}
    second.stdout.fnmatch_lines(
        [f"cached answers cost nothing this run; they cost ${N * EACH:.6f}*"]
    )
    markdown = (project.path / "out.md").read_text("utf-8")
    assert (
        "### Cost" in markdown
        and f"| total | 0.000000 | - | 0.000000 | {N * EACH:.6f} |" in markdown
    )
    assert '"cost"' in (project.path / "out.html").read_text("utf-8")


def test_merged_shards_cost_what_the_whole_run_costs(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=answer) as server:
        for shard in ("1/2", "2/2"):
            result = run(project, server, "--index-no-cache", "--index-shard", shard, *run_mode)
            assert result.ret == 0, result.stdout.str()
            (project.path / "out.json").rename(project.path / f"shard{shard[0]}.json")
        assert server.request_count == N
    merged = project.run(
        sys.executable, "-m", "pytest_evalindex.cli", "merge", "shard1.json", "shard2.json",
        "-o", "all.json",
    )  # fmt: skip
    assert merged.ret == 0, merged.stderr.str()
    document = json.loads((project.path / "all.json").read_text("utf-8"))
    assert_valid_results(document)
    cost = document["usage"]["cost"]
    assert cost["model"] == cost["total"] == pytest.approx(N * EACH)
    assert cost["by_dataset"] == {"facts": pytest.approx(N * EACH)}
    assert cost["prices"] == {"input": 2.0, "output": 10.0, "cached_input": 1.0}


def test_shards_priced_differently_are_not_merged(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=answer) as server:
        for shard, price in (("1/2", "2,10"), ("2/2", "3,10")):
            result = run(
                project, server, "--index-no-cache", "--index-shard", shard,
                "--index-price", price, *run_mode,
            )  # fmt: skip
            assert result.ret == 0, result.stdout.str()
            (project.path / "out.json").rename(project.path / f"shard{shard[0]}.json")
    merged = project.run(
        sys.executable, "-m", "pytest_evalindex.cli", "merge", "shard1.json", "shard2.json",
        "-o", "all.json",
    )  # fmt: skip
    assert merged.ret == 4
    assert "the shards were priced differently (usage.cost.prices)" in merged.stderr.str()
    assert not (project.path / "all.json").exists()


def test_the_price_option_overrides_the_spec(project: pytest.Pytester, run_mode: list[str]) -> None:
    with FakeOpenAI(responder=answer) as server:
        result = run(project, server, "--index-no-cache", "--index-price", "1,1", *run_mode)
    assert result.ret == 0, result.stdout.str()
    cost = results_of(project)["usage"]["cost"]
    assert cost["model"] == pytest.approx(N * (PROMPT + COMPLETION) / 1e6)
    assert cost["by_dataset"] == {"facts": pytest.approx(N * (PROMPT + COMPLETION) / 1e6)}


def test_cached_prompt_tokens_the_provider_reports_are_priced_apart(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    def cached_prompt(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        reply = answer(messages, body)
        reply["usage"]["prompt_tokens_details"] = {"cached_tokens": 60}
        return reply

    with FakeOpenAI(responder=cached_prompt) as server:
        result = run(project, server, "--index-no-cache", *run_mode)
    assert result.ret == 0, result.stdout.str()
    document = results_of(project)
    assert {s["usage"]["cached_tokens"] for s in document["samples"]} == {60}
    each = (40 * 2.0 + 60 * 1.0 + COMPLETION * 10.0) / 1e6
    assert document["usage"]["cost"]["model"] == pytest.approx(N * each)


def test_a_run_without_prices_writes_no_cost(project: pytest.Pytester, run_mode: list[str]) -> None:
    project.makefile(".yaml", priced=SPEC.replace("  pricing:", "  # pricing:"))
    with FakeOpenAI(responder=answer) as server:
        result = run(project, server, "--index-no-cache", *run_mode)
    assert result.ret == 0, result.stdout.str()
    document = results_of(project)
    assert "cost" not in document["usage"]
    assert "cost (USD)" not in result.stdout.str()


JUDGED = """
name: judged
model:
  pricing: {input: 1.0, output: 1.0}
judge:
  name: judge-m
  pricing: {input: 3.0, output: 30.0}
datasets:
  - name: qa
    adapter: general_qa
    source: qa.jsonl
    fields: {id: id, input: q, target: a}
    scorer: {name: judge, args: {template: binary}}
  - name: facts
    adapter: general_qa
    source: facts.jsonl
    fields: {id: id, input: q, target: a}
    scorer: exact_match
"""


def test_the_judge_is_priced_apart_and_by_dataset(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    pytester.makefile(".yaml", judged=JUDGED)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(4)]
    (pytester.path / "qa.jsonl").write_text("\n".join(rows) + "\n")
    # other prompts: the same prompt twice would be answered once, from the cache
    (pytester.path / "facts.jsonl").write_text(
        "\n".join(r.replace("question", "fact") for r in rows) + "\n"
    )

    def reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        if body["model"] == "judge-m":
            return {
                "content": "GRADE: CORRECT",
                "usage": {"prompt_tokens": 50, "completion_tokens": 2},
            }
        return answer(messages, body)

    args = ["--index", "judged.yaml", "--index-model", "m", "-p", "no:cacheprovider",
            "--index-json", "out.json"]  # fmt: skip
    with FakeOpenAI(responder=reply) as server:
        result = pytester.runpytest("--index-base-url", server.base_url, *args, *run_mode)
    assert result.ret == 0, result.stdout.str()
    document = results_of(pytester)
    cost = document["usage"]["cost"]
    verdict = (50 * 3.0 + 2 * 30.0) / 1e6
    model_each = (PROMPT + COMPLETION) / 1e6
    assert cost["judge"] == pytest.approx(4 * verdict)
    assert cost["model"] == pytest.approx(8 * model_each)
    assert cost["total"] == pytest.approx(4 * verdict + 8 * model_each)
    assert cost["by_dataset"] == {
        "qa": pytest.approx(4 * (verdict + model_each)),
        "facts": pytest.approx(4 * model_each),
    }
    judged = [s for s in document["samples"] if s["dataset"] == "qa"]
    assert all(len(s["judge_calls"]) == 1 for s in judged)
    assert all("judge_calls" not in s for s in document["samples"] if s["dataset"] == "facts")
    result.stdout.fnmatch_lines([f"qa*{4 * model_each:.6f}*{4 * verdict:.6f}*"])


def test_bad_pricing_in_the_spec_is_a_usage_error(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    project.makefile(".yaml", priced=SPEC.replace("input: 2.0", "input: cheap"))
    result = project.runpytest(
        "--index", "priced.yaml", "--index-base-url", "http://x/v1", *run_mode
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*priced.yaml:7: model.pricing.input*"])


def test_bad_price_option_is_a_usage_error_naming_it(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    result = project.runpytest("--index", "priced.yaml", "--index-price", "0.5", *run_mode)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*argument --index-price: expected INPUT,OUTPUT*'0.5'*"])
