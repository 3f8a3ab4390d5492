"""pytest-evalindex: weighted LLM evaluation indexes as pytest runs.

What users import: the record types, the scorer result type, the spec and test-set
functions and the fake server for tests. Everything but the error type is imported on
first use, so ``import pytest_evalindex`` (which pytest does for every run that has the
plugin installed) stays cheap: pydantic, yaml and httpx load only when a name needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_evalindex.errors import EvalIndexError

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    "Record": "pytest_evalindex.testset.records",
    "Message": "pytest_evalindex.testset.records",
    "ScorerRef": "pytest_evalindex.testset.records",
    "Score": "pytest_evalindex.scoring",
    "ModelAnswer": "pytest_evalindex.run.client",
    "FakeOpenAI": "pytest_evalindex.testing",
    "load_spec": "pytest_evalindex.spec.index",
    "flatten": "pytest_evalindex.spec.index",
    "sample_index": "pytest_evalindex.testset.sampling",
    "read_testset": "pytest_evalindex.testset.jsonl",
    "write_testset": "pytest_evalindex.testset.jsonl",
}

__all__ = [
    "EvalIndexError",
    "FakeOpenAI",
    "Message",
    "ModelAnswer",
    "Record",
    "Score",
    "ScorerRef",
    "__version__",
    "flatten",
    "load_spec",
    "read_testset",
    "sample_index",
    "write_testset",
]

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports on demand
    from pytest_evalindex.run.client import ModelAnswer
    from pytest_evalindex.scoring import Score
    from pytest_evalindex.spec.index import flatten, load_spec
    from pytest_evalindex.testing import FakeOpenAI
    from pytest_evalindex.testset.jsonl import read_testset, write_testset
    from pytest_evalindex.testset.records import Message, Record, ScorerRef
    from pytest_evalindex.testset.sampling import sample_index


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
