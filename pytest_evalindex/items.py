"""Collection: an index file holds one collector per dataset, each holding one item per record.

Node ids read ``rag_index.yaml::ifeval::ifeval/17``. Items are ``pytest.Function`` subclasses
built with ``callobj`` so the ``model`` fixture (or a user's override) resolves normally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_evalindex.run.client import ModelError
from pytest_evalindex.run.evaluation import SampleError

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Sample
    from pytest_evalindex.run.loading import LoadedIndex
    from pytest_evalindex.testset.records import Record


class MissedAnswer(Exception):
    """Raised under ``--index-strict`` so a wrong answer fails its item."""


# What runs an item: ``evaluate(item, model, record)``, put in the stash by the plugin when the
# run's session is set up (the session imports this module, so this one must not import it).
EVALUATOR_KEY = pytest.StashKey[Callable[["IndexItem", Any, "Record"], None]]()


def evaluate_record(model: Any, request: pytest.FixtureRequest) -> None:
    """The body of every index item: ask the model, score the answer, keep the sample.

    It asks for no more fixtures than it needs: each function-scoped fixture costs every
    item a setup and a teardown (a second or two on a 20,000-record index). The record is
    the item's own; the ``index_record`` fixture remains for users' fixtures."""
    __tracebackhide__ = True
    item = request.node
    request.config.stash[EVALUATOR_KEY](item, model, item.record)


class IndexFile(pytest.File):
    """A spec (.yaml) or frozen test set (.jsonl) given with ``--index``."""

    loaded: LoadedIndex

    def collect(self) -> Iterator[pytest.Collector]:
        current: list[Record] = []
        for record in self.loaded.records:
            if current and current[-1].dataset != record.dataset:
                yield DatasetCollector.from_parent(self, name=current[0].dataset, records=current)
                current = []
            current.append(record)
        if current:
            yield DatasetCollector.from_parent(self, name=current[0].dataset, records=current)


class DatasetCollector(pytest.Collector):
    def __init__(self, *, records: list[Record], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = records

    def collect(self) -> Iterator[pytest.Item]:
        # Every item here runs the same function under the same parent, so they all need
        # the same fixtures: work that out once (as pytest does for a parametrized test),
        # not once per record.
        fixtureinfo = None
        for record in self.records:
            item = IndexItem.from_parent(
                self,
                name=record.id,
                callobj=evaluate_record,
                record=record,
                fixtureinfo=fixtureinfo,
            )
            fixtureinfo = item._fixtureinfo
            yield item


class IndexItem(pytest.Function):
    """One record of the index as a test."""

    def __init__(self, *, record: Record, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.record = record
        self.evalindex_sample: Sample | None = None
        # repeat number -> the answer received, kept while the item may be rerun
        self.evalindex_answers: dict[int, Any] = {}
        for name in dict.fromkeys([record.task_type, *record.tags, record.dataset]):
            self.add_marker(name)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.record.dataset}: {self.record.id}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        # the domain explains these; a traceback into the plugin would only hide it
        if isinstance(excinfo.value, (ModelError, MissedAnswer, SampleError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)
