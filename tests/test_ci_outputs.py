"""What CI pages read: JUnit XML properties and missed answers, the markdown summary
(also appended to $GITHUB_STEP_SUMMARY), and the secondary-metrics table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.report.junit import mark_missed, public_url
from pytest_evalindex.report.markdown import format_markdown, md_text
from pytest_evalindex.results.aggregate import build_results, metric_rows
from pytest_evalindex.scoring.ifeval import ifeval
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Record, ScorerRef

pytest_plugins = ["pytester"]

N = 6
SPEC = f"""
name: ci
sampler: uniform
count: {N}
seed: 1
datasets:
  - name: facts
    task_type: knowledge
    tags: [en, ci]
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""
SAMPLE_PROPERTIES = ["score", "outcome", "dataset", "subset", "task_type", "tags", "explanation"]
RUN_PROPERTIES = [
    "evalindex_index", "evalindex_score", "evalindex_ci95", "evalindex_count",
    "evalindex_errors", "evalindex_model", "evalindex_base_url", "evalindex_spec_sha256",
    "evalindex_testset_sha256",
]  # fmt: skip


def even_right(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    """Record i is answered right exactly when i is even."""
    number = int(messages[-1]["content"].split()[-1])
    return f"A{number}" if number % 2 == 0 else f"wrong {number}"


@pytest.fixture
def ci(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", ci=SPEC)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(N)]
    (pytester.path / "facts.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run(pytester: pytest.Pytester, server: FakeOpenAI, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--index", "ci.yaml", "--index-base-url", server.base_url, "--index-model", "m",
        "--index-no-cache", "-p", "no:cacheprovider", *args,
    )  # fmt: skip


def properties(element: ET.Element) -> list[tuple[str, str]]:
    return [
        (p.get("name", ""), p.get("value", "")) for p in element.iterfind("properties/property")
    ]


def cases_of(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


# --------------------------------------------------------------------------- JUnit XML


def test_junit_carries_sample_and_run_properties_and_marks_missed(
    ci: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=even_right) as fake:
        result = run(ci, fake, "--junitxml", "out.xml", "--index-json", "r.json", *run_mode)
        base_url = fake.base_url
    assert result.ret == 0
    assert_outcomes(result, passed=3, missed=3)
    root = ET.parse(ci.path / "out.xml").getroot()
    results = json.loads((ci.path / "r.json").read_text())

    cases = cases_of(root)
    assert sorted(cases) == sorted(f"facts/{i}" for i in range(N))
    for i in range(N):
        case = cases[f"facts/{i}"]
        props = dict(properties(case))
        assert [name for name, _ in properties(case)] == SAMPLE_PROPERTIES
        assert props["dataset"] == "facts"
        assert props["subset"] == "default"
        assert props["task_type"] == "knowledge"
        assert props["tags"] == "en,ci"
        skipped = case.findall("skipped")
        assert case.find("failure") is None and case.find("error") is None
        if i % 2 == 0:
            assert props["outcome"] == "passed" and props["score"] == "1.0000"
            assert skipped == []
        else:
            assert props["outcome"] == "missed" and props["score"] == "0.0000"
            assert props["explanation"]
            assert len(skipped) == 1
            assert skipped[0].get("type") == "evalindex.missed"
            message = skipped[0].get("message", "")
            assert message == f"missed: score 0.00 — {props['explanation']}"
            assert f"wrong {i}" in message
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("skipped") == "3"
    assert suite.get("tests") == str(N)
    assert suite.get("failures") == "0" and suite.get("errors") == "0"

    run_props = properties(suite)
    assert [name for name, _ in run_props] == RUN_PROPERTIES  # each exactly once, in order
    values = dict(run_props)
    assert values["evalindex_index"] == "ci"
    assert values["evalindex_score"] == "0.5000"
    assert json.loads(values["evalindex_ci95"]) == [round(x, 4) for x in results["index"]["ci95"]]
    assert values["evalindex_count"] == str(N)
    assert values["evalindex_errors"] == "0"
    assert values["evalindex_model"] == "m"
    assert values["evalindex_base_url"] == base_url
    assert values["evalindex_spec_sha256"] == results["run"]["spec_sha256"]
    assert values["evalindex_testset_sha256"] == results["run"]["testset_sha256"]


def test_junit_strict_missed_is_a_failure_not_a_skip(
    ci: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=even_right) as fake:
        result = run(ci, fake, "--junitxml", "out.xml", "--index-strict", *run_mode)
    assert result.ret == 1
    root = ET.parse(ci.path / "out.xml").getroot()
    for name, case in cases_of(root).items():
        missed = int(name.split("/")[1]) % 2 == 1
        assert dict(properties(case))["outcome"] == ("missed" if missed else "passed")
        assert (case.find("failure") is not None) == missed
        assert case.find("skipped") is None
    suite = root.find("testsuite")
    assert suite is not None and suite.get("skipped") == "0" and suite.get("failures") == "3"


def test_junit_error_sample_has_no_score(ci: pytest.Pytester, run_mode: list[str]) -> None:
    def reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> Any:
        if messages[-1]["content"].endswith(" 3"):
            return {"status": 400, "error": "bad request for three"}
        return even_right(messages, body)

    with FakeOpenAI(responder=reply) as fake:
        result = run(ci, fake, "--junitxml", "out.xml", "--index-max-attempts", "1", *run_mode)
    assert result.ret == 1
    cases = cases_of(ET.parse(ci.path / "out.xml").getroot())
    props = dict(properties(cases["facts/3"]))
    assert props["outcome"] == "error" and props["score"] == ""
    assert cases["facts/3"].find("failure") is not None
    assert cases["facts/3"].find("skipped") is None


def test_junit_run_properties_once_per_index(ci: pytest.Pytester, run_mode: list[str]) -> None:
    ci.makefile(
        ".yaml", other=SPEC.replace("name: ci", "name: other").replace("count: 6", "count: 2")
    )
    with FakeOpenAI(responder=even_right) as fake:
        result = run(ci, fake, "--index", "other.yaml", "--junitxml", "out.xml", *run_mode)
    assert result.ret == 0
    suite = ET.parse(ci.path / "out.xml").getroot().find("testsuite")
    assert suite is not None
    names = [name for name, _ in properties(suite)]
    expected = [f"{key}.{index}" for index in ("ci", "other") for key in RUN_PROPERTIES]
    assert sorted(names) == sorted(expected)
    assert len(names) == len(set(names))
    values = dict(properties(suite))
    assert values["evalindex_count.ci"] == "6" and values["evalindex_count.other"] == "2"
    assert values["evalindex_index.other"] == "other"


def test_mark_missed_leaves_other_testcases_alone() -> None:
    root = ET.fromstring(
        '<testsuites><testsuite tests="3" skipped="1">'
        '<testcase name="a"><properties><property name="outcome" value="missed"/>'
        '<property name="score" value="0.2500"/><property name="explanation" value="x &lt; y"/>'
        "</properties><system-out>log</system-out></testcase>"
        '<testcase name="b"><properties><property name="outcome" value="passed"/></properties>'
        "</testcase>"
        '<testcase name="c"><skipped message="skip"/></testcase>'
        "</testsuite></testsuites>"
    )
    assert mark_missed(root) == 1
    suite = root.find("testsuite")
    assert suite is not None and suite.get("skipped") == "2"
    a = [child.tag for child in cases_of(root)["a"]]
    assert a == ["properties", "skipped", "system-out"]
    skipped = cases_of(root)["a"].find("skipped")
    assert skipped is not None and skipped.get("message") == "missed: score 0.25 — x < y"
    assert cases_of(root)["b"].find("skipped") is None
    assert mark_missed(root) == 0  # a second pass finds nothing left to mark


def test_public_url_drops_credentials_and_query() -> None:
    assert public_url("https://user:secret@host:8443/v1?key=abc") == "https://host:8443/v1"
    assert public_url(None) == ""


# --------------------------------------------------------------------------- markdown


def hostile_results() -> dict[str, Any]:
    samples = [
        {
            "id": f"d|x/{i}", "dataset": "d|x\nnew line", "subset": "s", "task_type": "t",
            "tags": ["<img src=x onerror=alert(1)>"], "categories": ["c"], "weight": 1.0,
            "outcome": "passed" if i % 2 else "missed", "score": float(i % 2),
            "response": "SECRET_RESPONSE <script>alert(1)</script> | ![x](http://evil)",
            "target": "TARGET_TEXT", "explanation": "EXPLANATION_TEXT",
            "metrics": {"m|1": 0.5},
        }
        for i in range(4)
    ]  # fmt: skip
    return build_results(samples, index_name="idx", run={"model": "m"}, n_boot=50)


def test_markdown_escapes_names_and_never_shows_model_output() -> None:
    text = format_markdown(hostile_results())
    assert "SECRET_RESPONSE" not in text and "TARGET_TEXT" not in text
    assert "EXPLANATION_TEXT" not in text
    # markup from the data is only ever there escaped, as literal text
    assert "\\<img src\\=x onerror\\=alert\\(1\\)\\>" in text
    assert re.search(r"(?<!\\)[<>]", text) is None
    assert "d\\|x new line" in text  # a pipe cannot end a cell, a newline cannot end a row
    for line in text.splitlines():
        if line.startswith("| "):
            assert len(re.findall(r"(?<!\\)\|", line)) == line.count(" | ") + 2
    assert md_text("a|b\nc") == "a\\|b c"


def test_markdown_shows_a_partial_run_and_tolerates_its_absence() -> None:
    results = hostile_results()
    assert "Partial run" not in format_markdown(results)
    results["run"]["partial"] = None
    assert "Partial run" not in format_markdown(results)
    results["run"]["partial"] = {"ran": 2, "of": 4, "why": "-k"}
    assert "> **Partial run:** ran 2 of 4 records (\\-k)" in format_markdown(results)


def test_markdown_summary_is_appended_to_the_step_summary(
    ci: pytest.Pytester, run_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = ci.path / "step_summary.md"
    step_summary.write_text("# earlier step\n", "utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    with FakeOpenAI(responder=even_right) as fake:
        result = run(
            ci, fake, "--index-markdown", "out/summary.md", "--index-gate", "index>=0.9",
            "--index-json", "r.json", *run_mode,
        )  # fmt: skip
    assert result.ret == 1  # the gate fails
    summary = (ci.path / "out" / "summary.md").read_text("utf-8")
    appended = step_summary.read_text("utf-8")
    assert appended == "# earlier step\n\n" + summary
    results = json.loads((ci.path / "r.json").read_text())
    low, high = results["index"]["ci95"]
    assert summary.startswith("## evalindex: ci\n")
    assert f"**Index 0.5000** (95% CI [{low:.4f}, {high:.4f}]), count 6, errors 0" in summary
    assert "3 passed, 3 missed, 0 errors; model m" in summary
    assert "**Result: FAIL**" in summary
    assert "### Gates" in summary
    assert "| index\\>\\=0.9 | 0.5000 |" in summary and "**FAIL** |" in summary
    for heading in ("### By dataset", "### By task type", "### By tag", "### By category"):
        assert heading in summary
    assert "### By subset" not in summary  # one subset per dataset adds nothing
    assert "| facts | 0.5000 | 0.5000 | 0.5000 |" in summary
    assert "### Usage" in summary and "| total | 6 | 0 |" in summary
    assert "wrong 1" not in summary  # the model's answers stay out


def test_markdown_with_a_comparison_shows_deltas_and_flips(
    ci: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=lambda messages, body: "A" + messages[-1]["content"][-1]) as fake:
        assert run(ci, fake, "--index-save", "base").ret == 0
    with FakeOpenAI(responder=even_right) as fake:
        result = run(ci, fake, "--index-compare", "--index-markdown", "s.md", *run_mode)
    assert result.ret == 0
    summary = (ci.path / "s.md").read_text("utf-8")
    assert "### Comparison with 0001\\_base" in summary
    assert "Paired samples: 6." in summary
    assert re.search(r"\| index \| ci \| 1\.0000 \| 0\.5000 \| -0\.5000 \|", summary)
    assert "**passed → missed (3):** facts/1, facts/3, facts/5" in summary
    assert "missed → passed" not in summary


def test_cli_report_writes_the_same_markdown(ci: pytest.Pytester, run_mode: list[str]) -> None:
    with FakeOpenAI(responder=even_right) as fake:
        written = run(
            ci, fake, "--index-json", "r.json", "--index-markdown", "plugin.md", *run_mode
        )
        assert written.ret == 0, written.stdout.str()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", "report", "r.json", "--markdown", "c.md"],
        cwd=ci.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (ci.path / "c.md").read_text("utf-8") == (ci.path / "plugin.md").read_text("utf-8")
    compared = subprocess.run(
        [sys.executable, "-m", "pytest_evalindex.cli", "report", "r.json", "--markdown", "d.md",
         "--compare", "r.json"],
        cwd=ci.path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    assert "### Comparison with r" in (ci.path / "d.md").read_text("utf-8")


# --------------------------------------------------------------------------- metrics

METRICS_SPEC = """
name: metrics
datasets:
  - name: ifeval
    task_type: instruction
    adapter: ifeval
    source: ifeval.jsonl
  - name: simpleqa
    task_type: knowledge
    adapter: simpleqa
    source: simpleqa.jsonl
"""
IFEVAL_ANSWERS = {
    "task 0": "all lowercase and no comma here",
    "task 1": "Has, Comma And Capitals",
    "task 2": "lowercase, but a comma",
    "task 3": "CAPITALS WITHOUT ANY COMMA",
}
INSTRUCTIONS = ["punctuation:no_comma", "change_case:english_lowercase"]
SIMPLEQA_COUNT = 7
VERDICTS = ("CORRECT", "INCORRECT", "NOT_ATTEMPTED")


@pytest.fixture
def metrics_index(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", metrics=METRICS_SPEC)
    ifeval_rows = [
        {"key": k, "prompt": f"task {k}", "instruction_id_list": INSTRUCTIONS, "kwargs": [{}, {}]}
        for k in range(len(IFEVAL_ANSWERS))
    ]
    simpleqa_rows = [
        {"id": i, "metadata": {"topic": "Science"}, "problem": f"question {i}", "answer": f"a{i}"}
        for i in range(SIMPLEQA_COUNT)
    ]
    for name, rows in (("ifeval", ifeval_rows), ("simpleqa", simpleqa_rows)):
        text = "\n".join(json.dumps(row) for row in rows) + "\n"
        (pytester.path / f"{name}.jsonl").write_text(text)
    return pytester


def metrics_reply(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
    text = messages[-1]["content"]
    if body["model"] == "judge-m":
        number = int(re.search(r"answer-(\d+)", text).group(1))  # type: ignore[union-attr]
        return f"GRADE: {VERDICTS[number % 3]}"
    if text.startswith("question"):
        return f"answer-{text.split()[-1]}"
    return IFEVAL_ANSWERS[text]


def expected_ifeval_means() -> dict[str, float]:
    """The means of the IFEval scorer's own metrics over the answers the fake gives."""
    totals: dict[str, float] = {}
    for k, answer in enumerate(IFEVAL_ANSWERS.values()):
        record = Record(
            id=f"ifeval/{k}", dataset="ifeval", input=[{"role": "user", "content": f"task {k}"}],
            scorer=ScorerRef(name="ifeval"),
            metadata={"instruction_id_list": INSTRUCTIONS, "kwargs": [{}, {}]},
        )  # fmt: skip
        for name, value in ifeval(answer, record).metrics.items():
            totals[name] = totals.get(name, 0.0) + value
    return {name: total / len(IFEVAL_ANSWERS) for name, total in totals.items()}


def test_secondary_metrics_are_tabled_everywhere(
    metrics_index: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=metrics_reply) as fake:
        result = metrics_index.runpytest(
            "--index", "metrics.yaml", "--index-base-url", fake.base_url, "--index-model", "m",
            "--index-judge-model", "judge-m", "--index-no-cache", "-p", "no:cacheprovider",
            "--index-json", "r.json", "--index-markdown", "s.md", "--index-html", "r.html",
            *run_mode,
        )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    results = json.loads((metrics_index.path / "r.json").read_text())
    rows = {(r["dataset"], r["metric"]): (r["mean"], r["count"]) for r in results["metrics"]}

    ifeval_means = expected_ifeval_means()
    # strict values worked out by hand: one answer follows both, two follow one of two
    assert ifeval_means["prompt_level_strict"] == 0.25
    assert ifeval_means["inst_level_strict"] == 0.5
    simpleqa_means = {"correct": 3 / 7, "incorrect": 2 / 7, "not_attempted": 2 / 7}
    expected = {("ifeval", name): (mean, 4) for name, mean in ifeval_means.items()}
    expected.update({("simpleqa", name): (mean, 7) for name, mean in simpleqa_means.items()})
    # every metric belongs to one dataset here, so the index rows repeat the dataset rows
    expected.update({(None, name): value for (_, name), value in list(expected.items())})
    assert rows.keys() == expected.keys()
    for key, (mean, count) in expected.items():
        assert rows[key][0] == pytest.approx(mean) and rows[key][1] == count, key
    assert [r["dataset"] for r in results["metrics"]][-7:] == [None] * 7

    out = result.stdout.str()
    result.stdout.fnmatch_lines(["metrics*metric*mean*count", "ifeval*inst_level_strict*0.5000*4"])
    assert re.search(r"simpleqa\s+not_attempted\s+0\.2857\s+7", out)
    assert re.search(r"\(all\)\s+correct\s+0\.4286\s+7", out)

    summary = (metrics_index.path / "s.md").read_text("utf-8")
    assert "### Secondary metrics" in summary
    assert "| simpleqa | not\\_attempted | 0.2857 | 7 |" in summary
    assert "| (all) | inst\\_level\\_strict | 0.5000 | 4 |" in summary
    html = (metrics_index.path / "r.html").read_text("utf-8")
    assert '"metrics":[{"dataset":"ifeval"' in html


def test_metric_rows_average_repeats_and_skip_errors_and_non_numbers() -> None:
    samples = [
        {"dataset": "a", "outcome": "passed", "metrics": {"x": 1.0, "bad": "text"}},
        {"dataset": "a", "outcome": "missed", "metrics": {"x": 0.0}},
        {"dataset": "a", "outcome": "error", "metrics": {"x": 1.0}},
        {"dataset": "b", "outcome": "passed", "metrics": {"x": 1.0},
         "repeats": [{"outcome": "passed", "metrics": {"x": 1.0}},
                     {"outcome": "missed", "metrics": {"x": 0.0}},
                     {"outcome": "error", "score": None}]},
    ]  # fmt: skip
    assert metric_rows(samples) == [
        {"dataset": "a", "metric": "x", "mean": 0.5, "count": 2},
        {"dataset": "b", "metric": "x", "mean": 0.5, "count": 1},
        {"dataset": None, "metric": "x", "mean": 0.5, "count": 3},
    ]
    assert metric_rows([]) == []


def test_results_document_keeps_its_fixed_keys_and_adds_metrics() -> None:
    results = hostile_results()
    assert list(results) == [
        "schema_version", "index", "tables", "usage", "metrics", "samples", "run",
    ]  # fmt: skip
    assert results["metrics"][0] == {"dataset": "d|x\nnew line", "metric": "m|1", "mean": 0.5,
                                     "count": 4}  # fmt: skip
