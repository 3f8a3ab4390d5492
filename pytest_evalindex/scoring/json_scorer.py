"""JSON answers: the response must be JSON, optionally valid against a schema or equal to
the target.

Registered as the scorer ``json``. What is parsed: the last fenced block marked ``json``
(```` ```json ... ``` ````) when the response has one, else the last unmarked fenced block,
else the whole response (surrounding whitespace ignored).

Arguments:

- ``schema``: a JSON Schema (a mapping, any draft ``jsonschema`` knows; ``$schema`` picks
  the draft, the latest by default). Needs ``jsonschema``:
  ``pip install 'pytest-evalindex[jsonschema]'``.
- ``equals``: when true, the parsed value must also equal the target parsed as JSON (any
  of a list of targets). ``true`` and ``1`` differ, ``1`` and ``1.0`` are equal, object
  key order does not matter.

Score 1 when every requested check passes, else 0. Metrics: ``parsed`` always,
``schema_valid`` with a schema, ``equal`` with ``equals``, each 0 or 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pytest_evalindex.scoring import Score, ScorerError, clip, target_list
from pytest_evalindex.testset.records import Record

INSTALL_HINT = "pip install 'pytest-evalindex[jsonschema]'"

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def json_text(response: str) -> tuple[str, str]:
    """The part of a response to parse and where it came from."""
    blocks = _FENCE.findall(response)
    marked = [body for language, body in blocks if language.lower() == "json"]
    if marked:
        return marked[-1].strip(), "```json block"
    unmarked = [body for language, body in blocks if not language]
    if unmarked:
        return unmarked[-1].strip(), "``` block"
    return response.strip(), "whole response"


def same_json(left: Any, right: Any) -> bool:
    """JSON equality: like ``==`` but a boolean never equals a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and bool(left == right)


def _schema_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    """Why ``value`` does not fit ``schema``, or None when it does."""
    try:
        import jsonschema
    except ImportError:
        raise ScorerError(
            f"the json scorer's `schema` needs the jsonschema package: {INSTALL_HINT}"
        ) from None
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ScorerError(f"args.schema is not a valid JSON Schema: {exc.message}") from None
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def json_answer(
    response: str,
    record: Record,
    *,
    schema: Mapping[str, Any] | None = None,
    equals: bool = False,
) -> Score:
    """1 when the response is JSON (and fits ``schema``, and equals the target if asked)."""
    if schema is not None and not isinstance(schema, Mapping):
        raise ScorerError(f"args.schema must be a mapping (a JSON Schema), got {schema!r}")
    text, origin = json_text(response)
    try:
        value = json.loads(text)
    except ValueError as exc:
        metrics = {"parsed": 0.0}
        if schema is not None:
            metrics["schema_valid"] = 0.0
        if equals:
            metrics["equal"] = 0.0
        return Score(0.0, f"{origin} is not JSON ({exc}): {clip(text)!r}", metrics=metrics)
    metrics = {"parsed": 1.0}
    notes = [f"{origin} parses as JSON"]
    if schema is not None:
        problem = _schema_problem(value, schema)
        metrics["schema_valid"] = 1.0 if problem is None else 0.0
        notes.append("fits the schema" if problem is None else f"breaks the schema {problem}")
    if equals:
        wanted = []
        for target in target_list(record, "json"):
            try:
                wanted.append(json.loads(target))
            except ValueError as exc:
                raise ScorerError(
                    f"target {clip(target)!r} of record {record.id!r} is not JSON ({exc})"
                ) from None
        equal = any(same_json(value, target) for target in wanted)
        metrics["equal"] = 1.0 if equal else 0.0
        notes.append("equals the target" if equal else "differs from the target")
    passed = all(metrics.values())
    return Score(
        1.0 if passed else 0.0,
        "; ".join(notes),
        extracted=clip(json.dumps(value, ensure_ascii=False), 200),
        metrics=metrics,
    )
