"""The ``code`` scorer: run the program in the answer against the record's tests.

The code is the last fenced block of the response (a ``python``/``py`` or untagged block is
preferred over one tagged with another language; a block cut off by the end of the response
counts), or the whole response when it has no fence. It runs in the sandbox
(``pytest_evalindex.scoring.sandbox``); the score is 1.0 when every test passes, else 0.0.

The record's ``metadata["code_format"]`` says how to test it (inferred when absent):

- ``humaneval``: ``prompt``, ``test`` and ``entry_point``. An answer that defines the entry
  point is run after the prompt (so the prompt's imports and helpers exist); any other answer
  is taken as the body that completes the prompt. Then the ``test`` code and
  ``check(<entry_point>)``.
- ``stdin``: test cases ``{"input", "output"}``; the program reads the input on standard
  input and its standard output must match the expected output line by line (each line
  trimmed, trailing blank lines ignored, numbers equal within 1e-6).
- ``functional``: the same test cases, but each input holds one JSON value a line: the
  arguments of method ``func_name`` of class ``Solution``; the return value must equal the
  JSON output (tuples count as lists, numbers equal within 1e-6).
- ``assert``: ``test`` (code) or ``test_list`` (statements), with optional
  ``test_setup_code``, run after the answer.

Test cases for ``stdin``/``functional`` come from ``tests``, or from LiveCodeBench's
``public_test_cases`` and ``private_test_cases``: each a list, a JSON string of a list, or
LiveCodeBench's compressed form (base64 of zlib of a pickled JSON string). The compressed
form is unpickled with every global refused, so only plain strings, numbers and containers
can come out of it: loading it cannot run code.

``stdin``/``functional`` cases run one after another in one sandboxed process (the expected
outputs never enter it; they are compared here). ``timeout_s`` applies to each case; after a
case runs out of time or memory the rest are not run and count as failed.
Secondary metric: ``tests_passed_fraction``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import math
import pickle
import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.results.schema import SandboxInfo
from pytest_evalindex.scoring import Score, ScorerError, ScorerTraits, clip
from pytest_evalindex.scoring.sandbox import SandboxResult, bubblewrap_problem, run_python
from pytest_evalindex.testset.records import Record

HUMANEVAL_TIMEOUT_S = 10.0
CASE_TIMEOUT_S = 6.0  # per test case, as LiveCodeBench's own harness
FORMATS = ("humaneval", "stdin", "functional", "assert")
_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
_FENCE = re.compile(r"^[ \t]*```")
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
_MAX_DECODED_TESTS = 256 * 1024 * 1024  # bytes of decompressed test data, against zip bombs
_SLACK_S = 5.0  # start-up and bookkeeping time of a run of test cases
_PROGRAM_OUTPUT_LIMIT = 1024 * 1024
_REPORT_PREFIX = "@case "


def code(
    response: str,
    record: Record,
    *,
    timeout_s: float | None = None,
    memory_mb: int = 1024,
    site_packages: bool = False,
    sandbox: str = "auto",
) -> Score:
    """Score the program in ``response`` against ``record``'s tests (see the module doc).

    ``timeout_s``: for the whole program (``humaneval``, ``assert``; default 10 s) or for
    each test case (``stdin``, ``functional``; default 6 s). ``memory_mb`` caps memory.
    ``site_packages=True`` lets the program import installed packages (numpy...); by
    default it sees the standard library only. ``sandbox``: ``auto``, ``strict`` or
    ``basic`` (see ``pytest_evalindex.scoring.sandbox.run_python``; the run's ``--index-sandbox``).
    """
    limits = {"memory_mb": memory_mb, "site_packages": site_packages, "sandbox": sandbox}
    if timeout_s is not None and not timeout_s > 0:
        raise ScorerError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    program = extract_code(response)
    metadata = record.metadata
    code_format = code_format_of(record)
    if code_format == "humaneval":
        source = humaneval_program(
            program,
            prompt=_required_text(record, "prompt"),
            test=_required_text(record, "test"),
            entry_point=_required_text(record, "entry_point"),
        )
        return _score_program(source, program, timeout_s=timeout_s or HUMANEVAL_TIMEOUT_S, **limits)
    if code_format == "assert":
        source = assert_program(program, metadata)
        return _score_program(source, program, timeout_s=timeout_s or HUMANEVAL_TIMEOUT_S, **limits)
    cases = test_cases_of(record)
    func_name = metadata.get("func_name")
    return _score_cases(
        program,
        cases,
        functional=code_format == "functional",
        func_name=str(func_name) if func_name else None,
        timeout_s=timeout_s or CASE_TIMEOUT_S,
        limits=limits,
    )


def sandbox_for_run(mode: str, scorers: Iterable[Any]) -> SandboxInfo | None:
    """The code sandbox a run will use, for its results (``run.sandbox``) and its summary.

    None when no scorer of the run is ``code``. Else ``{"mode", "isolation", "note"}``:
    ``isolation`` is ``bubblewrap`` or ``basic``; ``note`` says, once per run, why ``auto``
    fell back to the basic sandbox (None otherwise). Raises EvalIndexError for ``strict``
    when bubblewrap cannot run here, so the run stops before its first request.
    """
    from pytest_evalindex.scoring import BoundScorer

    if not any(isinstance(s, BoundScorer) and s.name == "code" for s in scorers):
        return None
    problem = "" if mode == "basic" else bubblewrap_problem()
    note = None
    if problem and mode == "strict":
        raise EvalIndexError(
            f"strict asks for the bubblewrap sandbox, but {problem}. Install bubblewrap "
            "and allow user namespaces, or run with --index-sandbox auto (falls back to "
            "the basic sandbox, which does not hide the file system) or basic.",
            field="--index-sandbox",
        )
    if problem:
        note = (
            f"code ran in the basic sandbox, which does not hide the file system: {problem}; "
            "install bubblewrap, or pass --index-sandbox basic to choose this knowingly"
        )
    isolation = "basic" if mode == "basic" or problem else "bubblewrap"
    return {"mode": mode, "isolation": isolation, "note": note}


# --------------------------------------------------------------------------- code and format


def extract_code(response: str) -> str:
    """The last fenced code block of ``response`` (Python preferred), else all of it."""
    text = _THINKING.sub("", response)
    blocks: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if _FENCE.match(line):
            if current is None:
                tag = line.strip()[3:].strip().split(maxsplit=1)
                current = []
                blocks.append((tag[0].lower() if tag else "", current))
                continue
            if line.strip() == "```":
                current = None
                continue
        if current is not None:
            current.append(line)
    if not blocks:
        return text.strip("\n")
    python_blocks = [lines for tag, lines in blocks if tag in _PYTHON_TAGS]
    chosen = python_blocks[-1] if python_blocks else blocks[-1][1]
    return "\n".join(chosen)


def code_format_of(record: Record) -> str:
    """``metadata["code_format"]``, or the format its other keys imply."""
    metadata = record.metadata
    declared = metadata.get("code_format")
    if declared is not None:
        if declared not in FORMATS:
            raise ScorerError(
                f"record {record.id!r}: unknown code_format {declared!r}; "
                f"known: {', '.join(FORMATS)}"
            )
        return str(declared)
    if "entry_point" in metadata and "test" in metadata:
        return "humaneval"
    if any(key in metadata for key in ("tests", "public_test_cases", "private_test_cases")):
        return "functional" if metadata.get("func_name") else "stdin"
    if "test" in metadata or "test_list" in metadata:
        return "assert"
    raise ScorerError(
        f"record {record.id!r} has no tests for the code scorer: its metadata needs "
        "code_format and tests (see the code scorer's documentation)"
    )


def _required_text(record: Record, key: str) -> str:
    value = record.metadata.get(key)
    if not isinstance(value, str):
        raise ScorerError(f"record {record.id!r}: metadata[{key!r}] should be a string")
    return value


def defines_function(program: str, name: str) -> bool:
    pattern = rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\("
    return re.search(pattern, program, re.MULTILINE) is not None


def humaneval_program(program: str, *, prompt: str, test: str, entry_point: str) -> str:
    """The program that checks a HumanEval answer."""
    if defines_function(program, entry_point):
        # the prompt first: its imports and helpers may be used without being repeated
        future, rest = _split_future_imports(program)
        body = f"{future}{prompt}\n\n{rest}"
    else:
        body = prompt + program  # a completion: the body that goes on from the prompt
    return f"{body}\n\n\n{test}\n\n\ncheck({entry_point})\n"


def _split_future_imports(program: str) -> tuple[str, str]:
    """``from __future__`` lines must come first in a module: move them to the front."""
    future: list[str] = []
    rest: list[str] = []
    for line in program.splitlines(keepends=True):
        (future if line.startswith("from __future__ import") else rest).append(line)
    return "".join(future), "".join(rest)


def assert_program(program: str, metadata: dict[str, Any]) -> str:
    setup = metadata.get("test_setup_code") or ""
    test = metadata.get("test")
    if test is None:
        test = "\n".join(str(statement) for statement in metadata.get("test_list") or [])
    return f"{program}\n\n{setup}\n\n{test}\n"


# --------------------------------------------------------------------------- whole programs


def _score_program(source: str, program: str, **limits: Any) -> Score:
    # what a whole program prints does not matter; the cap only bounds memory
    result = _run(source, output_limit=_PROGRAM_OUTPUT_LIMIT, **limits)
    if result.ok:
        return Score(1.0, "passed all tests", extracted=program)
    return Score(0.0, _failure_reason(result), extracted=program)


def _run(source: str, **limits: Any) -> SandboxResult:
    """Run in the sandbox; ScorerError when the sandbox itself fails (no score, not a miss)."""
    try:
        result = run_python(source, **limits)
    except (OSError, ValueError) as exc:
        raise ScorerError(f"the code sandbox could not run the program: {exc}") from exc
    if not result.layers and not result.ok:
        # the child never reached the program: its set-up failed, not the answer
        raise ScorerError(f"the code sandbox failed before the program started: {result.reason}")
    return result


# how much of a program's own words an explanation keeps: the exception's message and the
# failing line of code are clipped, so a report never carries more of its output than that
_MESSAGE_CHARS = 80
_CODE_LINE_CHARS = 80


def _failure_reason(result: SandboxResult) -> str:
    """``AssertionError at line 12: assert f(3) == 4``: the exception with a clipped message
    and the failing line; nothing else of the program's output."""
    if result.status != "failed":
        return result.reason
    reason = _clip_message(result.reason)
    if reason.startswith("SyntaxError") or reason.startswith("IndentationError"):
        return clip(f"does not compile: {reason}", 200)
    where = _failing_line(result.stderr)
    return clip(f"{reason} at {where}" if where else reason, 200)


def _clip_message(line: str) -> str:
    """``Type: message`` with the message shortened (the type is the program's too, so it is
    clipped as well)."""
    kind, separator, message = line.partition(": ")
    if not separator or " " in kind:
        return clip(line, _MESSAGE_CHARS)
    return f"{clip(kind, 40)}: {clip(message, _MESSAGE_CHARS)}"


def _failing_line(traceback_text: str) -> str:
    """``line 12: assert f(3) == 4``: the innermost line of the program's traceback."""
    lines = traceback_text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        match = re.match(r'\s*File "main\.py", line (\d+)', lines[index])
        if match:
            code_line = lines[index + 1].strip() if index + 1 < len(lines) else ""
            code_line = clip(code_line, _CODE_LINE_CHARS)
            return f"line {match.group(1)}: {code_line}" if code_line else f"line {match[1]}"
    return ""


# --------------------------------------------------------------------------- test cases


def test_cases_of(record: Record) -> list[dict[str, str]]:
    """The record's test cases as ``{"input", "output"}`` dicts (public ones first)."""
    metadata = record.metadata
    cases: list[dict[str, str]] = []
    keys = [key for key in ("tests", "public_test_cases", "private_test_cases") if key in metadata]
    for key in keys:
        try:
            cases += decode_test_cases(metadata[key])
        except ValueError as exc:
            raise ScorerError(f"record {record.id!r}: metadata[{key!r}]: {exc}") from None
    if not cases:
        raise ScorerError(f"record {record.id!r} has no test cases")
    return cases


def decode_test_cases(value: Any) -> list[dict[str, str]]:
    """Test cases from a list, a JSON string or LiveCodeBench's compressed string.

    Raises ValueError saying what is wrong.
    """
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = json.loads(_decompress(value))
    if not isinstance(value, list):
        raise ValueError(f"expected a list of test cases, got {type(value).__name__}")
    cases = []
    for number, case in enumerate(value):
        if not isinstance(case, dict) or "input" not in case or "output" not in case:
            raise ValueError(f"test case {number} should be an object with input and output")
        cases.append({"input": _as_text(case["input"]), "output": _as_text(case["output"])})
    return cases


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class _PlainDataUnpickler(pickle.Unpickler):
    """Refuses every global, so no callable (and no code) can come out of the data."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from test data")


def _decompress(text: str) -> str:
    """LiveCodeBench's compressed tests: base64 → zlib → a pickled JSON string."""
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=False)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, _MAX_DECODED_TESTS)
        if inflater.unconsumed_tail:
            raise ValueError(f"test data larger than {_MAX_DECODED_TESTS} bytes")
        loaded = _PlainDataUnpickler(io.BytesIO(raw)).load()
    except (binascii.Error, UnicodeEncodeError, zlib.error) as exc:
        raise ValueError(f"neither JSON nor compressed test cases ({exc})") from None
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError) as exc:
        raise ValueError(f"compressed test cases hold no plain JSON text ({exc})") from None
    if isinstance(loaded, bytes):
        loaded = loaded.decode("utf-8")
    if not isinstance(loaded, str):
        raise ValueError(f"compressed test cases hold {type(loaded).__name__}, not JSON text")
    return loaded


def _score_cases(
    program: str,
    cases: Sequence[dict[str, str]],
    *,
    functional: bool,
    func_name: str | None,
    timeout_s: float,
    limits: dict[str, Any],
) -> Score:
    # each case's output may be up to twice the expected size (plus a margin) before it is
    # cut: enough to show a wrong answer, not enough to flood the run
    caps = [2 * len(case["output"].encode("utf-8")) + 1024 for case in cases]
    job = {
        "functional": functional,
        "func_name": func_name,
        "source": program,
        "inputs": [case["input"] for case in cases],
        "caps": caps,
        "timeout_s": timeout_s,
    }
    largest_input = max(len(case["input"].encode("utf-8")) for case in cases)
    result = _run(
        case_runner_source(),
        stdin=json.dumps(job),
        timeout_s=timeout_s * len(cases) + _SLACK_S,
        output_limit=2 * sum(caps) + 64 * 1024,
        file_size_mb=max(64, 2 * largest_input // (1024 * 1024) + 1),
        **limits,
    )
    reports = _read_reports(result.stdout)
    if reports and "compile_error" in reports[0]:
        reason = clip(f"does not compile: {reports[0]['compile_error']}", 200)
        return Score(0.0, reason, extracted=program, metrics={"tests_passed_fraction": 0.0})
    passed = 0
    first_failure = ""
    for number, case in enumerate(cases, start=1):
        report = reports[number - 1] if number <= len(reports) else None
        failure = _case_failure(report, case, functional, timeout_s, result)
        if failure is None:
            passed += 1
        elif not first_failure:
            first_failure = f"test {number} of {len(cases)}: {failure}"
    fraction = passed / len(cases)
    metrics = {"tests_passed_fraction": fraction}
    if passed == len(cases):
        return Score(1.0, f"passed all {len(cases)} tests", extracted=program, metrics=metrics)
    explanation = clip(f"{first_failure} ({passed} of {len(cases)} passed)", 240)
    return Score(0.0, explanation, extracted=program, metrics=metrics)


def _read_reports(stdout: str) -> list[dict[str, Any]]:
    reports = []
    for line in stdout.splitlines():
        if line.startswith(_REPORT_PREFIX):
            try:
                reports.append(json.loads(line[len(_REPORT_PREFIX) :]))
            except json.JSONDecodeError:
                break  # cut off by the output limit
    return reports


def _case_failure(
    report: dict[str, Any] | None,
    case: dict[str, str],
    functional: bool,
    timeout_s: float,
    result: SandboxResult,
) -> str | None:
    """Why a case failed, or None when it passed."""
    if report is None:
        if result.ok:
            return "not run (an earlier test ran out of time or memory)"
        return result.reason or f"the run ended: {result.status}"
    status = report.get("status")
    if status == "timeout":
        return f"time limit exceeded ({timeout_s:g} s)"
    if status == "memory":
        return "memory limit exceeded"
    if status == "output_limit":
        return "output far longer than expected"
    if status == "error":
        detail = str(report.get("detail", ""))
        match = re.fullmatch(r"(.*?)( \(solution line \d+\))?", detail, re.DOTALL)
        message, where = (match.group(1), match.group(2) or "") if match else (detail, "")
        return f"runtime error: {_clip_message(message)}{where}"
    if functional:
        value = report.get("value")
        if not _same_value(value, case["output"]):
            return f"wrong answer: expected {clip(case['output'], 60)}, got {clip(str(value), 60)}"
        return None
    actual = str(report.get("output", ""))
    if not same_output(actual, case["output"]):
        return f"wrong answer: expected {clip(case['output'], 60)!r}, got {clip(actual, 60)!r}"
    return None


def same_output(actual: str, expected: str) -> bool:
    """Standard output comparison: lines trimmed, trailing blank lines ignored, numbers close."""
    actual_lines = [line.strip() for line in actual.strip().splitlines()]
    expected_lines = [line.strip() for line in expected.strip().splitlines()]
    if actual_lines == expected_lines:
        return True
    if len(actual_lines) != len(expected_lines):
        return False
    for got, want in zip(actual_lines, expected_lines, strict=True):
        got_tokens, want_tokens = got.split(), want.split()
        if len(got_tokens) != len(want_tokens):
            return False
        for got_token, want_token in zip(got_tokens, want_tokens, strict=True):
            if got_token != want_token and not _close_numbers(got_token, want_token):
                return False
    return True


def _close_numbers(got: str, want: str) -> bool:
    try:
        a, b = float(got), float(want)
    except ValueError:
        return False
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def _same_value(actual_json: Any, expected_json: str) -> bool:
    if not isinstance(actual_json, str):
        return False
    try:
        actual = json.loads(actual_json)
        expected = json.loads(expected_json)
    except json.JSONDecodeError:
        return actual_json.strip() == expected_json.strip()
    return _values_equal(actual, expected)


def _values_equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return actual == expected or math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            _values_equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _values_equal(actual[key], expected[key]) for key in actual
        )
    return bool(actual == expected)


@functools.cache
def case_runner_source() -> str:
    """The program that runs a solution on each test case inside the sandbox."""
    import inspect
    import textwrap

    return f"{textwrap.dedent(inspect.getsource(_case_runner))}\n_case_runner()\n"


def _case_runner() -> None:  # pragma: no cover - runs inside the sandbox
    """Read the job on stdin, run the solution on each input, report each result on stdout.

    The program sees each case's input on its standard input (fd 0, so ``input()``,
    ``sys.stdin`` and ``open(0)`` all work) and writes to files that are read back; the
    reports go to a copy of the original stdout. The expected outputs are not here.
    """
    import contextlib
    import json
    import os
    import signal
    import sys
    import time
    import types

    job = json.loads(sys.stdin.read())
    report_fd = os.dup(1)

    def report(item: dict[str, object]) -> None:
        line = "@case " + json.dumps(item, ensure_ascii=False) + "\n"
        os.write(report_fd, line.encode("utf-8", "replace"))

    class CaseTimeout(BaseException):
        """Raised by the alarm; a BaseException, so the program's ``except Exception`` lets
        it through."""

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout

    signal.signal(signal.SIGALRM, on_alarm)
    try:
        code = compile(job["source"], "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        report({"compile_error": f"{type(exc).__name__}: {exc}"})
        return
    preamble = (
        "from typing import *\n"
        "import bisect, collections, copy, functools, heapq, itertools, math, operator, "
        "random, re, string, sys\n"
        "from bisect import *\nfrom collections import *\nfrom functools import *\n"
        "from heapq import *\nfrom itertools import *\nfrom math import *\n"
    )

    def fresh_module() -> types.ModuleType:
        module = types.ModuleType("__main__")
        sys.modules["__main__"] = module
        exec(preamble, module.__dict__)
        return module

    def redirect(fd: int, path: str, flags: int) -> None:
        opened = os.open(path, flags, 0o600)
        if opened != fd:  # equal when the program closed ``fd`` (``open(0)`` closes stdin)
            os.dup2(opened, fd)
            os.close(opened)

    def error_detail(exc: BaseException) -> str:
        lines = []
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "solution.py":
                lines.append(tb.tb_lineno)
            tb = tb.tb_next
        where = f" (solution line {lines[-1]})" if lines else ""
        return f"{type(exc).__name__}: {exc}"[:300] + where

    def wait_for_threads(deadline: float) -> None:
        threading = sys.modules.get("threading")
        if threading is None:
            return
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))

    def run_cases() -> None:
        write = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        # from here on, what the program prints goes to files, never into the reports
        redirect(1, "case_output", write)
        redirect(2, "case_errors", write)
        functional = job["functional"]
        method_name = job["func_name"]
        solution: Any = None  # a local annotation: never evaluated in the child
        if functional:
            module = fresh_module()
            try:
                signal.setitimer(signal.ITIMER_REAL, job["timeout_s"])
                try:
                    exec(code, module.__dict__)
                    solution = module.__dict__.get("Solution")
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except CaseTimeout:
                report({"status": "timeout"})
                return
            except BaseException as exc:
                report({"status": "error", "detail": error_detail(exc)})
                return
            if not isinstance(solution, type):
                report({"status": "error", "detail": "the answer defines no class Solution"})
                return
            if method_name is None:  # no name given: the class's one public method
                public = [name for name in vars(solution) if not name.startswith("_")]
                if len(public) != 1:
                    report({"status": "error", "detail": "cannot tell which method to call"})
                    return
                method_name = public[0]

        for text, cap in zip(job["inputs"], job["caps"], strict=True):
            with open("case_input", "w", encoding="utf-8") as handle:
                handle.write(text)
            redirect(0, "case_input", os.O_RDONLY)
            redirect(1, "case_output", write)
            redirect(2, "case_errors", write)
            sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            case_stdout = sys.stdout
            item: dict[str, object] = {"status": "ok"}
            try:
                deadline = time.monotonic() + job["timeout_s"]
                signal.setitimer(signal.ITIMER_REAL, job["timeout_s"])
                try:
                    if functional:
                        arguments = [json.loads(line) for line in text.split("\n") if line.strip()]
                        method = getattr(solution(), method_name)
                        value = method(*arguments)
                        item["value"] = json.dumps(value)
                    else:
                        exec(code, fresh_module().__dict__)
                        wait_for_threads(deadline)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except CaseTimeout:
                item = {"status": "timeout"}
            except MemoryError:
                item = {"status": "memory"}
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    item = {"status": "error", "detail": f"exit status {exc.code}"}
            except BaseException as exc:
                item = {"status": "error", "detail": error_detail(exc)}
            for stream in (sys.stdout, case_stdout):
                with contextlib.suppress(Exception):  # the program may have closed it
                    stream.flush()
            if not functional and item["status"] == "ok":
                with open("case_output", "rb") as output_file:
                    output = output_file.read(cap + 1)
                if len(output) > cap:
                    item = {"status": "output_limit"}
                else:
                    item["output"] = output.decode("utf-8", "replace")
            report(item)
            if item["status"] in ("timeout", "memory"):
                return  # the rest would most likely fail the same way, slowly

    try:
        run_cases()
    except BaseException as exc:  # a failure of this harness, not of a test
        detail = f"the test harness failed: {type(exc).__name__}: {exc}"
        report({"status": "error", "detail": detail})


# the tests run in the sandbox, another process: score ahead
code.evalindex_traits = ScorerTraits(scores_outside_interpreter=True)  # type: ignore[attr-defined]
