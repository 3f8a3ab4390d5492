"""IFEval (Zhou et al., 2023): prompts with verifiable formatting instructions.

Rows follow the public release (``google/IFEval`` on Hugging Face, or the reference
repository's ``input_data.jsonl``)::

    {"key": 1000, "prompt": "Write a 300+ word summary ...",
     "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
     "kwargs": [{}, {"num_words": 300, "relation": "at least"}]}

In the Hugging Face copy every ``kwargs`` dict lists all argument names, with ``None`` for
the ones an instruction does not take; those are dropped here. The record id is
``ifeval/<key>`` (the row's position when a row has no ``key``), the prompt is sent as it is,
there is no target, and ``metadata`` carries ``instruction_id_list`` and ``kwargs`` for the
``ifeval`` scorer, the default. ``fields`` may rename the columns of a copy that names them
differently (keys ``prompt``, ``instruction_id_list``, ``kwargs``, ``id``, ``system``), and a
``prompt_template`` may wrap the prompt (``{prompt}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters import make_record
from pytest_evalindex.data.adapters.general_qa import FieldsAdapter, as_text
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


class IFEval(FieldsAdapter):
    name = "ifeval"
    default_scorer = ScorerRef(name="ifeval")
    field_defaults: ClassVar[dict[str, str | None]] = {
        "prompt": "prompt",
        "instruction_id_list": "instruction_id_list",
        "kwargs": "kwargs",
        "id": "key",
        "system": None,
    }

    def record_id(self, row: dict[str, Any], position: int) -> str:
        key = self.optional(row, "id")
        if key is None:
            return str(position)
        if isinstance(key, float) and key.is_integer():  # 1000.0 from a CSV copy
            key = int(key)
        return as_text(key)

    def instruction_ids(self, row: dict[str, Any], position: int) -> list[str]:
        ids = self.required(row, "instruction_id_list", position)
        if (
            not isinstance(ids, list | tuple)
            or not ids
            or not all(isinstance(i, str) and i for i in ids)
        ):
            raise EvalIndexError(
                f"{self.where(position)}: field {self.fields['instruction_id_list']!r} should "
                f"be a non-empty list of instruction ids such as 'punctuation:no_comma', got "
                f"{_describe(ids)}",
                file=self.source,
            )
        return list(ids)

    def instruction_kwargs(
        self, row: dict[str, Any], position: int, count: int
    ) -> list[dict[str, Any]]:
        """One dict of arguments per instruction, without the ``None`` placeholders."""
        value = self.optional(row, "kwargs")
        if value is None:
            return [{} for _ in range(count)]
        if not isinstance(value, list | tuple) or len(value) != count:
            raise EvalIndexError(
                f"{self.where(position)}: field {self.fields['kwargs']!r} should be a list of "
                f"{count} dicts, one per instruction, got {_describe(value)}",
                file=self.source,
            )
        cleaned = []
        for number, arguments in enumerate(value):
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise EvalIndexError(
                    f"{self.where(position)}: item {number} of field "
                    f"{self.fields['kwargs']!r} should be a dict of arguments, got "
                    f"{_describe(arguments)}",
                    file=self.source,
                )
            cleaned.append({str(k): v for k, v in arguments.items() if v is not None})
        return cleaned

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        ids = self.instruction_ids(row, position)
        kwargs = self.instruction_kwargs(row, position, len(ids))
        if leaf.prompt_template is not None:
            user = self.format_template(row, position, leaf)
        else:
            prompt = self.required(row, "prompt", position)
            if not isinstance(prompt, str):
                raise EvalIndexError(
                    f"{self.where(position)}: field {self.fields['prompt']!r} should be the "
                    f"prompt text, got {_describe(prompt)}",
                    file=self.source,
                )
            user = prompt
        return make_record(
            leaf,
            self.record_id(row, position),
            user=user,
            adapter=self,
            system=self.system_prompt(row, leaf),
            target=None,
            metadata={"instruction_id_list": ids, "kwargs": kwargs},
        )


def _describe(value: Any) -> str:
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    return f"{type(value).__name__} {value!r}"[:80]


ADAPTER = IFEval()
