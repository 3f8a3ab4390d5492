"""The index spec: pydantic models, YAML loading with precise errors, and its leaves.

What the rest of the package uses:

    load_spec(path: str | Path) -> IndexSpec
        Reads YAML, validates, raises EvalIndexError naming file, line (when YAML gives it)
        and field path like ``datasets[1].datasets[0].weight``.
    flatten(spec: IndexSpec) -> list[Leaf]
        Leaves in spec order (depth first), with normalised weights summing to 1.
    Leaf: frozen dataclass, see below.
    IndexSpec.from_dict(data, path=None) -> IndexSpec
        Validates a mapping like the YAML's (shape, names, weights) without checking that
        adapters, sources and scorers exist; ``path`` is where relative sources resolve from
        (its folder) and what errors name. Without it sources resolve against the current
        working directory.
    IndexSpec.path / IndexSpec.base_dir
        The spec file as given to load_spec (None for from_dict without a path), and the
        absolute folder relative sources are resolved against.
    check_leaves(spec: IndexSpec) -> None
        What load_spec checks after validation: each leaf has a known adapter, an existing
        source and a scorer, and passes its adapter's ``check``.
    format_weights_table(leaves: list[Leaf]) -> str
        The normalised weights as a plain-text table ending in a TOTAL line.

Every error is one paragraph: where (file:line: field) and what was expected.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pytest_evalindex.data.sources import resolve_source
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import ScorerRef


@dataclass(frozen=True)
class Leaf:
    """A dataset of the index after flattening: everything needed to read and score it."""

    name: str  # the dataset name; unique across the whole index
    weight: float  # normalised W_d (product along the path of w / sum of sibling weights)
    categories: tuple[str, ...]  # root name, then enclosing group names (not the leaf's own)
    task_type: str  # own, else inherited from the nearest group, else "default"
    tags: tuple[str, ...]  # union of the groups' tags and its own, in order, no duplicates
    source: str | None  # absolute path string, or a URI (pkg://, hf://) as written
    adapter: str  # "general_qa", "general_mcq" or a built-in benchmark name
    scorer: ScorerRef | None  # None: the adapter's default scorer
    fields: dict[str, str] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    prompt_template: str | None = None
    system: str | None = None
    spec_file: Path | None = None
    field_path: str = ""  # e.g. "datasets[1].datasets[0]", for error messages


Loc = tuple[str | int, ...]

# the error type of the checks below; `at` extends the error's location past the model
_ERROR_TYPE = "evalindex"
# keys that only make sense on a leaf: a group reads and scores nothing itself
_LEAF_ONLY_KEYS = ("source", "adapter", "fields", "scorer", "args", "prompt_template", "system")
_FIX_NO_ADAPTER = (
    "add `adapter: general_qa` with `fields: {input: ..., target: ...}` or `adapter: general_mcq`"
)


def _invalid(message: str, at: Loc = ()) -> PydanticCustomError:
    return PydanticCustomError(_ERROR_TYPE, message, {"at": at})


def _describe(value: Any) -> str:
    """A YAML value as an error message names it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def format_field_path(loc: Sequence[str | int]) -> str:
    """``("datasets", 1, "weight")`` → ``"datasets[1].weight"``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def parse_field_path(text: str) -> Loc:
    """The inverse of format_field_path."""
    loc: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text):
        loc.append(int(index) if index else name)
    return tuple(loc)


# --- models ------------------------------------------------------------------------------


class Pricing(BaseModel):
    """What a model's tokens cost, in USD per million tokens. ``cached_input`` is the price
    of prompt tokens the provider reports as served from its prompt cache (default: the
    ``input`` price)."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)
    cached_input: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ModelSpec(BaseModel):
    """An OpenAI-compatible model: the model under test or the judge."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    generation: dict[str, Any] = Field(default_factory=dict)
    pricing: Pricing | None = None


class DatasetNode(BaseModel):
    """One entry of ``datasets``: a leaf (reads a source) or a group (has ``datasets``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    weight: float = 1.0
    task_type: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str | None = None
    adapter: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    scorer: ScorerRef | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    prompt_template: str | None = None
    system: str | None = None
    datasets: list[DatasetNode] | None = None

    @property
    def is_group(self) -> bool:
        return self.datasets is not None

    @field_validator("name")
    @classmethod
    def _name_fits_in_ids(cls, name: str) -> str:
        # names become node ids (spec.yaml::name::name/3), marker names and category paths
        if not name:
            raise _invalid("a dataset name cannot be empty")
        for bad, what in (("/", "'/'"), ("::", "'::'")):
            if bad in name:
                raise _invalid(
                    f"dataset name {name!r} contains {what}; names appear in sample ids and "
                    "test ids, so use letters, digits, '_', '-' or '.'"
                )
        if any(char.isspace() for char in name):
            raise _invalid(
                f"dataset name {name!r} contains whitespace; names appear in sample ids and "
                "test ids, so use letters, digits, '_', '-' or '.'"
            )
        return name

    @field_validator("weight", mode="before")
    @classmethod
    def _positive_finite_weight(cls, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid(f"weight must be a positive number, got {_describe(value)}")
        try:
            weight = float(value)
        except OverflowError:
            weight = math.inf
        if not math.isfinite(weight) or weight <= 0:
            raise _invalid(f"weight must be a positive, finite number, got {value}")
        return weight

    @field_validator("tags", mode="before")
    @classmethod
    def _one_tag_is_a_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("scorer", mode="before")
    @classmethod
    def _scorer_shorthand(cls, value: Any) -> Any:
        # `scorer: includes` is short for `scorer: {name: includes}`
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _group_or_leaf(self) -> DatasetNode:
        if self.datasets is None:
            if "datasets" in self.model_fields_set:
                raise _invalid(
                    f"empty group: {self.name!r} has `datasets:` with nothing under it; list "
                    "its datasets or remove the key",
                    at=("datasets",),
                )
            return self
        if not self.datasets:
            raise _invalid(
                f"empty group: {self.name!r} has `datasets: []`; a group needs at least one "
                "dataset",
                at=("datasets",),
            )
        leaf_keys = [key for key in _LEAF_ONLY_KEYS if key in self.model_fields_set]
        if leaf_keys:
            listed = ", ".join(f"`{key}`" for key in leaf_keys)
            raise _invalid(
                f"{self.name!r} is a group (it has `datasets`), so it cannot also have "
                f"{listed}; a group only carries name, weight, task_type, tags and datasets. "
                "Move the reading settings onto the datasets inside it",
                at=(leaf_keys[0],),
            )
        return self


class IndexSpec(BaseModel):
    """A whole index: what to sample, how to ask, and the weighted tree of datasets."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    sampler: Literal["weighted", "stratified", "uniform"] = "weighted"
    count: int = Field(default=100, gt=0, strict=True)
    seed: int = Field(default=42, strict=True)
    model: ModelSpec | None = None
    judge: ModelSpec | None = None
    gates: list[str] = Field(default_factory=list)
    strip_thinking: bool = True
    datasets: list[DatasetNode]

    _path: Path | None = PrivateAttr(default=None)
    _base_dir: Path | None = PrivateAttr(default=None)
    _yaml_tree: yaml.Node | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _usable_root_name(cls, name: str) -> str:
        if not name.strip():
            raise _invalid("the index needs a non-empty name")
        if "/" in name:
            # categories are reported as paths: <index>/<group>/...
            raise _invalid(f"index name {name!r} cannot contain '/'")
        return name

    @field_validator("datasets")
    @classmethod
    def _at_least_one_dataset(cls, datasets: list[DatasetNode]) -> list[DatasetNode]:
        if not datasets:
            raise _invalid("the index lists no datasets; add at least one under `datasets:`")
        return datasets

    @model_validator(mode="after")
    def _unique_names(self) -> IndexSpec:
        first_leaf_at: dict[str, Loc] = {}

        def visit(nodes: list[DatasetNode], parent: Loc) -> None:
            sibling_at: dict[str, Loc] = {}
            for index, node in enumerate(nodes):
                here: Loc = (*parent, "datasets", index)
                if node.name in sibling_at:
                    raise _invalid(
                        f"two datasets in the same list are both named {node.name!r} "
                        f"({format_field_path(sibling_at[node.name])} and "
                        f"{format_field_path(here)}); names must differ among siblings",
                        at=(*here, "name"),
                    )
                sibling_at[node.name] = here
                if node.datasets is not None:
                    visit(node.datasets, here)
                    continue
                if node.name in first_leaf_at:
                    benchmark = node.adapter or node.name
                    raise _invalid(
                        f"dataset name {node.name!r} is used twice "
                        f"({format_field_path(first_leaf_at[node.name])} and "
                        f"{format_field_path(here)}); dataset names must be unique across the "
                        "whole index because sample ids read '<dataset>/<id>'. Rename one "
                        f"(e.g. `name: {node.name}_2`) and add `adapter: {benchmark}` so it "
                        "is still read the same way",
                        at=(*here, "name"),
                    )
                first_leaf_at[node.name] = here

        visit(self.datasets, ())
        return self

    @classmethod
    def from_dict(cls, data: Any, path: str | Path | None = None) -> IndexSpec:
        """Validate a mapping shaped like the YAML spec; errors are EvalIndexError."""
        return _validate(data, Path(path) if path is not None else None, tree=None)

    @property
    def path(self) -> Path | None:
        """The spec file as it was given, or None for a spec built from a dict."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """The absolute folder relative sources resolve against."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The 1-based YAML line of a field (or of its nearest written parent), if known."""
        return _line_at(self._yaml_tree, loc)


# --- loading -----------------------------------------------------------------------------


def load_spec(path: str | Path) -> IndexSpec:
    """Read, validate and check a spec file; every problem is one EvalIndexError."""
    spec_file = Path(path)
    try:
        text = spec_file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvalIndexError("no such file", file=spec_file) from None
    except IsADirectoryError:
        raise EvalIndexError("this is a folder, not a spec file", file=spec_file) from None
    except UnicodeDecodeError as exc:
        raise EvalIndexError(f"the spec is not UTF-8 text ({exc.reason})", file=spec_file) from None
    except OSError as exc:
        raise EvalIndexError(f"cannot read the spec: {exc.strerror}", file=spec_file) from None
    tree, data = _parse_yaml(text, spec_file)
    if tree is None:
        raise EvalIndexError(
            "the spec is empty; it needs at least `name:` and `datasets:`", file=spec_file
        )
    if not isinstance(data, dict):
        raise EvalIndexError(
            f"the spec should be a mapping with at least `name:` and `datasets:`, not "
            f"{_describe(data)}",
            file=spec_file,
            line=tree.start_mark.line + 1,
        )
    _reject_duplicate_keys(tree, (), spec_file)
    spec = _validate(data, spec_file, tree)
    check_leaves(spec)
    return spec


def _parse_yaml(text: str, spec_file: Path) -> tuple[yaml.Node | None, Any]:
    """The composed node tree (for line numbers) and the plain data, from one parse."""
    loader = yaml.SafeLoader(text)
    try:
        tree = loader.get_single_node()
        data = loader.construct_document(tree) if tree is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "cannot parse"
        if exc.context:
            problem = f"{problem} ({exc.context})"
        where = f" at column {mark.column + 1}" if mark is not None else ""
        raise EvalIndexError(
            _one_line(f"invalid YAML{where}: {problem}"),
            file=spec_file,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    except yaml.YAMLError as exc:
        raise EvalIndexError(_one_line(f"invalid YAML: {exc}"), file=spec_file) from None
    finally:
        loader.dispose()
    return tree, data


def _reject_duplicate_keys(node: yaml.Node, loc: Loc, spec_file: Path) -> None:
    """YAML silently keeps the last of two equal keys; in a spec that is always a mistake."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                raise EvalIndexError(
                    f"key {key!r} appears twice in the same mapping (lines {seen[key]} and "
                    f"{line}); YAML would silently keep only the last",
                    file=spec_file,
                    line=line,
                    field=format_field_path((*loc, key)),
                )
            seen[key] = line
            _reject_duplicate_keys(value_node, (*loc, key), spec_file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicate_keys(item, (*loc, index), spec_file)


def _validate(data: Any, spec_file: Path | None, tree: yaml.Node | None) -> IndexSpec:
    if not isinstance(data, Mapping):
        raise EvalIndexError(
            f"the spec should be a mapping with at least `name:` and `datasets:`, not "
            f"{_describe(data)}",
            file=spec_file,
        )
    try:
        spec = IndexSpec.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, spec_file, tree) from None
    spec._path = spec_file
    spec._base_dir = Path(os.path.abspath(spec_file.parent)) if spec_file is not None else None
    spec._yaml_tree = tree
    return spec


# --- validation errors in the user's words -----------------------------------------------


@dataclass
class _Problem:
    loc: Loc
    message: str
    line: int | None
    kind: str


def _translate(
    error: ValidationError, spec_file: Path | None, tree: yaml.Node | None
) -> EvalIndexError:
    """pydantic's errors → the first one, as one paragraph naming file, line and field."""
    problems = []
    for details in error.errors(include_url=False):
        loc: Loc = tuple(part for part in details["loc"] if part != "[key]")
        ctx = details.get("ctx") or {}
        if details["type"] == _ERROR_TYPE:
            loc = (*loc, *ctx.get("at", ()))
        problems.append(
            _Problem(loc, _message_for(details, loc), _line_at(tree, loc), details["type"])
        )
    problems = _drop_missing_explained_by_typos(problems)
    # report what comes first in the file; unknown lines last
    problems.sort(key=lambda p: p.line if p.line is not None else math.inf)
    first = problems[0]
    message = first.message
    if len(problems) > 1:
        others = len(problems) - 1
        message += f" (and {others} other problem{'s' if others > 1 else ''})"
    return EvalIndexError(
        _one_line(message), file=spec_file, line=first.line, field=format_field_path(first.loc)
    )


def _drop_missing_explained_by_typos(problems: list[_Problem]) -> list[_Problem]:
    """`nmae: x` gives both "unknown key 'nmae'" and "missing 'name'": keep the first."""
    typos = {(p.loc[:-1], str(p.loc[-1])) for p in problems if p.kind == "extra_forbidden"}
    kept = []
    for problem in problems:
        if problem.kind == "missing":
            parent, missing = problem.loc[:-1], str(problem.loc[-1])
            unknown = [key for where, key in typos if where == parent]
            if difflib.get_close_matches(missing, unknown, n=1):
                continue
        kept.append(problem)
    return kept or problems


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping found at ``loc``."""
    model: type[BaseModel] = IndexSpec
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        found = _model_in(info.annotation) if info is not None else None
        if found is None:
            return None
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _closest(word: str, choices: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = _closest(word, choices)
    return f"; did you mean {close!r}?" if close else ""


def _message_for(details: Mapping[str, Any], loc: Loc) -> str:
    kind = details["type"]
    value = details.get("input")
    ctx = details.get("ctx") or {}
    got = _describe(value)
    if kind == _ERROR_TYPE:
        return str(details["msg"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model is not None else []
        hint = _did_you_mean(key, allowed)
        if not hint and allowed:
            hint = f"; expected one of: {', '.join(allowed)}"
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "literal_error":
        model = _model_at(loc[:-1])
        info = model.model_fields.get(str(loc[-1])) if model is not None else None
        options = [str(option) for option in get_args(info.annotation)] if info else []
        return f"expected {ctx.get('expected')}, got {got}" + _did_you_mean(str(value), options)
    if kind == "model_type" and loc and loc[-1] == "scorer":
        return f"expected a scorer name (`scorer: includes`) or a mapping with `name:`, got {got}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}, got {value}"
    if kind == "string_type":
        quote = ""
        if isinstance(value, (bool, int, float)):
            # YAML reads `2024`, `yes` or `1.10` as a number or boolean, not text
            quote = "; put it in quotes to make it text"
        return f"expected text, got {got}{quote}"
    expected = {
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "int_parsing": "a whole number",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "list_type": "a list",
        "dict_type": "a mapping (key: value pairs)",
        "model_type": "a mapping (key: value pairs)",
        "model_attributes_type": "a mapping (key: value pairs)",
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {got}"
    text = str(details["msg"]).replace("Input should be", "expected")
    return f"{text}, got {got}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _line_at(tree: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest part of ``loc`` written in the YAML (a missing key: its parent)."""
    if tree is None:
        return None
    node = tree
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


# --- the tree of datasets ----------------------------------------------------------------


@dataclass(frozen=True)
class _LeafVisit:
    node: DatasetNode
    loc: Loc
    weight: float
    categories: tuple[str, ...]
    task_type: str
    tags: tuple[str, ...]


def _walk_leaves(spec: IndexSpec) -> Iterator[_LeafVisit]:
    """Leaves depth first, with what they inherit and their normalised weight."""

    def walk(
        nodes: list[DatasetNode],
        parent: Loc,
        weight: float,
        categories: tuple[str, ...],
        task_type: str | None,
        tags: tuple[str, ...],
    ) -> Iterator[_LeafVisit]:
        total = math.fsum(node.weight for node in nodes)
        for index, node in enumerate(nodes):
            loc: Loc = (*parent, "datasets", index)
            node_weight = weight * node.weight / total
            node_task_type = node.task_type or task_type
            node_tags = tuple(dict.fromkeys((*tags, *node.tags)))
            if node.datasets is not None:
                yield from walk(
                    node.datasets,
                    loc,
                    node_weight,
                    (*categories, node.name),
                    node_task_type,
                    node_tags,
                )
            else:
                yield _LeafVisit(
                    node, loc, node_weight, categories, node_task_type or "default", node_tags
                )

    return walk(spec.datasets, (), 1.0, (spec.name,), None, ())


def _adapter_named(name: str) -> Any:
    from pytest_evalindex.data import adapters

    return adapters.get_adapter(name)


def _make_leaf(spec: IndexSpec, visit: _LeafVisit, source: str | None) -> Leaf:
    node = visit.node
    return Leaf(
        name=node.name,
        weight=visit.weight,
        categories=visit.categories,
        task_type=visit.task_type,
        tags=visit.tags,
        source=source,
        adapter=node.adapter or node.name,
        scorer=node.scorer,
        fields=dict(node.fields),
        args=dict(node.args),
        prompt_template=node.prompt_template,
        system=node.system,
        spec_file=spec.path,
        field_path=format_field_path(visit.loc),
    )


def flatten(spec: IndexSpec) -> list[Leaf]:
    """The leaves in spec order with normalised weights (summing to 1) and resolved sources.

    Relative sources become absolute paths against the spec's folder; whether they exist is
    load_spec's check, not flatten's. A leaf without ``source`` takes its adapter's
    ``default_source`` when it has one.
    """
    leaves = []
    for visit in _walk_leaves(spec):
        source = visit.node.source
        if source is None:
            adapter = _adapter_named(visit.node.adapter or visit.node.name)
            source = getattr(adapter, "default_source", None)
        resolved = resolve_source(source, spec.base_dir, must_exist=False) if source else None
        leaves.append(_make_leaf(spec, visit, resolved))
    return leaves


def check_leaves(spec: IndexSpec) -> None:
    """Each leaf has a known adapter, an existing source and a scorer, and passes its check."""
    for visit in _walk_leaves(spec):
        _check_leaf(spec, visit)


def _check_leaf(spec: IndexSpec, visit: _LeafVisit) -> None:
    from pytest_evalindex.data import adapters

    node, loc = visit.node, visit.loc

    def fail(message: str, at: Loc = ()) -> EvalIndexError:
        where = (*loc, *at)
        return EvalIndexError(
            message, file=spec.path, line=spec.line_of(where), field=format_field_path(where)
        )

    if node.adapter is not None:
        adapter = adapters.get_adapter(node.adapter)
        if adapter is None:
            known = adapters.known_adapters()
            close = _closest(node.adapter, known)
            suggestion = f"did you mean {close!r}? " if close else ""
            raise fail(
                f"unknown adapter {node.adapter!r}; {suggestion}known adapters: {', '.join(known)}",
                ("adapter",),
            )
    else:
        adapter = adapters.get_adapter(node.name)
        if adapter is None:
            close = _closest(node.name, adapters.known_adapters())
            suggestion = f" (did you mean {close!r}?)" if close else ""
            raise fail(
                f"dataset {node.name!r} is not a built-in benchmark{suggestion} and names no "
                f"adapter; {_FIX_NO_ADAPTER}",
                ("name",),
            )

    source = node.source
    if source is None:
        source = getattr(adapter, "default_source", None)
        if source is None:
            raise fail(
                f"dataset {node.name!r} has no source; add `source:` with the path of its data "
                "file (relative to the spec), e.g. `source: data/my_data.jsonl`"
            )
        source_at: Loc = ()
    else:
        source_at = ("source",)
    where = (*loc, *source_at)
    resolved = resolve_source(
        source,
        spec.base_dir,
        file=spec.path,
        field=format_field_path(where),
        line=spec.line_of(where),
    )

    if node.scorer is None and getattr(adapter, "default_scorer", None) is None:
        raise fail(
            f"dataset {node.name!r} names no scorer and adapter "
            f"{getattr(adapter, 'name', node.adapter)!r} has none by default; add one, e.g. "
            "`scorer: includes`"
        )

    leaf = _make_leaf(spec, visit, resolved)
    try:
        adapter.check(leaf)
    except EvalIndexError as exc:
        if exc.file not in (None, str(spec.path)):
            raise  # about another file (a data file), already precise
        field_path = exc.field or leaf.field_path
        if not field_path.startswith("datasets["):
            field_path = f"{leaf.field_path}.{field_path}"
        line = exc.line if exc.line is not None else spec.line_of(parse_field_path(field_path))
        raise EvalIndexError(exc.message, file=spec.path, line=line, field=field_path) from None


# --- the weights table -------------------------------------------------------------------


def format_weights_table(leaves: Sequence[Leaf]) -> str:
    """Normalised leaf weights as plain text: one row a dataset, then a TOTAL line."""
    header = ("dataset", "categories", "task_type", "tags", "weight")
    rows = [
        (
            leaf.name,
            "/".join(leaf.categories),
            leaf.task_type,
            ",".join(leaf.tags) or "-",
            f"{leaf.weight:.4f}",
        )
        for leaf in leaves
    ]
    total = ("TOTAL", "", "", "", f"{math.fsum(leaf.weight for leaf in leaves):.4f}")
    from pytest_evalindex.table_format import format_table

    lines = format_table(header, rows, left=len(header) - 1, footer=[total], rule="columns")
    return "\n".join(lines)
