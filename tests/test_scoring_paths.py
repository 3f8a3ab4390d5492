"""Scoring never holds up the requests: cheap paths first, heavy scorers beside the requests.

The answer-level equivalence of the cheap math comparison and math-verify is covered pair by
pair in test_math_scorer.py (``test_cheap_path_changes_cost_not_result``); here it is
checked on whole responses, and by counting what reaches the symbolic check.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.run.client import ModelAnswer
from pytest_evalindex.run.evaluation import blank_sample, evaluate
from pytest_evalindex.run.lookahead import ScoreAhead, lookahead_depth, work_unit_size
from pytest_evalindex.run.writing import results_text
from pytest_evalindex.scoring import (
    Score,
    ScorerError,
    math_scorer,
    resolve_scorer,
)
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Message, Record, ScorerRef

pytest_plugins = ["pytester"]


def math_record(target: str, record_id: str = "gsm8k/1") -> Record:
    return Record(
        id=record_id,
        dataset="gsm8k",
        input=[Message(role="user", content="How many?")],
        target=target,
        scorer=ScorerRef(name="math"),
    )


class CountingPool:
    """Counts the math-verify calls the scorer makes, with the counter it exposes."""

    def __init__(self) -> None:
        self.start = math_scorer.symbolic_calls()

    @property
    def calls(self) -> list[int]:
        return list(range(math_scorer.symbolic_calls() - self.start))


@pytest.fixture
def pool() -> CountingPool:
    return CountingPool()


# --------------------------------------------------------------------------- cheap paths


@pytest.mark.parametrize(
    ("response", "target"),
    [
        ("72", "72"),
        ("So the answer is $\\boxed{72}$.", "72"),
        ("ANSWER: 1,000", "1000"),
        ("The answer is $1{,}000$.", "1000"),
        ("\\boxed{1000}", "Natalia sold 48/2 = 24 clips.\n#### 1,000"),
        ("\\boxed{0.5}", "\\frac{1}{2}"),
        ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}"),
        ("\\boxed{\\frac{144}{2}}", "72"),
        ("\\boxed{72.00}", "72"),
        ("The answer is $x = 5$.", "5"),
        ("\\boxed{30^\\circ}", "30"),
    ],
)
def test_an_answer_settled_by_normalisation_runs_no_symbolic_check(
    pool: CountingPool, response: str, target: str
) -> None:
    score = math_scorer.math_answer(response, math_record(target))
    assert score.value == 1.0, score.explanation
    assert pool.calls == []


def test_a_different_integer_is_settled_without_a_symbolic_check(pool: CountingPool) -> None:
    score = math_scorer.math_answer("ANSWER: 73", math_record("72"))
    assert score.value == 0.0
    assert score.explanation.endswith("different numbers")
    assert pool.calls == []


@pytest.mark.parametrize(
    ("response", "target", "value"),
    [
        ("\\boxed{2+3x}", "3x+2", 1.0),
        ("\\boxed{24 \\cdot 3}", "72", 1.0),
        ("\\boxed{\\sqrt{5184}}", "72", 1.0),
        ("\\boxed{71 + 1}", "73", 0.0),
    ],
)
def test_an_answer_that_differs_on_the_surface_gets_one_symbolic_check(
    pool: CountingPool, response: str, target: str, value: float
) -> None:
    score = math_scorer.math_answer(response, math_record(target))
    assert score.value == value, score.explanation
    assert len(pool.calls) == 1


# whole responses, as models write them, and targets in the layouts of the benchmarks
RESPONSES = [
    ("She has 3 + 4 = 7 apples.\nANSWER: 7", "#### 7"),
    ("... so $\\boxed{1{,}250}$ dollars.", "1250"),
    ("The answer is \\$18.90.", "18.90"),
    ("Total: 5 \\text{ cm}", "5"),
    ("We get \\boxed{\\frac{3}{4}}", "0.75"),
    ("We get \\boxed{0.333}", "\\frac{1}{3}"),
    ("Therefore \\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}"),
    ("\\boxed{(x+1)^2}", "x^2+2x+1"),
    ("\\boxed{[1, 2)}", "[1,2)"),
    ("\\boxed{(1,2)}", "(2,1)"),
    ("ANSWER: 72", "73"),
    ("I am not sure.", "4"),
    ("\\boxed{\\text{Evelyn}}", "\\text{Evelyn}"),
    ("\\boxed{-5}", "5"),
    ("\\boxed{12 \\times 6}", "72"),
]


def test_scores_are_identical_to_always_running_the_full_check(
    pool: CountingPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scores() -> list[float]:
        return [
            math_scorer.math_answer(response, math_record(target)).value
            for response, target in RESPONSES
        ]

    cheap_first = scores()
    checks_with_shortcut = len(pool.calls)
    full_check = functools.partial(math_scorer.answers_match, shortcut=False)
    monkeypatch.setattr(math_scorer, "answers_match", full_check)
    always_full = scores()
    assert cheap_first == always_full
    assert sum(cheap_first) == 10  # the set holds both verdicts, so the check can fail
    # the cheap path spared some symbolic checks, and not all of them
    assert 0 < checks_with_shortcut < len(pool.calls) - checks_with_shortcut


# --------------------------------------------------------------------------- worker pool


def test_a_prestarted_worker_serves_the_first_call() -> None:
    pool = math_scorer.WorkerPool("math:sqrt", max_workers=2)
    try:
        pool.prestart()
        pool.prestart()  # one is starting already: nothing more
        assert pool.call((49,), 60) == 7.0
        assert pool.call((64,), 60) == 8.0
        assert pool.started_workers == 1
        assert pool.idle_workers == 1
    finally:
        pool.close()
    assert pool.idle_workers == 0
    assert pool.started_workers == 1


def test_closing_a_pool_stops_the_worker_it_is_starting() -> None:
    pool = math_scorer.WorkerPool("math:sqrt", max_workers=1)
    pool.prestart()
    pool.close()
    with pytest.raises(ScorerError, match="closed"):
        pool.call((4,), 10)


# --------------------------------------------------------------------------- scoring ahead


def scored_in_thread(response: str, record: Record) -> Score:
    if response == "boom":
        raise ScorerError("cannot score boom")
    return Score(float(response == record.target), threading.current_thread().name)


def test_score_ahead_hands_over_the_score_of_the_same_answer() -> None:
    record = math_record("72")
    ahead = ScoreAhead(lambda r: scored_in_thread, threads=1)
    try:
        ahead.start(record, 0, ModelAnswer(content="72"))
        ahead.start(record, 1, ModelAnswer(content="70"))
        score = ahead.take(record, 0, "72")
        assert score is not None
        assert score.value == 1.0
        assert score.explanation.startswith("evalindex-score")
        assert ahead.take(record, 0, "72") is None  # taken once
        assert ahead.take(record, 1, "something else") is None  # not this answer's score
    finally:
        ahead.close()


def test_score_ahead_raises_what_the_scorer_raised() -> None:
    record = math_record("72")
    ahead = ScoreAhead(lambda r: scored_in_thread, threads=1)
    try:
        ahead.start(record, 0, ModelAnswer(content="boom"))
        with pytest.raises(ScorerError, match="cannot score boom"):
            ahead.take(record, 0, "boom")
    finally:
        ahead.close()


def test_score_ahead_leaves_other_records_to_their_items() -> None:
    record = math_record("72")
    ahead = ScoreAhead(lambda r: None, threads=1)
    try:
        ahead.start(record, 0, ModelAnswer(content="72"))
        assert ahead.take(record, 0, "72") is None
    finally:
        ahead.close()


def test_a_sample_scored_ahead_equals_one_scored_in_the_call() -> None:
    scorer = resolve_scorer(ScorerRef(name="math"))
    record = math_record("\\frac{1}{2}")
    answer = ModelAnswer(
        content="Hence $\\boxed{0.5}$.", usage={"completion_tokens": 3}, latency_s=0.5
    )
    ahead = ScoreAhead(lambda r: scorer, threads=1)
    try:
        ahead.start(record, 0, answer)
        in_call, beside = blank_sample(record, 0), blank_sample(record, 0)
        evaluate(in_call, record, lambda r, i: answer, scorer)
        evaluate(beside, record, lambda r, i: answer, scorer, prescored=ahead.take)
    finally:
        ahead.close()
    assert in_call == beside
    assert beside["outcome"] == "passed"


# --------------------------------------------------------------------------- end to end

MATH_SPEC = """
name: math_index
count: 24
datasets:
  - name: sums
    task_type: math
    adapter: general_qa
    source: sums.jsonl
    fields: {input: q, target: a}
    scorer: math
"""


def math_reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Right in forms that need math-verify, the cheap path, or neither (every fifth)."""
    n = int(messages[-1]["content"].split()[-1].rstrip("?"))
    if n % 5 == 0:
        return f"\\boxed{{{n} + 1}}"
    return f"\\boxed{{{n} \\cdot 2 / 2}}" if n % 2 else f"ANSWER: {n}"


@pytest.fixture
def math_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", spec=MATH_SPEC)
    rows = [json.dumps({"q": f"What is {n}?", "a": str(n)}) for n in range(24)]
    (pytester.path / "sums.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


# the math scorer, saying in its explanation which thread scored: "ahead" keeps the math
# scorer's own traits, "in_call" declares none, as a scorer that works in the interpreter
WHERE_SCORERS = """
import threading

from pytest_evalindex.scoring import Score, math_scorer


def where(response, record):
    score = math_scorer.math_answer(response, record)
    name = threading.current_thread().name
    return Score(score.value, f"{name}| {score.explanation}", extracted=score.extracted)


def ahead(response, record):
    return where(response, record)


def in_call(response, record):
    return where(response, record)


ahead.evalindex_traits = math_scorer.math_answer.evalindex_traits
"""


def use_where_scorers(project: pytest.Pytester) -> None:
    (project.path / "wherescorers.py").write_text(WHERE_SCORERS)
    for name in ("ahead", "in_call"):
        scorer = f'scorer: {{name: "wherescorers:{name}"}}'
        project.makefile(".yaml", **{name: MATH_SPEC.replace("scorer: math", scorer)})


def math_run(
    project: pytest.Pytester, server: FakeOpenAI, spec: str, run_mode: list[str]
) -> dict[str, Any]:
    result = project.runpytest(
        "--index", spec, "--index-base-url", server.base_url, "--index-model", "m",
        "--index-no-cache", "--index-concurrency", "8", "--index-json", "out.json", *run_mode,
    )  # fmt: skip
    assert_outcomes(result, passed=19, missed=5)
    results: dict[str, Any] = json.loads((project.path / "out.json").read_text())
    return results


def threads_and_outcomes(
    results: dict[str, Any],
) -> tuple[set[str], list[tuple[str, str, float, str]]]:
    """The threads that scored, and each sample's outcome with the thread left out."""
    threads, rows = set(), []
    for s in sorted(results["samples"], key=lambda s: s["id"]):
        thread, _, explanation = s["explanation"].partition("| ")
        threads.add(thread)
        rows.append((s["id"], s["outcome"], s["score"], explanation))
    return threads, rows


def test_math_is_scored_beside_the_requests_with_the_same_results(
    math_project: pytest.Pytester, run_mode: list[str]
) -> None:
    math_project.makeconftest("")  # puts this directory on sys.path, for the scorers
    use_where_scorers(math_project)
    with FakeOpenAI(responder=math_reply, latency=0.02) as server:
        threads_ahead, ahead = threads_and_outcomes(
            math_run(math_project, server, "ahead.yaml", run_mode)
        )
        threads_in_call, in_call = threads_and_outcomes(
            math_run(math_project, server, "in_call.yaml", run_mode)
        )
    assert ahead == in_call
    assert len(ahead) == 24
    assert {e for *_, e in ahead if "math-verify" in e}  # the check did run
    assert threads_ahead and all(name.startswith("evalindex-score") for name in threads_ahead)
    assert threads_in_call == {"MainThread"}


TRAITS_SPEC = """
name: traits_index
count: 12
datasets:
  - name: ahead
    weight: 1
    adapter: general_qa
    source: sums.jsonl
    fields: {input: q, target: a}
    scorer: {name: "traitscorers:ahead"}
  - name: plain
    weight: 1
    adapter: general_qa
    source: sums.jsonl
    fields: {input: q, target: a}
    scorer: {name: "traitscorers:plain"}
"""

TRAIT_SCORERS = """
import threading
from pathlib import Path

from pytest_evalindex.scoring import Score, ScorerTraits


def where(response, record):
    return Score(1.0, threading.current_thread().name)


def ahead(response, record):
    return where(response, record)


def plain(response, record):
    return where(response, record)


def started():
    Path(__file__).with_name(f"warmed-{threading.get_native_id()}").write_text("")


ahead.evalindex_traits = ScorerTraits(scores_outside_interpreter=True, warm_up=started)
"""


def test_a_custom_scorer_declares_whether_it_is_scored_ahead(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    pytester.makefile(".yaml", spec=TRAITS_SPEC)
    rows = [json.dumps({"q": f"What is {n}?", "a": str(n)}) for n in range(12)]
    (pytester.path / "sums.jsonl").write_text("\n".join(rows) + "\n")
    (pytester.path / "traitscorers.py").write_text(TRAIT_SCORERS)
    pytester.makeconftest("")  # puts this directory on sys.path, for the scorers
    with FakeOpenAI(responder=lambda messages, body: "1") as server:
        result = pytester.runpytest_subprocess(
            "--index", "spec.yaml", "--index-base-url", server.base_url, "--index-model", "m",
            "--index-no-cache", "--index-json", "out.json", *run_mode,
        )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    samples = json.loads((pytester.path / "out.json").read_text())["samples"]
    explanations: dict[str, set[str]] = {"ahead": set(), "plain": set()}
    for s in samples:
        explanations[s["dataset"]].add(s["explanation"])
    assert explanations["plain"] == {"MainThread"}
    assert explanations["ahead"] and all(
        e.startswith("evalindex-score") for e in explanations["ahead"]
    )
    # the warm-up ran once in each process that runs items
    assert len(list(pytester.path.glob("warmed-*"))) == (2 if run_mode else 1)


def test_behind_a_users_model_wrapper_answers_are_scored_in_the_call(
    math_project: pytest.Pytester, run_mode: list[str]
) -> None:
    math_project.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def model(model):
            def ask(record):
                answer = model(record)
                answer.content = answer.content.replace("ANSWER: 4", "ANSWER: 5")
                return answer
            return ask
        """
    )
    use_where_scorers(math_project)
    with FakeOpenAI(responder=math_reply) as server:
        result = math_project.runpytest(
            "--index", "ahead.yaml", "--index-base-url", server.base_url, "--index-model",
            "m", "--index-no-cache", "--index-json", "out.json", *run_mode,
        )  # fmt: skip
    assert_outcomes(result, passed=18, missed=6)  # the wrapper's change was scored
    threads, _ = threads_and_outcomes(json.loads((math_project.path / "out.json").read_text()))
    # a scorer that would be scored ahead is scored in the call, after the wrapper
    assert threads == {"MainThread"}


SLOW_SPEC = """
name: slow_scoring
count: 32
datasets:
  - name: echo
    adapter: general_qa
    source: rows.jsonl
    fields: {input: q, target: a}
    scorer: {name: "slow_scorer:score"}
"""


class InFlight:
    """A responder that records how many requests are open at the moment each arrives."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.open = 0
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        with self.lock:
            self.open += 1
            self.seen.append(self.open)
        try:
            time.sleep(self.delay)
            return "ok"
        finally:
            with self.lock:
                self.open -= 1


def test_requests_stay_in_flight_while_the_main_thread_scores(
    pytester: pytest.Pytester, run_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makefile(".yaml", slow=SLOW_SPEC)
    pytester.makepyfile(
        slow_scorer="""
        import time

        def score(response, record):
            time.sleep(0.03)  # CPU-heavy scoring in the item's own call
            return response == record.target
        """
    )
    # a subprocess run, so the custom scorer imports there and on its xdist workers
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    rows = [json.dumps({"q": f"case {i}", "a": "ok"}) for i in range(32)]
    (pytester.path / "rows.jsonl").write_text("\n".join(rows) + "\n")
    responder = InFlight(delay=0.2)
    with FakeOpenAI(responder=responder) as server:
        result = pytester.runpytest_subprocess(
            "--index", "slow.yaml", "--index-base-url", server.base_url, "--index-model", "m",
            "--index-no-cache", "--index-concurrency", "8", *run_mode,
        )  # fmt: skip
    assert_outcomes(result, passed=32)
    # while items were being scored, later requests kept arriving with others still open:
    # the pool ran full, not one request per scored item
    assert max(responder.seen) >= 7
    assert sorted(responder.seen)[len(responder.seen) // 2] >= 4


# --------------------------------------------------------------------------- look-ahead


def test_look_ahead_is_twice_the_requests_a_process_keeps_in_flight() -> None:
    assert lookahead_depth(64, 2) == 64
    assert lookahead_depth(8, 1) == 16
    assert lookahead_depth(1, 4) == 2
    # a shard holds at least one look-ahead
    assert work_unit_size(100, 2, 64) == 64


# --------------------------------------------------------------------------- results file


def test_results_file_is_json_with_one_line_a_sample(tmp_path: Path) -> None:
    results = {
        "schema_version": 1,
        "index": {"name": "x", "score": 0.5, "ci95": [0.25, 0.75]},
        "samples": [
            {"id": "a/1", "response": "two\nlines", "tags": ["zh"], "target": "答案"},
            {"id": "a/2", "response": None, "tags": [], "target": None},
        ],
        "run": {"versions": {"python": "3.11"}},
    }
    text = results_text(results)
    assert json.loads(text) == results
    lines = text.splitlines()
    assert sum(line.lstrip().startswith('{"id"') for line in lines) == 2
    assert '"答案"' in text  # kept readable, not escaped
    assert json.loads(results_text({**results, "samples": []}))["samples"] == []
