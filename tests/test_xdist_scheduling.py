"""The xdist scheduler that hands out work units, driven directly with nodes that record
what they are sent (the way pytest-xdist tests its own schedulers), plus one real run
under the oldest pytest-xdist pyproject.toml allows."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.run.lookahead import lookahead_depth, plan_work_units, work_unit_keys
from pytest_evalindex.run.xdist_scheduling import WorkUnitScheduling

ROOT = Path(__file__).resolve().parents[1]


class RecordingGateway:
    def __init__(self, gateway_id: str) -> None:
        self.id = gateway_id


class RecordingNode:
    """Stands in for xdist's WorkerController: keeps every batch it is sent."""

    def __init__(self, gateway_id: str, workercount: int) -> None:
        self.gateway = RecordingGateway(gateway_id)
        self.workerinput: dict[str, Any] = {"workercount": workercount}
        self.batches: list[list[int]] = []
        self.down = False

    @property
    def sent(self) -> list[int]:
        return [i for batch in self.batches for i in batch]

    @property
    def shutting_down(self) -> bool:
        return self.down

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        assert not self.down, "work sent after shutdown"
        self.batches.append(list(indices))

    def shutdown(self) -> None:
        # a second call would send the worker a second shutdown command
        assert not self.down, "shut down twice"
        self.down = True

    def __repr__(self) -> str:
        return f"<node {self.gateway.id}>"


class Hooks:
    def __init__(self) -> None:
        self.reports: list[pytest.CollectReport] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.reports.append(report)


class Config:
    """What the scheduler uses of pytest's config: its hooks."""

    def __init__(self) -> None:
        self.hook = Hooks()


def index_ids(n: int, dataset: str = "qa") -> list[str]:
    return [f"index.yaml::{dataset}::r{i}" for i in range(n)]


def is_index(nodeid: str) -> bool:
    return nodeid.startswith("index.yaml::")


def started(
    collection: list[str], workers: int, *, concurrency: int = 4, units_dir: Path | None = None
) -> tuple[WorkUnitScheduling, list[RecordingNode], Config]:
    """A scheduler with every node collected and scheduled; with ``units_dir`` each node is
    given a file for the units it is sent, as the plugin's pytest_configure_node does."""
    config = Config()
    sched = WorkUnitScheduling(
        config,  # type: ignore[arg-type]
        is_index_nodeid=is_index,
        concurrency=concurrency,
    )
    nodes = [RecordingNode(f"gw{i}", workers) for i in range(workers)]
    for node in nodes:
        if units_dir is not None:
            node.workerinput["evalindex_units_file"] = str(units_dir / node.gateway.id)
        sched.add_node(node)
    for node in nodes:
        assert not sched.collection_is_completed
        sched.add_node_collection(node, collection)
    assert sched.collection_is_completed
    sched.schedule()
    return sched, nodes, config


def complete_next(sched: WorkUnitScheduling, node: RecordingNode, done: list[int]) -> int:
    """The node reports the first item it was sent and has not reported yet."""
    index = next(i for i in node.sent if i not in done)
    done.append(index)
    sched.mark_test_complete(node, index)
    return index


def run_to_the_end(sched: WorkUnitScheduling, nodes: list[RecordingNode]) -> dict[int, str]:
    """Nodes report items in turn until every sent item is reported; returns which node
    ran each collection index."""
    done: dict[RecordingNode, list[int]] = {node: [] for node in nodes}
    ran: dict[int, str] = {}
    while True:
        busy = [n for n in nodes if n in sched.nodes and len(done[n]) < len(n.sent)]
        if not busy:
            break
        for node in busy:
            index = complete_next(sched, node, done[node])
            assert index not in ran, f"{index} ran twice"
            ran[index] = node.gateway.id
    return ran


def planned_units(collection: list[str], workers: int, concurrency: int) -> list[list[int]]:
    plan = plan_work_units(
        [n for n in collection if is_index(n)], workers=workers, concurrency=concurrency
    )
    units: dict[str, list[int]] = {}
    for index, nodeid in enumerate(collection):
        if nodeid in plan:
            units.setdefault(plan[nodeid], []).append(index)
    return list(units.values())


# --------------------------------------------------------------------------- work units


@pytest.mark.parametrize("workers", [2, 3])
def test_each_work_unit_is_sent_whole_to_one_node(workers: int) -> None:
    collection = index_ids(60)
    sched, nodes, _ = started(collection, workers)
    ran = run_to_the_end(sched, nodes)
    assert sorted(ran) == list(range(60))
    units = planned_units(collection, workers, concurrency=4)
    assert len(units) > workers  # several units a node, or nothing is being checked
    batches = sorted(batch for node in nodes for batch in node.batches)
    assert batches == sorted(units)
    for unit in units:
        assert len({ran[i] for i in unit}) == 1, f"unit {unit} was split"
    # every node took part, and the run is over
    assert all(node.batches for node in nodes)
    assert sched.tests_finished
    assert not sched.has_pending
    assert all(node.shutting_down for node in nodes)


@pytest.mark.parametrize("workers", [2, 3])
def test_other_tests_keep_module_and_class_scopes(workers: int) -> None:
    others = [
        "tests/test_a.py::test_one",
        "tests/test_a.py::test_two",
        "tests/test_a.py::test_three",
        "tests/test_b.py::TestThing::test_one",
        "tests/test_b.py::TestThing::test_two",
        "tests/test_b.py::test_free",
    ]
    collection = [*others[:3], *index_ids(24), *others[3:]]
    sched, nodes, _ = started(collection, workers)
    ran = run_to_the_end(sched, nodes)
    assert sorted(ran) == list(range(len(collection)))
    batches = [batch for node in nodes for batch in node.batches]
    scope_batches = [
        [collection[i] for i in batch] for batch in batches if not is_index(collection[batch[0]])
    ]
    assert sorted(scope_batches) == sorted([others[:3], others[3:5], others[5:]])
    # no batch mixes index items with other tests
    for batch in batches:
        assert len({is_index(collection[i]) for i in batch}) == 1


def test_workers_group_items_as_the_scheduler_hands_them_out() -> None:
    # index items whose file lies outside the rootdir have node ids without a path, which
    # the controller cannot tell from other tests: whatever it decides, each worker, which
    # groups its items by work_unit_keys, must expect exactly the units it is sent
    collection = [
        *index_ids(12),
        *(f"::facts::facts/f{i}" for i in range(7)),
        "tests/test_a.py::test_one",
        "tests/test_a.py::test_two",
    ]
    sched, nodes, _ = started(collection, 2, concurrency=2)
    run_to_the_end(sched, nodes)
    keys = work_unit_keys(collection, is_index, workers=2, concurrency=2)
    expected: dict[str, list[int]] = {}
    for index, nodeid in enumerate(collection):
        expected.setdefault(keys[nodeid], []).append(index)
    batches = sorted(batch for node in nodes for batch in node.batches)
    assert batches == sorted(expected.values())
    assert list(range(12, 19)) in batches  # the path-less items went out as one scope


def test_units_go_out_largest_first_and_spread_over_the_nodes() -> None:
    # 3 modules of 1, 2, 3 tests and no index: the biggest goes first
    collection = ["t1.py::a", "t2.py::a", "t2.py::b", "t3.py::a", "t3.py::b", "t3.py::c"]
    sched, nodes, _ = started(collection, 3)
    assert not sched.queue
    assert [node.batches for node in nodes] == [[[3, 4, 5]], [[1, 2]], [[0]]]
    assert all(node.shutting_down for node in nodes)  # everything is out


# --------------------------------------------------------------------------- low water


def test_next_unit_is_sent_when_a_look_ahead_of_items_is_left() -> None:
    # 2 workers, concurrency 4: depth 4, and units of max(4, 80 / 8) = 10 items
    collection = index_ids(80)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    low_water = lookahead_depth(4, 2)
    assert sched.low_water == low_water == 4
    node = nodes[0]
    assert node.batches == [list(range(10))]
    done: list[int] = []
    for _ in range(10 - low_water - 1):
        complete_next(sched, node, done)
        assert len(node.batches) == 1, "sent before the low-water mark"
    complete_next(sched, node, done)  # low_water items are left now
    assert len(node.batches) == 2
    assert len(node.batches[1]) == 10
    # the other node was not touched meanwhile
    assert nodes[1].batches == [list(range(10, 20))]


def test_a_first_unit_no_bigger_than_the_mark_is_followed_at_once() -> None:
    # 3 workers, concurrency 2: depth 2, units of 2, so each node starts with two units
    sched, nodes, _ = started(index_ids(12), 3, concurrency=2)
    assert sched.low_water == 2
    assert [node.batches for node in nodes] == [
        [[0, 1], [6, 7]],
        [[2, 3], [8, 9]],
        [[4, 5], [10, 11]],
    ]
    collection = index_ids(8)
    sched, nodes, _ = started(collection, 2, concurrency=1)
    # depth 2, units of 2: a node with 2 left is at the mark and gets a second unit
    assert [node.batches for node in nodes] == [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]


# --------------------------------------------------------------------------- nodes going down


def test_a_crashed_node_has_its_item_reported_and_the_rest_queued_first() -> None:
    collection = index_ids(80)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    crashing, other = nodes
    done: list[int] = []
    for _ in range(3):
        complete_next(sched, crashing, done)
    assert crashing.sent == list(range(10))
    # it dies running item 3
    assert sched.remove_node(crashing) == collection[3]
    assert crashing not in sched.nodes
    # the rest of its unit is next in line, before the units nobody had
    assert list(sched.queue[0]) == list(range(4, 10))
    replacement = RecordingNode("gw2", 2)
    sched.add_node(replacement)
    sched.add_node_collection(replacement, collection)
    sched.schedule()
    assert replacement.batches[0] == list(range(4, 10))
    ran = run_to_the_end(sched, [other, replacement])
    # the crashed item is not run again; everything else runs once
    assert sorted([*done, *ran]) == [i for i in range(80) if i != 3]
    assert sched.tests_finished


def test_a_crashed_item_runs_again_when_asked() -> None:
    # pytest-rerunfailures asks through mark_test_pending from pytest_handlecrashitem
    collection = index_ids(40)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    crashing, other = nodes
    crashed = sched.remove_node(crashing)
    assert crashed == collection[0]
    sched.mark_test_pending(crashed)
    assert list(sched.queue[0]) == [0]
    ran = run_to_the_end(sched, [other])
    assert sorted(ran) == list(range(40))
    assert sched.tests_finished


def test_a_node_that_finished_cleanly_reports_no_crash() -> None:
    collection = index_ids(8)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    run_to_the_end(sched, nodes)
    assert [sched.remove_node(node) for node in nodes] == [None, None]
    assert sched.nodes == []
    assert sched.tests_finished


def test_nodes_beyond_the_number_of_units_are_shut_down() -> None:
    collection = ["only.py::test_one", "only.py::test_two"]
    sched, nodes, _ = started(collection, 3)
    assert nodes[0].batches == [[0, 1]]
    assert [n.batches for n in nodes[1:]] == [[], []]
    assert all(node.shutting_down for node in nodes)
    assert sched.nodes == [nodes[0]]


def test_items_given_back_are_queued_again() -> None:
    collection = index_ids(40)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    # units of 5; the node gives back the last two of its first unit
    assert nodes[0].batches == [[0, 1, 2, 3, 4]]
    nodes[0].batches[0] = [0, 1, 2]  # the worker took them out of its queue
    sched.remove_pending_tests_from_node(nodes[0], [3, 4])
    # three left, under the mark: what was given back is the first thing sent again
    assert nodes[0].batches == [[0, 1, 2], [3, 4]]
    assert sched.pending_count(nodes[0]) == 5
    ran = run_to_the_end(sched, nodes)
    assert sorted(ran) == list(range(40))


# --------------------------------------------------------------------------- finishing


def test_tests_finished_only_when_every_node_is_on_its_last_item() -> None:
    collection = index_ids(16)
    sched, nodes, _ = started(collection, 2, concurrency=4)
    assert not sched.tests_finished
    assert sched.has_pending
    done: dict[RecordingNode, list[int]] = {node: [] for node in nodes}
    while True:
        busy = [n for n in nodes if len(done[n]) < len(n.sent)]
        if not busy:
            break
        # xdist shuts down once each node is running its last item
        assert sched.tests_finished == all(len(n.sent) - len(done[n]) < 2 for n in nodes)
        complete_next(sched, busy[0], done[busy[0]])
    assert sched.tests_finished
    assert not sched.has_pending


def test_nothing_is_finished_before_every_node_collected() -> None:
    config = Config()
    sched = WorkUnitScheduling(
        config,  # type: ignore[arg-type]
        is_index_nodeid=is_index,
        concurrency=4,
    )
    first, second = RecordingNode("gw0", 2), RecordingNode("gw1", 2)
    sched.add_node(first)
    sched.add_node(second)
    sched.add_node_collection(first, index_ids(4))
    assert not sched.collection_is_completed
    assert not sched.tests_finished


def test_different_collections_are_reported_and_nothing_runs() -> None:
    config = Config()
    sched = WorkUnitScheduling(
        config,  # type: ignore[arg-type]
        is_index_nodeid=is_index,
        concurrency=4,
    )
    first, second = RecordingNode("gw0", 2), RecordingNode("gw1", 2)
    sched.add_node(first)
    sched.add_node(second)
    sched.add_node_collection(first, index_ids(4))
    sched.add_node_collection(second, [*index_ids(3), "index.yaml::qa::other"])
    sched.schedule()
    (report,) = config.hook.reports
    assert report.failed
    assert "gw0 and gw1 collected different tests" in str(report.longrepr)
    assert "+index.yaml::qa::other" in str(report.longrepr)
    assert first.batches == second.batches == []
    assert sched.tests_finished


# --------------------------------------------------------------------------- the look-ahead

LOOK_AHEAD_SPEC = """
name: ahead
sampler: uniform
count: 40
datasets:
  - name: echo
    adapter: general_qa
    source: rows.jsonl
    fields: {id: id, input: q, target: a}
    scorer: exact_match
"""

# when each item's call starts; each call then lingers, so requests handed over during it
# have reached the server well before the next item starts
CALL_TIMES = """
import json, os, time
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "serial")
    with open(f"calls-{worker}.jsonl", "a") as out:
        out.write(json.dumps([item.nodeid, time.monotonic()]) + "\\n")
    try:
        return (yield)
    finally:
        time.sleep(0.1)
"""


def run_with_call_times(
    pytester: pytest.Pytester, *mode: str
) -> tuple[dict[str, float], list[list[tuple[str, float]]]]:
    """Run the 40-record look-ahead index at concurrency 4 with the CALL_TIMES conftest:
    when each record's request reached the server, and each process's item starts."""
    from helpers import assert_outcomes

    from pytest_evalindex.testing import FakeOpenAI

    pytester.makefile(".yaml", ahead=LOOK_AHEAD_SPEC)
    rows = [json.dumps({"id": f"r{i}", "q": f"question {i}", "a": f"A{i}"}) for i in range(40)]
    (pytester.path / "rows.jsonl").write_text("\n".join(rows) + "\n")
    pytester.makeconftest(CALL_TIMES)

    def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return "A" + messages[-1]["content"].split()[-1]

    with FakeOpenAI(responder=answer) as fake:
        result = pytester.runpytest(
            "--index", "ahead.yaml", "--index-base-url", fake.base_url, "--index-model", "m",
            "--index-no-cache", "--index-concurrency", "4", *mode,
        )  # fmt: skip
        asked = {
            "r" + r.json["messages"][-1]["content"].split()[-1]: r.received_at
            for r in fake.requests
            if r.json
        }
    assert_outcomes(result, passed=40)
    assert len(asked) == 40
    calls = [
        [(str(n), float(t)) for n, t in map(json.loads, path.read_text().split("\n")[:-1])]
        for path in pytester.path.glob("calls-*.jsonl")
    ]
    return asked, calls


def test_each_item_was_asked_before_it_started_also_across_work_units(
    pytester: pytest.Pytester, run_mode: list[str]
) -> None:
    asked, calls = run_with_call_times(pytester, *run_mode)
    assert len(calls) == (2 if run_mode else 1)
    # -n 2 with concurrency 4: units of 5 records, so each worker crosses unit boundaries
    starts = 0
    for process_calls in calls:
        for nodeid, started_at in process_calls[1:]:
            record = nodeid.rsplit("/", 1)[1]
            assert asked[record] < started_at, f"{nodeid} was asked only when it started"
            starts += 1
    assert starts == 40 - len(calls)


def test_a_worker_looks_ahead_into_its_next_unit_before_the_current_one_ends(
    pytester: pytest.Pytester,
) -> None:
    """The controller writes each unit it sends to a file the worker reads, so the first
    request of a worker's next unit is out before the last item of its current unit starts:
    the requests in flight do not drain at the boundary."""
    asked, calls = run_with_call_times(pytester, "-n", "2")
    unit_of = plan_work_units(
        [f"ahead.yaml::echo::echo/r{i}" for i in range(40)], workers=2, concurrency=4
    )
    boundaries = 0
    for process_calls in calls:
        for (last, last_started), (first, _) in itertools.pairwise(process_calls):
            if unit_of[last] == unit_of[first]:
                continue
            boundaries += 1
            record = first.rsplit("/", 1)[1]
            assert asked[record] < last_started, f"{first} was asked only at the boundary"
    assert boundaries >= 4  # units of 5 records: each worker crosses several


def test_each_unit_sent_is_written_for_the_worker_that_runs_it(tmp_path: Path) -> None:
    sched, nodes, _ = started(index_ids(40), 2, units_dir=tmp_path)
    run_to_the_end(sched, nodes)  # the top-ups are written too
    for node in nodes:
        written = (tmp_path / node.gateway.id).read_text().splitlines()
        assert [[int(i) for i in line.split()] for line in written] == node.batches
        assert len(node.batches) >= 2


# --------------------------------------------------------------------------- the floor

FLOOR_SPEC = """
name: floor
sampler: uniform
count: 24
datasets:
  - name: qa
    adapter: general_qa
    source: rows.jsonl
    fields: {id: id, input: q, target: a}
    scorer: exact_match
"""

# an inner conftest that writes down which worker ran which item, in order
RECORDER = """
import json, os

def pytest_runtest_setup(item):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "serial")
    with open(f"ran-{worker}.jsonl", "a") as out:
        out.write(json.dumps(item.nodeid) + "\\n")
"""


def xdist_floor() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    line = next(line for line in text.splitlines() if '"pytest-xdist>=' in line)
    return line.split(">=")[1].split('"')[0]


def install_xdist_floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest-xdist at the floor pyproject.toml sets, installed into a folder of its own
    (from the package index pip is configured with)."""
    version = xdist_floor()
    target = tmp_path_factory.mktemp("xdist-floor")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         f"pytest-xdist=={version}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "xdist").is_dir()
    return target


def run_index_with_xdist(project: Path, pythonpath: list[Path], out: str) -> dict[str, Any]:
    from pytest_evalindex.testing import FakeOpenAI

    for old in project.glob("ran-*.jsonl"):
        old.unlink()

    def answer(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        number = int(messages[-1]["content"].split()[-1])
        return f"A{number}" if number % 4 else "wrong"

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    env.pop("PYTEST_XDIST_WORKER", None)  # this test may itself run on a worker
    env["PYTEST_ADDOPTS"] = "-p no:randomly -p no:cacheprovider"
    with FakeOpenAI(responder=answer) as fake:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-n", "2", "--index", "floor.yaml",
             "--index-base-url", fake.base_url, "--index-model", "m", "--index-no-cache",
             "--index-concurrency", "4", "--index-json", out,
             "-p", "no:rerunfailures", "-p", "no:timeout"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        requests = len(fake.requests)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    ran = {
        path.stem.removeprefix("ran-"): [json.loads(line) for line in path.read_text().split()]
        for path in project.glob("ran-*.jsonl")
    }
    version = subprocess.run(
        [sys.executable, "-c", "import xdist; print(xdist.__version__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    results = json.loads((project / out).read_text())
    return {"ran": ran, "results": results, "requests": requests, "xdist": version}


@pytest.mark.parametrize("xdist_version", ["oldest allowed", "installed"])
def test_an_index_runs_in_whole_work_units_under_each_xdist(
    xdist_version: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import xdist

    (tmp_path / "floor.yaml").write_text(FLOOR_SPEC)
    rows = [json.dumps({"id": f"r{i}", "q": f"question {i}", "a": f"A{i}"}) for i in range(24)]
    (tmp_path / "rows.jsonl").write_text("\n".join(rows) + "\n")
    (tmp_path / "conftest.py").write_text(RECORDER)
    if xdist_version == "installed":
        run = run_index_with_xdist(tmp_path, [ROOT], "out.json")
        assert run["xdist"] == xdist.__version__
    else:
        floor = install_xdist_floor(tmp_path_factory)
        run = run_index_with_xdist(tmp_path, [floor, ROOT], "out.json")
        assert run["xdist"] == xdist_floor()

    # 2 workers, concurrency 4: units of max(4, 24 / 8) = 4 consecutive records
    nodeids = [f"floor.yaml::qa::qa/r{i}" for i in range(24)]
    unit_of = plan_work_units(nodeids, workers=2, concurrency=4)
    assert len(set(unit_of.values())) == 6
    assert sorted(run["ran"]) == ["gw0", "gw1"]
    assert sorted(n for ran in run["ran"].values() for n in ran) == sorted(nodeids)
    for ran in run["ran"].values():
        # a worker that ran any item of a unit ran all of it, in order
        for unit in {unit_of[n] for n in ran}:
            members = [n for n in ran if unit_of[n] == unit]
            assert members == [n for n in nodeids if unit_of[n] == unit]
    assert run["requests"] == 24  # never a record asked twice
    assert run["results"]["index"]["count"] == 24
    assert run["results"]["index"]["errors"] == 0
    # the same results under either version: every fourth answer is wrong
    scores = sorted((s["id"], s["score"]) for s in run["results"]["samples"])
    assert scores == sorted((f"qa/r{i}", 1.0 if i % 4 else 0.0) for i in range(24))
