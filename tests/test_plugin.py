"""The plugin end to end: pytester runs against the real loopback fake server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes, deselected

from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")


SPEC = """
name: demo_index
count: 20
seed: 7
datasets:
  - name: capitals
    weight: 0.6
    task_type: knowledge
    tags: [en, geo]
    adapter: general_qa
    source: capitals.jsonl
    fields: {id: id, input: question, target: answer}
    scorer: includes
  - name: sums
    weight: 0.4
    task_type: math
    tags: [en]
    adapter: general_qa
    source: sums.jsonl
    fields: {input: question, target: answer}
    scorer: numeric
"""

CAPITALS = [
    ("fr", "What is the capital of France?", "Paris"),
    ("de", "What is the capital of Germany?", "Berlin"),
    ("it", "What is the capital of Italy?", "Rome"),
    ("es", "What is the capital of Spain?", "Madrid"),
    ("pt", "What is the capital of Portugal?", "Lisbon"),
    ("jp", "What is the capital of Japan?", "Tokyo"),
]
SUMS = [(f"What is {a} plus {a + 1}?", str(2 * a + 1)) for a in range(1, 9)]


def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Right on everything but Spain and the sums of 4 and 7."""
    question = messages[-1]["content"]
    for _key, q, capital in CAPITALS:
        if q == question:
            return "Barcelona" if "Spain" in q else f"It is {capital}."
    for q, total in SUMS:
        if q == question:
            return "The answer is 3" if ("4 plus" in q or "7 plus" in q) else f"#### {total}"
    return "no idea"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=answer) as fake:
        yield fake


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", demo=SPEC)
    write_jsonl(
        pytester.path / "capitals.jsonl",
        [{"id": k, "question": q, "answer": a} for k, q, a in CAPITALS],
    )
    write_jsonl(pytester.path / "sums.jsonl", [{"question": q, "answer": a} for q, a in SUMS])
    return pytester


def base_args(server: FakeOpenAI) -> list[str]:
    return ["--index", "demo.yaml", "--index-base-url", server.base_url, "--index-model", "m"]


def comparable(results: dict[str, Any]) -> dict[str, Any]:
    """The results without what legitimately differs between runs: timings and whether an
    answer came from the cache."""
    results = json.loads(json.dumps(results))
    results.pop("run")
    results.pop("usage")
    for sample in results["samples"]:
        sample.pop("latency_s")
        sample.pop("cached")
    return results


def test_runs_index_prints_tables_and_writes_json(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "--index-json", "out.json", *run_mode)
    assert result.ret == 0, result.stdout.str()
    assert_outcomes(result, passed=11, missed=3)
    result.stdout.fnmatch_lines(
        [
            "*evalindex: demo_index*",
            "index demo_index: 0.8000 95% CI [[]0.*, *[]]  count 14  errors 0",
            "dataset*micro*macro*weighted*count*errors*95% CI",
            "capitals*0.8333*6*0*",
            "sums*0.7500*8*0*",
            "task_type*",
            "knowledge*0.8333*",
            "tag*",
            "en*0.7857*14*",
            "geo*0.8333*6*",
            "category*",
            "demo_index*",
        ]
    )
    data = json.loads((project.path / "out.json").read_text())
    assert data == json.loads((project.path / ".evalindex" / "last.json").read_text())
    assert data["schema_version"] == 1
    expected = 0.6 * 5 / 6 + 0.4 * 6 / 8
    assert data["index"]["score"] == pytest.approx(expected)
    assert data["index"]["count"] == 14
    assert [s["id"] for s in data["samples"]][:2] == ["capitals/fr", "capitals/de"]
    spain = next(s for s in data["samples"] if s["id"] == "capitals/es")
    assert spain["outcome"] == "missed"
    assert spain["response"] == "Barcelona"
    assert spain["score"] == 0.0
    assert data["run"]["model"] == "m"
    assert data["run"]["base_url"] == server.base_url
    assert len(server.requests) == 14


def test_serial_and_xdist_give_identical_results(
    project: pytest.Pytester, server: FakeOpenAI
) -> None:
    serial = project.runpytest(*base_args(server), "--index-json", "serial.json")
    parallel = project.runpytest(*base_args(server), "--index-json", "xdist.json", "-n", "2")
    assert serial.ret == parallel.ret == 0
    one = json.loads((project.path / "serial.json").read_text())
    two = json.loads((project.path / "xdist.json").read_text())
    assert comparable(one) == comparable(two)

    def tables(out: str) -> list[str]:
        lines = out.splitlines()
        start = next(i for i, line in enumerate(lines) if "evalindex: demo_index" in line)
        # the usage table differs legitimately: the second run is answered from the cache
        end = next(i for i, line in enumerate(lines) if line.startswith("usage "))
        return lines[start + 1 : end]

    assert tables(serial.stdout.str()) == tables(parallel.stdout.str())


def test_node_ids_markers_and_collect_only(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "--collect-only", "-q", *run_mode)
    result.stdout.fnmatch_lines(["demo.yaml::capitals::capitals/fr", "demo.yaml::sums::sums/0"])
    assert len(server.requests) == 0
    result = project.runpytest(*base_args(server), "-m", "geo", "--strict-markers", *run_mode)
    assert_outcomes(result, passed=5, missed=1, **deselected(run_mode, 8))
    result.stdout.fnmatch_lines(["partial: 6 of 14 records (-m)"])
    result = project.runpytest(*base_args(server), "-m", "math and en", "-q", *run_mode)
    assert_outcomes(result, passed=6, missed=2, **deselected(run_mode, 6))
    result.stdout.fnmatch_lines(["partial: 8 of 14 records (-m)"])
    result = project.runpytest(*base_args(server), "-k", "capitals and not es", *run_mode)
    assert_outcomes(result, passed=5, **deselected(run_mode, 9))
    result.stdout.fnmatch_lines(["partial: 5 of 14 records (-k)"])
    result = project.runpytest(*base_args(server), "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.knowledge*", "@pytest.mark.geo*"])


def test_single_node_id_and_exitfirst(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "demo.yaml::sums::sums/3", *run_mode)
    assert_outcomes(result, missed=1)
    assert [r.json["messages"][-1]["content"] for r in server.requests] == [SUMS[3][0]]


def test_strict_turns_missed_into_failures_with_details(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "--index-strict", *run_mode)
    assert result.ret == 1
    assert_outcomes(result, passed=11, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*capitals/es [[]missed[]] score=0.0",
            "*prompt:*What is the capital of Spain?*",
            "*response:*Barcelona*",
            "*target:*Madrid*",
            "*explanation:*",
        ]
    )


def test_missed_details_in_summary_without_strict(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), *run_mode)
    result.stdout.fnmatch_lines(
        [
            "*evalindex: not passed in demo_index*",
            "MISSED capitals/es (score 0.0000)",
            "*prompt:*capital of Spain*",
            "*response: Barcelona",
            "*target:   Madrid",
            "*reason:*",
        ]
    )


@pytest.mark.parametrize(("threshold", "status"), [("0.8", 0), ("0.9", 1), ("90%", 1)])
def test_fail_under(
    project: pytest.Pytester, server: FakeOpenAI, threshold: str, status: int, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "--index-fail-under", threshold, *run_mode)
    assert result.ret == status
    if status:
        result.stdout.fnmatch_lines(
            ["FAIL demo_index: index 0.8000 is below --index-fail-under 0.9"]
        )
    else:
        result.stdout.fnmatch_lines(["PASS index >= --index-fail-under 0.8"])


def test_fail_under_bad_value_is_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--index", "demo.yaml", "--index-fail-under", "1.5")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--index-fail-under*between 0 and 1*"])


def test_http_errors_are_counted_not_averaged(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    def flaky(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if "Italy" in messages[-1]["content"]:
            return {"status": 400, "error": "prompt rejected by content filter"}
        return answer(messages, body)

    with FakeOpenAI(responder=flaky) as fake:
        result = project.runpytest(*base_args(fake), *run_mode)
    assert result.ret == 1
    assert_outcomes(result, passed=10, missed=3, failed=1)
    result.stdout.fnmatch_lines(["*HTTP 400*prompt rejected by content filter*"])
    data = json.loads((project.path / ".evalindex" / "last.json").read_text())
    assert data["index"]["errors"] == 1
    assert data["index"]["count"] == 13
    assert data["index"]["score"] == pytest.approx(0.6 * 4 / 5 + 0.4 * 6 / 8)
    italy = next(s for s in data["samples"] if s["id"] == "capitals/it")
    assert italy["outcome"] == "error"
    assert italy["score"] is None


def test_last_failed_reruns_only_errors(project: pytest.Pytester, run_mode: list[str]) -> None:
    broken = {"on": True}

    def sometimes(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if broken["on"] and "Japan" in messages[-1]["content"]:
            return {"status": 400, "error": "no"}
        return answer(messages, body)

    with FakeOpenAI(responder=sometimes) as fake:
        first = project.runpytest(*base_args(fake), *run_mode)
        assert_outcomes(first, passed=10, missed=3, failed=1)
        broken["on"] = False
        fake.clear_log()
        second = project.runpytest(*base_args(fake), "--lf", *run_mode)
        assert_outcomes(second, passed=1, **deselected(run_mode, 13))
        second.stdout.fnmatch_lines(["partial: 1 of 14 records (--lf)"])
        assert [r.json["messages"][-1]["content"] for r in fake.requests] == [CAPITALS[5][1]]


def test_user_conftest_replaces_the_model(project: pytest.Pytester, run_mode: list[str]) -> None:
    project.makeconftest(
        """
        import pytest

        CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome",
                    "Spain": "Madrid", "Portugal": "Lisbon", "Japan": "Tokyo"}

        def my_pipeline(question):
            for country, city in CAPITALS.items():
                if country in question:
                    return f"The capital is {city}."
            return "#### 0"

        @pytest.fixture(scope="session")
        def model():
            return lambda record: my_pipeline(record.input[-1].content)
        """
    )
    result = project.runpytest("--index", "demo.yaml", *run_mode)
    assert_outcomes(result, passed=6, missed=8)
    data = json.loads((project.path / ".evalindex" / "last.json").read_text())
    assert data["tables"]["dataset"][0]["micro"] == 1.0


def test_junitxml_with_xdist(project: pytest.Pytester, server: FakeOpenAI) -> None:
    result = project.runpytest(*base_args(server), "-n", "2", "--junitxml", "junit.xml")
    assert result.ret == 0
    xml = (project.path / "junit.xml").read_text()
    assert xml.count("<testcase") == 14
    assert 'name="capitals/fr"' in xml


def test_bad_spec_is_usage_error_without_traceback(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        bad="name: x\ndatasets:\n  - name: a\n    wieght: 1\n    adapter: general_qa\n",
    )
    result = pytester.runpytest("--index", "bad.yaml")
    assert result.ret == 4
    err = result.stderr.str()
    assert "bad.yaml" in err and "wieght" in err and "weight" in err
    assert "Traceback" not in err + result.stdout.str()


def test_missing_index_file_is_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--index", "nope.yaml")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*nope.yaml*no such file*"])


def test_plugin_is_inert_without_index(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    assert_outcomes(result, passed=1)
    assert "evalindex:" not in result.stdout.str()
    assert not (pytester.path / ".evalindex").exists()


def test_frozen_testset_runs_like_the_spec(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.jsonl import write_testset
    from pytest_evalindex.testset.sampling import sample_index

    sampled = sample_index(load_spec(project.path / "demo.yaml"))
    write_testset(project.path / "frozen.jsonl", sampled.records, sampled.header)
    project.runpytest(*base_args(server), "--index-json", "a.json")
    frozen_run = project.runpytest(
        "--index", "frozen.jsonl", "--index-base-url", server.base_url,
        "--index-model", "m", "--index-json", "b.json", *run_mode,
    )  # fmt: skip
    assert_outcomes(frozen_run, passed=11, missed=3)
    frozen_run.stdout.fnmatch_lines(["*evalindex: demo_index*"])
    a = comparable(json.loads((project.path / "a.json").read_text()))
    b = comparable(json.loads((project.path / "b.json").read_text()))
    assert a == b


def test_user_conftest_wraps_the_default_model(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    project.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def model(model):
            def ask(record):
                answer = model(record)
                if "Spain" in record.input[-1].content:
                    answer.content = "Madrid"
                return answer
            return ask
        """
    )
    result = project.runpytest(*base_args(server), *run_mode)
    assert_outcomes(result, passed=12, missed=2)
    data = json.loads((project.path / ".evalindex" / "last.json").read_text())
    spain = next(s for s in data["samples"] if s["id"] == "capitals/es")
    assert spain["response"] == "Madrid"
    # the wrapper changed the text, not the usage of the real answer ("Barcelona": one word)
    assert spain["usage"]["completion_tokens"] == 1
    assert len(server.requests) == 14


def test_no_endpoint_stops_at_once_with_one_message(
    project: pytest.Pytester, run_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # a model named but no endpoint: the embedded model is not a stand-in for it
    result = project.runpytest("--index", "demo.yaml", "--index-model", "gpt-x", *run_mode)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # the first record errors and the run stops there, serially and with workers alike
    assert_outcomes(result, errors=1)
    out = result.stdout.str()
    # once as the error of the first record, once as its reason in our summary; pytest's own
    # short summary adds a line whose length depends on the terminal (and is whole on CI)
    ours, _, short_summary = out.partition("short test summary info")
    assert ours.count("no model endpoint configured. Pass --index-base-url") == 2
    assert short_summary.count("ERROR demo.yaml::capitals::capitals/fr") == 1
    assert out.count("ERROR capitals/fr (score -)") == 1
    stopped = "xdist.dsession.Interrupted" if run_mode else "Interrupted"
    result.stdout.fnmatch_lines([f"!!!* {stopped}: evalindex: no model endpoint configured !!!*"])


def test_html_report_is_written(
    project: pytest.Pytester, server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = project.runpytest(*base_args(server), "--index-html", "out/report.html", *run_mode)
    assert result.ret == 0
    html = (project.path / "out" / "report.html").read_text("utf-8")
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "capitals/es" in html and "Barcelona" in html
    assert "<script src=" not in html and "<link " not in html
