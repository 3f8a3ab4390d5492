"""How an xdist controller hands index items to its workers: in work units.

A work unit is a run of consecutive index items that one worker runs, so that worker can
have the requests of the next items in flight while the current one is scored. Other tests
keep xdist's own scopes. Only the default ``--dist load`` is replaced; any mode chosen
explicitly is left to xdist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_evalindex.run.lookahead import lookahead_depth, plan_work_units


def make_work_unit_scheduler(
    config: Any, log: Any, *, is_index_nodeid: Callable[[str], bool], concurrency: int
) -> Any:
    """An xdist scheduler that hands out whole work units of index items (other tests keep
    xdist's per-module scopes), so each worker can look ahead inside its work units."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        unit_of: dict[str, str]

        def _reschedule(self, node: Any) -> None:
            # xdist sends the next work unit when two items are left; a worker that reads its
            # queue (WorkerQueue) can look ahead into the next work unit if it comes while a
            # look-ahead's worth of items is still pending, so the pool never drains
            super()._reschedule(node)
            low_water = lookahead_depth(concurrency, len(self.nodes))
            if (
                not node.shutting_down
                and self.workqueue
                and self._pending_of(self.assigned_work[node]) <= low_water
            ):
                self._assign_work_unit(node)

        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed:
                collection = list(next(iter(self.registered_collections.values())))
                self.unit_of = plan_work_units(
                    [n for n in collection if is_index_nodeid(n)],
                    workers=len(self.nodes),
                    concurrency=concurrency,
                )
            super().schedule()

        def _split_scope(self, nodeid: str) -> str:
            unit = getattr(self, "unit_of", {}).get(nodeid)
            return unit if unit is not None else super()._split_scope(nodeid)

    return WorkUnitScheduling(config, log)


class WorkUnitSchedulerPlugin:
    """Registered on the xdist controller only (the hooks exist only with xdist)."""

    def __init__(
        self,
        is_index_nodeid: Callable[[str], bool],
        concurrency: int,
        shared: Callable[[], dict[str, Any]],
    ) -> None:
        self.is_index_nodeid = is_index_nodeid
        self.concurrency = concurrency
        self.shared = shared

    def pytest_configure_node(self, node: Any) -> None:
        # workers run with dist "no": tell them how the controller hands out items, and
        # whatever else the whole run shares (the embedded model's address)
        node.workerinput["evalindex_dist"] = node.config.getvalue("dist")
        node.workerinput.update(self.shared())

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: Any, log: Any) -> Any:
        # only xdist's default distribution is replaced; an explicit --dist choice stands
        if config.getvalue("dist") != "load":
            return None
        return make_work_unit_scheduler(
            config, log, is_index_nodeid=self.is_index_nodeid, concurrency=self.concurrency
        )
