"""LiveCodeBench code generation: competitive programming problems, scored by running tests.

Rows follow the Hugging Face release ``livecodebench/code_generation_lite``:
``question_id``, ``question_title``, ``question_content``, ``platform``, ``starter_code``,
``difficulty``, ``public_test_cases`` (a JSON list of ``{"input", "output", "testtype"}``),
``private_test_cases`` (the same, often compressed: base64 of zlib of a pickled JSON string)
and ``metadata`` (JSON; ``func_name`` for call-based problems). There is no default source:
point ``source`` at your copy of the release (a .jsonl or .parquet file).

A problem whose tests are ``functional`` (LeetCode) asks to complete the starter class, and
the method ``func_name`` of ``Solution`` is called with each test's arguments; the others
(``stdin``: AtCoder, Codeforces) ask for a program that reads standard input.

Record id ``live_code_bench/<question_id>``. ``args``:

- ``subset_by``: ``difficulty`` (default: subsets ``easy``, ``medium``, ``hard``) or
  ``platform`` (``leetcode``, ``atcoder``, ``codeforces``); ``subset_list`` filters on it.
- ``private_tests``: true (default) to test with the private cases as well as the public
  ones, as LiveCodeBench's own pass@1 does; false for the public cases only.

The test data are copied into each record as the release stores them (compressed cases stay
compressed) and decoded by the ``code`` scorer, which loads the compressed form with every
pickle global refused, so no code can run from a data file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pytest_evalindex.data.adapters import Adapter, BaseAdapter, make_record
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.scoring.code import decode_test_cases
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf

SUBSET_FIELDS = ("difficulty", "platform")

STDIN_INSTRUCTION = (
    "Solve the programming problem below with a Python 3 program. The program reads its "
    "input from standard input and writes the answer to standard output."
)
FUNCTIONAL_INSTRUCTION = (
    "Solve the programming problem below in Python 3 by completing the starting code. The "
    "method is called directly with the test's arguments and its return value is checked, "
    "so do not read input or print the answer."
)


def format_prompt(content: str, starter_code: str, functional: bool) -> str:
    if functional:
        return (
            f"{FUNCTIONAL_INSTRUCTION}\n\nProblem:\n{content.strip()}\n\n"
            f"Starting code:\n```python\n{starter_code.rstrip()}\n```\n\n"
            "Answer with the complete class in one ```python fenced code block."
        )
    return (
        f"{STDIN_INSTRUCTION}\n\nProblem:\n{content.strip()}\n\n"
        "Answer with the complete program in one ```python fenced code block."
    )


class LiveCodeBench(BaseAdapter):
    name = "live_code_bench"
    default_scorer = ScorerRef(name="code")

    def __init__(
        self,
        subset_by: str = "difficulty",
        private_tests: bool = True,
        source: str | None = None,
    ) -> None:
        self.subset_by = subset_by
        self.private_tests = private_tests
        self.source = source  # named in errors about a row

    def check(self, leaf: Leaf) -> None:
        subset_by = leaf.args.get("subset_by", "difficulty")
        if subset_by not in SUBSET_FIELDS:
            raise self._arg_error(
                leaf,
                "subset_by",
                f"subset_by must be one of {', '.join(SUBSET_FIELDS)}, got {subset_by!r}",
            )
        private = leaf.args.get("private_tests", True)
        if not isinstance(private, bool):
            raise self._arg_error(
                leaf, "private_tests", f"private_tests must be true or false, got {private!r}"
            )
        few_shot = leaf.args.get("few_shot_num", 0)
        if few_shot not in (0, None):
            raise self._arg_error(
                leaf,
                "few_shot_num",
                f"live_code_bench is zero-shot; few_shot_num must be 0, got {few_shot!r}",
            )

    @staticmethod
    def _arg_error(leaf: Leaf, arg: str, message: str) -> EvalIndexError:
        field = f"{leaf.field_path}.args.{arg}" if leaf.field_path else f"args.{arg}"
        return EvalIndexError(message, file=leaf.spec_file, field=field)

    def for_leaf(self, leaf: Leaf) -> Adapter:
        return LiveCodeBench(
            subset_by=str(leaf.args.get("subset_by", "difficulty")),
            private_tests=bool(leaf.args.get("private_tests", True)),
            source=leaf.source,
        )

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("question_id")
        if value is None or value == "":
            raise self._row_error(position, "has no field 'question_id'")
        return str(value)

    def subset(self, row: dict[str, Any]) -> str:
        value = row.get(self.subset_by)
        return str(value) if value not in (None, "") else "default"

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        content = row.get("question_content")
        if not isinstance(content, str) or not content.strip():
            raise self._row_error(position, "has no text field 'question_content'")
        try:
            public = decode_test_cases(row.get("public_test_cases"))
        except ValueError as exc:
            raise self._row_error(position, f"field 'public_test_cases': {exc}") from None
        private = row.get("private_test_cases") if self.private_tests else None
        if private is not None and not isinstance(private, (str, list)):
            raise self._row_error(
                position,
                f"field 'private_test_cases' should be a string or a list, got "
                f"{type(private).__name__}",
            )
        if not public and not private:
            raise self._row_error(position, "has no test cases")
        starter_code = row.get("starter_code") or ""
        func_name = self._func_name(row, position)
        functional = _is_functional(row.get("public_test_cases")) or bool(
            func_name and starter_code
        )
        metadata: dict[str, Any] = {
            "code_format": "functional" if functional else "stdin",
            "public_test_cases": row.get("public_test_cases"),
        }
        if private:
            metadata["private_test_cases"] = private
        if functional and func_name:
            metadata["func_name"] = func_name
        for key in ("question_title", "platform", "difficulty", "contest_date"):
            if row.get(key) is not None:
                metadata[key] = str(row[key])
        return make_record(
            leaf,
            self.record_id(row, position),
            user=format_prompt(content, str(starter_code), functional),
            adapter=self,
            subset=self.subset(row),
            system=leaf.system,
            metadata=metadata,
        )

    def _func_name(self, row: dict[str, Any], position: int) -> str | None:
        value = row.get("metadata")
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise self._row_error(position, f"field 'metadata' is not JSON: {exc}") from None
        if not isinstance(value, dict):
            return None
        name = value.get("func_name")
        return str(name) if name else None

    def _row_error(self, position: int, message: str) -> EvalIndexError:
        return EvalIndexError(f"row {position} (counting from 0) {message}", file=self.source)


def _is_functional(public_tests: Any) -> bool:
    """Whether the release marks the problem's tests as call-based."""
    try:
        cases = json.loads(public_tests) if isinstance(public_tests, str) else public_tests
    except json.JSONDecodeError:
        return False
    if not isinstance(cases, list):
        return False
    return any(isinstance(case, dict) and case.get("testtype") == "functional" for case in cases)


ADAPTER = LiveCodeBench()
