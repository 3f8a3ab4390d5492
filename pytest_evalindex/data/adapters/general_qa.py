"""Generic question → answer datasets whose column names the spec gives in ``fields``.

``fields`` keys (values are the row's column names):

- ``input``: the prompt. Required unless ``prompt_template`` builds the prompt. A value that
  is a list of ``{"role", "content"}`` objects is taken as the whole conversation.
- ``target``: the reference answer; optional (a scorer such as an LLM judge with a rubric
  may not need one). A list stays a list of strings.
- ``id``: the record id; default the row's 0-based position in the source.
- ``subset``: the subset name; default ``"default"``. ``args.subset_list`` filters on it.
- ``system``: a per-row system prompt; it wins over the leaf's fixed ``system``.

``prompt_template`` is a ``str.format`` template over the row's columns, e.g.
``"Context:\\n{context}\\n\\nQuestion: {question}"``; write literal braces as ``{{`` ``}}``.

The default scorer is ``exact_match``: without a ``scorer`` the answer must equal the target
(after the scorer's own normalisation). Free-form answers usually want ``includes``, a regex
or a judge, so most specs name one.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters import Adapter, BaseAdapter, make_record
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Message, Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf


def _field_path(leaf: Leaf, name: str) -> str:
    return f"{leaf.field_path}.{name}" if leaf.field_path else name


def as_text(value: Any) -> str:
    """A row value as prompt text: strings as they are, anything else through ``str()``."""
    return value if isinstance(value, str) else str(value)


def as_target(value: Any) -> str | list[str] | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [as_text(item) for item in value]
    return as_text(value)


class _TemplateRow(dict[str, Any]):
    """The row seen by ``prompt_template``: a missing column is a clear error, not KeyError."""

    def __init__(self, row: Mapping[str, Any], template: str, where: str, source: str | None):
        super().__init__(row)
        self.template = template
        self.where = where
        self.source = source

    def __missing__(self, key: str) -> Any:
        raise EvalIndexError(
            f"prompt_template {self.template!r} uses {{{key}}} but {self.where} has no "
            f"field {key!r}",
            file=self.source,
        )


def check_template(leaf: Leaf) -> None:
    """Reject a ``prompt_template`` that ``str.format_map`` could never fill."""
    template = leaf.prompt_template
    if template is None:
        return
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise EvalIndexError(
            f"{exc} in {template!r}; write a literal brace as {{{{ or }}}}",
            file=leaf.spec_file,
            field=_field_path(leaf, "prompt_template"),
        ) from None
    for _, field_name, _, _ in parsed:
        if field_name is not None and (field_name == "" or field_name.isdigit()):
            raise EvalIndexError(
                f"placeholders name a column, like {{question}}; {template!r} has {{{field_name}}}",
                file=leaf.spec_file,
                field=_field_path(leaf, "prompt_template"),
            )


class FieldsAdapter(BaseAdapter):
    """Shared machinery for adapters configured by ``fields``: ids, subsets, templates."""

    # fields keys this adapter understands, with their default column names (None: no default)
    field_defaults: ClassVar[dict[str, str | None]] = {}

    def __init__(self, fields: Mapping[str, str] | None = None, source: str | None = None):
        self.fields: dict[str, str] = {
            key: column for key, column in self.field_defaults.items() if column is not None
        }
        self.fields.update(fields or {})
        self.source = source

    def check(self, leaf: Leaf) -> None:
        for key in leaf.fields:
            if key not in self.field_defaults:
                known = ", ".join(self.field_defaults)
                raise EvalIndexError(
                    f"unknown key {key!r} for adapter {self.name}; known keys: {known}",
                    file=leaf.spec_file,
                    field=_field_path(leaf, f"fields.{key}"),
                )
        check_template(leaf)

    def for_leaf(self, leaf: Leaf) -> Adapter:
        return type(self)(leaf.fields, source=leaf.source)

    @staticmethod
    def where(position: int) -> str:
        return f"row {position} (counting from 0)"

    def required(self, row: Mapping[str, Any], key: str, position: int) -> Any:
        """The value of the column mapped to ``key``; an error when the row lacks it."""
        column = self.fields[key]
        value = row.get(column)
        if value is None:
            raise EvalIndexError(
                f"{self.where(position)} has no field {column!r} (fields.{key})",
                file=self.source,
            )
        return value

    def optional(self, row: Mapping[str, Any], key: str) -> Any:
        column = self.fields.get(key)
        return None if column is None else row.get(column)

    def record_id(self, row: dict[str, Any], position: int) -> str:
        if "id" not in self.fields:
            return str(position)
        return as_text(self.required(row, "id", position))

    def subset(self, row: dict[str, Any]) -> str:
        column = self.fields.get("subset")
        if column is None:
            return "default"
        value = row.get(column)
        return "default" if value is None else as_text(value)

    def system_prompt(self, row: Mapping[str, Any], leaf: Leaf) -> str | None:
        own = self.optional(row, "system")
        return as_text(own) if own not in (None, "") else leaf.system

    def format_template(
        self, row: Mapping[str, Any], position: int, leaf: Leaf, **extra: Any
    ) -> str:
        """``leaf.prompt_template`` filled from the row's columns (and ``extra`` names)."""
        assert leaf.prompt_template is not None
        values = _TemplateRow(row, leaf.prompt_template, self.where(position), self.source)
        values.update(extra)
        return leaf.prompt_template.format_map(values)


def _conversation(value: Any) -> list[Message] | None:
    """A list of ``{"role", "content"}`` objects as messages; None for anything else."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, dict) and "role" in item and "content" in item for item in value):
        return None
    return [Message(role=str(item["role"]), content=as_text(item["content"])) for item in value]


class GeneralQA(FieldsAdapter):
    name = "general_qa"
    default_scorer = ScorerRef(name="exact_match")
    field_defaults: ClassVar[dict[str, str | None]] = {
        "input": None,
        "target": None,
        "id": None,
        "subset": None,
        "system": None,
    }

    def check(self, leaf: Leaf) -> None:
        super().check(leaf)
        if "input" not in leaf.fields and leaf.prompt_template is None:
            raise EvalIndexError(
                "general_qa needs the column that holds the prompt, e.g. "
                "fields: {input: question, target: answer} (or a prompt_template)",
                file=leaf.spec_file,
                field=_field_path(leaf, "fields.input"),
            )

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        user: str | list[Message]
        if leaf.prompt_template is not None:
            user = self.format_template(row, position, leaf)
        else:
            value = self.required(row, "input", position)
            user = _conversation(value) or as_text(value)
        return make_record(
            leaf,
            self.record_id(row, position),
            user=user,
            adapter=self,
            subset=self.subset(row),
            system=self.system_prompt(row, leaf),
            target=as_target(self.optional(row, "target")),
        )


ADAPTER = GeneralQA()
