"""Assertions shared by the plugin tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

RESULTS_SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "results.schema.json"


def load_results_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(RESULTS_SCHEMA.read_text("utf-8"))
    return schema


def assert_valid_results(document: Any) -> None:
    """Fail with every way ``document`` breaks docs/results.schema.json, each with its path."""
    __tracebackhide__ = True
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_results_schema())
    problems = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    assert not problems, "\n".join(problems[:20])


def assert_outcomes(result: pytest.RunResult, **expected: int) -> None:
    """Like ``RunResult.assert_outcomes``, but knows the plugin's own ``missed`` status."""
    __tracebackhide__ = True
    seen = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}
    assert seen == expected, result.stdout.str()


def deselected(run_mode: list[str], count: int) -> dict[str, int]:
    """The ``deselected`` entry of the expected outcomes of a run in ``run_mode``.

    Under pytest-xdist each worker deselects on its own and the controller's summary line
    counts none, so with ``-n`` the line has no ``deselected`` at all. The plugin's own
    ``partial: N of M records`` line says what ran in both modes: check that as well."""
    return {} if run_mode else {"deselected": count}
