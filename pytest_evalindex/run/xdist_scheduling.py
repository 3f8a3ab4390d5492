"""How an xdist controller hands index items to its workers: in work units.

A work unit is a run of consecutive index items (``plan_work_units`` in ``run.lookahead``
decides them) that one worker runs, so that worker can have the requests of the unit's next
items in flight while the current one is scored. Other tests are grouped by module (or
class), as ``--dist loadscope`` does. Only the default ``--dist load`` is replaced; any mode
chosen explicitly is left to xdist.

``WorkUnitScheduling`` implements the scheduler protocol xdist documents for the
``pytest_xdist_make_scheduler`` hook, and nothing else of xdist: it subclasses none of
xdist's schedulers, and a worker is only ever called through the methods every xdist
scheduler uses (``send_runtest_some``, ``shutdown``, ``shutting_down``, ``gateway.id``,
``workerinput``).
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from pytest_evalindex.run.lookahead import lookahead_depth, work_unit_keys


class Node(Protocol):
    """What the scheduler uses of xdist's ``WorkerController``."""

    gateway: Any
    workerinput: dict[str, Any]

    @property
    def shutting_down(self) -> bool: ...

    def send_runtest_some(self, indices: Sequence[int]) -> None: ...

    def shutdown(self) -> None: ...


# a work unit as the scheduler keeps it: collection indices not yet reported, in run order
Unit = deque[int]


class WorkUnitScheduling:
    """Hands out whole work units: index items in the units of ``plan_work_units``, other
    tests one module (or class) at a time.

    Each node starts with one unit, and is sent its next unit as soon as no more than
    ``low_water`` of its items are left, which is a look-ahead's worth: the worker never
    waits for its next unit, and a unit boundary is known to it (as the item after the
    current one) before the items of the unit it is running are used up. Units go out
    largest first, so the short ones even out the end of the run.

    A node that goes down with items still pending (a crash) has the item it was running
    reported by xdist as crashed, and not run again (pytest-rerunfailures may ask for that
    through ``mark_test_pending``); the rest of its units go to the front of the queue for
    the other nodes or the replacement worker.
    """

    def __init__(
        self,
        config: pytest.Config,
        log: Callable[..., Any] | None = None,
        *,
        is_index_nodeid: Callable[[str], bool],
        concurrency: int,
        numnodes: int | None = None,
    ) -> None:
        self.config = config
        self._log = log
        self.is_index_nodeid = is_index_nodeid
        self.concurrency = concurrency
        # how many nodes collect before scheduling starts; read from the first node's
        # workerinput (the count its worker plans its work units with) unless given
        self.numnodes = numnodes
        self.collection: list[str] | None = None
        self.queue: deque[Unit] = deque()
        self.assigned: dict[Node, list[Unit]] = {}
        self.registered: dict[Node, list[str]] = {}

    # -- the protocol's properties -------------------------------------------------------

    @property
    def nodes(self) -> list[Node]:
        """The nodes that may still be given work."""
        return list(self.assigned)

    @property
    def collection_is_completed(self) -> bool:
        return self.numnodes is not None and len(self.registered) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        # a node with one item left has been told to shut down and is running it
        if not self.collection_is_completed or self.queue:
            return False
        return all(self.pending_count(node) < 2 for node in self.assigned)

    @property
    def has_pending(self) -> bool:
        return bool(self.queue) or any(self.pending_count(node) for node in self.assigned)

    @property
    def workers(self) -> int:
        return self.numnodes or 1

    @property
    def low_water(self) -> int:
        """A node is sent its next unit when this many of its items or fewer are left."""
        return max(2, lookahead_depth(self.concurrency, self.workers))

    def pending_count(self, node: Node) -> int:
        return sum(len(unit) for unit in self.assigned.get(node, ()))

    # -- nodes and their collections -----------------------------------------------------

    def add_node(self, node: Node) -> None:
        assert node not in self.assigned, node
        if self.numnodes is None:
            self.numnodes = int(node.workerinput["workercount"])
        self.assigned[node] = []

    def add_node_collection(self, node: Node, collection: Sequence[str]) -> None:
        assert node in self.assigned, node
        if self.collection is not None and list(collection) != self.collection:
            # a replacement worker that collected something else gets no work
            first = next(iter(self.registered))
            self.log(collection_difference(self.collection, collection, first, node))
            return
        self.registered[node] = list(collection)

    def remove_node(self, node: Node) -> str | None:
        """Forget ``node``; if it still had items (it crashed), return the one it was
        running, and queue the rest again."""
        units = [unit for unit in self.assigned.pop(node) if unit]
        if not units:
            return None
        assert self.collection is not None
        crashed = units[0].popleft()
        # at the front: they were due before anything still queued
        self.queue.extendleft(reversed([unit for unit in units if unit]))
        for other in self.nodes:
            self.top_up(other)
        return self.collection[crashed]

    # -- items done, or to be run again --------------------------------------------------

    def mark_test_complete(self, node: Node, item_index: int, duration: float = 0) -> None:
        units = self.assigned[node]
        for unit in units:
            if unit and unit[0] == item_index:  # the usual case: items end in order
                unit.popleft()
                break
            if item_index in unit:
                unit.remove(item_index)
                break
        self.assigned[node] = [unit for unit in units if unit]
        self.top_up(node)

    def mark_test_pending(self, item: str) -> None:
        """Run ``item`` again (pytest-rerunfailures asks this for a crashed item)."""
        assert self.collection is not None
        self.queue.appendleft(deque([self.collection.index(item)]))
        for node in self.nodes:
            self.top_up(node)

    def remove_pending_tests_from_node(self, node: Node, indices: Sequence[int]) -> None:
        """Items a node gave back (xdist's ``steal``; never sent by this scheduler)."""
        given_back = set(indices)
        kept = [deque(i for i in unit if i not in given_back) for unit in self.assigned[node]]
        self.assigned[node] = [unit for unit in kept if unit]
        self.queue.appendleft(deque(sorted(given_back)))
        for other in self.nodes:
            self.top_up(other)

    # -- handing out ---------------------------------------------------------------------

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            # a node joined later (a replacement): give it work as the others get theirs
            for node in self.nodes:
                self.top_up(node)
            return
        if not self.same_collections():
            return
        self.collection = list(next(iter(self.registered.values())))
        if not self.collection:
            return
        self.queue = deque(self.work_units(self.collection))
        # more nodes than units: the spare ones have nothing to do
        for spare in self.nodes[len(self.queue) :]:
            del self.assigned[spare]
            spare.shutdown()
        # one unit each first, so the first units spread over all nodes
        for node in self.nodes:
            if self.queue and node in self.registered:
                self.send(node, self.queue.popleft())
        # the next units for nodes already at the mark; with nothing left queued, each
        # node is told to shut down after what it has
        for node in self.nodes:
            self.top_up(node)

    def work_units(self, collection: list[str]) -> list[Unit]:
        """The collection cut into work units of collection indices, largest first."""
        unit_of = work_unit_keys(
            collection, self.is_index_nodeid, workers=self.workers, concurrency=self.concurrency
        )
        units: dict[str, Unit] = {}
        for index, nodeid in enumerate(collection):
            units.setdefault(unit_of[nodeid], deque()).append(index)
        # sorted() is stable: units of the same size keep collection order
        return sorted(units.values(), key=len, reverse=True)

    def top_up(self, node: Node) -> None:
        """Send ``node`` its next units while it has no more than ``low_water`` items left;
        tell it to shut down once nothing is queued."""
        if node.shutting_down or node not in self.registered:
            return
        if not self.queue:
            node.shutdown()  # after the items it has; sent once (shutting_down from now on)
            return
        while self.queue and self.pending_count(node) <= self.low_water:
            self.send(node, self.queue.popleft())

    def send(self, node: Node, unit: Unit) -> None:
        self.assigned[node].append(unit)
        node.send_runtest_some(list(unit))
        units_file = node.workerinput.get("evalindex_units_file")
        if units_file:
            # the worker reads what it was sent, to look ahead into its next unit before
            # the current one ends (nothing of xdist's own state says so)
            with open(units_file, "a", encoding="utf-8") as out:
                out.write(" ".join(map(str, unit)) + "\n")

    # -- collections that differ ---------------------------------------------------------

    def same_collections(self) -> bool:
        """True when every node collected the same items; otherwise each difference is
        reported as a failed collection, as xdist's own schedulers do."""
        (first, reference), *others = self.registered.items()
        same = True
        for node, collection in others:
            if collection == reference:
                continue
            same = False
            message = collection_difference(reference, collection, first, node)
            self.log(message)
            report = pytest.CollectReport(
                nodeid=str(node.gateway.id), outcome="failed", longrepr=message, result=[]
            )
            self.config.hook.pytest_collectreport(report=report)
        return same

    def log(self, *args: Any) -> None:
        if self._log is not None:
            self._log("evalindex scheduling:", *args)


def collection_difference(
    expected: Sequence[str], got: Sequence[str], first: Node, other: Node
) -> str:
    """A readable diff of two workers' collections."""
    first_id, other_id = first.gateway.id, other.gateway.id
    diff = difflib.unified_diff(
        list(expected), list(got), fromfile=str(first_id), tofile=str(other_id), lineterm=""
    )
    return (
        f"Workers {first_id} and {other_id} collected different tests, so none are run.\n"
        "Often the cause is an unordered collection (a set) or a parametrization that is "
        "not the same in each process.\n" + "\n".join(diff)
    )


def make_work_unit_scheduler(
    config: pytest.Config,
    log: Callable[..., Any] | None,
    *,
    is_index_nodeid: Callable[[str], bool],
    concurrency: int,
) -> WorkUnitScheduling:
    return WorkUnitScheduling(config, log, is_index_nodeid=is_index_nodeid, concurrency=concurrency)


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
        self.units_dir: Path | None = None  # a file a worker of the units it was sent

    def pytest_configure_node(self, node: Any) -> None:
        # workers run with dist "no": tell them how the controller hands out items (under
        # "load" each worker plans the same work units from its own collection), and
        # whatever else the whole run shares (the embedded model's address)
        node.workerinput["evalindex_dist"] = node.config.getvalue("dist")
        node.workerinput.update(self.shared())
        if self.units_dir is None:
            self.units_dir = Path(tempfile.mkdtemp(prefix="evalindex-units-"))
        units_file = self.units_dir / f"{node.gateway.id}-{len(os.listdir(self.units_dir))}"
        units_file.touch()
        node.workerinput["evalindex_units_file"] = str(units_file)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.units_dir is not None:
            shutil.rmtree(self.units_dir, ignore_errors=True)
            self.units_dir = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        # only xdist's default distribution is replaced; an explicit --dist choice stands
        if config.getvalue("dist") != "load":
            return None
        return make_work_unit_scheduler(
            config, log, is_index_nodeid=self.is_index_nodeid, concurrency=self.concurrency
        )
