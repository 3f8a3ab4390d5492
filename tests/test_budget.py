"""``--index-budget``: the run never spends more, across xdist workers, and resumes when raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_valid_results

from pytest_evalindex.run.budget import BudgetReached, Ledger, prompt_token_bound
from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

N = 20
MAX_TOKENS = 100
SPEC = f"""
name: capped
sampler: uniform
count: {N}
seed: 2
model:
  generation: {{max_tokens: {MAX_TOKENS}}}
  pricing: {{input: 1.0, output: 10.0}}
datasets:
  - name: facts
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""
PROMPT = 10
# every answer uses all of max_tokens: the most a request may cost is what it costs
EACH = (PROMPT * 1.0 + MAX_TOKENS * 10.0) / 1e6
BUDGET = 7.5 * EACH


def worst_case(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    content = "A" + str(messages[-1]["content"]).split()[-1]
    usage = {"prompt_tokens": PROMPT, "completion_tokens": body["max_tokens"]}
    return {"content": content, "usage": usage}


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", capped=SPEC)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(N)]
    (pytester.path / "facts.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run(pytester: pytest.Pytester, server: FakeOpenAI, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--index", "capped.yaml", "--index-base-url", server.base_url, "--index-model", "m",
        "-p", "no:cacheprovider", "--index-json", "out.json", "--index-concurrency", "8", *args,
    )  # fmt: skip


def results_of(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((pytester.path / "out.json").read_text("utf-8"))
    assert_valid_results(document)
    return document


# --------------------------------------------------------------------------- the ledger


def test_the_ledger_holds_settles_releases_and_stops(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, run="r1", budget=1.0)
    other = Ledger(tmp_path, run="r1", budget=1.0)  # another process of the same run
    first = ledger.reserve("model", 0.6)
    with pytest.raises(BudgetReached, match=r"budget reached.*0\.6000 in flight"):
        other.reserve("model", 0.5)
    # once stopped, nothing more is sent, even what would fit
    with pytest.raises(BudgetReached, match="budget reached"):
        ledger.reserve("model", 0.01)
    ledger.settle(first, 0.25)
    assert other.spent() == pytest.approx(0.25)
    # another run has its own budget
    fresh = Ledger(tmp_path, run="r2", budget=1.0)
    hold = fresh.reserve("judge", 0.9)
    fresh.release(hold)
    fresh.settle(fresh.reserve("judge", 0.95), 0.95)
    assert fresh.spent() == pytest.approx(0.95)
    for each in (ledger, other, fresh):
        each.close()


def test_the_prompt_bound_is_at_least_the_bytes_of_the_text() -> None:
    messages = [{"role": "user", "content": "héllo wörld"}]
    assert prompt_token_bound(messages) >= len("héllo wörld".encode())


# --------------------------------------------------------------------------- plugin runs


def test_the_run_never_spends_more_and_resumes_when_raised(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=worst_case, latency=0.02) as server:
        capped = run(project, server, "--index-budget", f"{BUDGET}", *run_mode)
        asked = server.request_count
        document = results_of(project)
        raised = run(project, server, "--index-budget", "1", *run_mode)
        asked_again = server.request_count - asked
    # the answers each cost EACH, as the server reported: never more than the budget
    assert 1 <= asked <= 7
    assert asked * EACH <= BUDGET
    cost = document["usage"]["cost"]
    assert cost["total"] == pytest.approx(asked * EACH)
    assert cost["budget"] == pytest.approx(BUDGET)
    errors = [s for s in document["samples"] if s["outcome"] == "error"]
    assert len(errors) == N - asked == cost["budget_reached"]
    assert all("budget reached" in s["explanation"] for s in errors)
    assert capped.ret == 1
    capped.stdout.fnmatch_lines([f"budget reached: {N - asked} records not asked*rerun*"])
    # raised: only the records not asked are asked, the rest come from the cache
    assert raised.ret == 0, raised.stdout.str()
    assert asked_again == N - asked
    again = results_of(project)["usage"]["cost"]
    assert again["total"] == pytest.approx((N - asked) * EACH)
    assert again["cached"] == pytest.approx(asked * EACH)


def test_a_budget_without_prices_stops_before_any_request(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    project.makefile(".yaml", capped=SPEC.replace("  pricing:", "  # pricing:"))
    with FakeOpenAI(responder=worst_case) as server:
        result = run(project, server, "--index-budget", "1", *run_mode)
        assert server.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--index-budget 1 needs the model's prices*--index-price*"])


def test_a_budget_without_max_tokens_stops_before_any_request(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    project.makefile(".yaml", capped=SPEC.replace("max_tokens: 100", "temperature: 0"))
    with FakeOpenAI(responder=worst_case) as server:
        result = run(project, server, "--index-budget", "1", *run_mode)
        assert server.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*needs a bound on every answer*model.generation.max_tokens*"])


def test_a_budget_with_an_unpriced_judge_stops_before_any_request(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    judged = SPEC.replace("scorer: exact_match", "scorer: {name: judge, args: {template: binary}}")
    project.makefile(".yaml", capped=judged + "judge: {name: j}\n")
    with FakeOpenAI(responder=worst_case) as server:
        result = run(project, server, "--index-budget", "1", *run_mode)
        assert server.request_count == 0
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*2 problems*", "*judge.pricing*", "*judge.generation.max_tokens*"]
    )
