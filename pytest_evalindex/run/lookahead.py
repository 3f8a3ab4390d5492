"""Requests in flight ahead of the items: the look-ahead that makes concurrency independent
of the number of pytest processes.

Each process knows which items it will run (serially: all of them; under xdist: whole work
units, handed out by the scheduler of ``pytest_evalindex.run.xdist_scheduling`` so one worker
owns every item of a unit, and planned by each worker from its own collection). While item
*i* runs, the requests of the next items of the same unit are already in flight, up to the
process's share of ``--index-concurrency``; pytest's ``nextitem`` says when the worker
moves on to another unit, and the look-ahead follows. Nothing of xdist's own state is read.
Every answer goes to the response cache the moment it arrives, so a record's request is never
sent twice, not even across a crash. Answers whose scorer works outside this interpreter are
scored ahead, in background threads, as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import threading
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.items import IndexItem
from pytest_evalindex.results.schema import Prices
from pytest_evalindex.run.budget import Meter, keeping_judge_calls, note_judge_call, score_kept
from pytest_evalindex.run.cache import ResponseCache, cache_key
from pytest_evalindex.run.client import ChatClient, ModelAnswer
from pytest_evalindex.run.threads import DaemonPool
from pytest_evalindex.testset.records import Record


def per_process_concurrency(concurrency: int, workers: int) -> int:
    return max(1, math.ceil(concurrency / max(1, workers)))


def lookahead_depth(concurrency: int, workers: int) -> int:
    """How many items ahead of the running one a process hands requests to its pool:
    twice what may be in flight (the pool caps that), so answers waiting to be scored
    never leave the pool idle."""
    return 2 * per_process_concurrency(concurrency, workers)


def work_unit_size(n_items: int, workers: int, concurrency: int) -> int:
    """Items per work unit: deep enough to keep a worker's share of requests in flight,
    small enough to leave about four units a worker so the load stays balanced."""
    depth = lookahead_depth(concurrency, workers)
    return max(1, depth, math.ceil(n_items / (4 * max(1, workers))))


def score_ahead_threads(workers: int) -> int:
    """Scoring threads per process: its share of the cores (at least one). Each keeps one
    math-verify helper or sandbox busy; more than the cores only adds processes to start
    and switch between (measured on 2 cores with -n 2: two threads a process were slower
    than one)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class ScoreAhead:
    """Scores answers as they arrive, in background threads; the item's call collects them.

    ``scorer_for(record)`` gives the scorer to run ahead, or None to leave the record to its
    item. Scorers that wait on a sandbox or a helper process get ``threads`` (a share of the
    cores); those that wait on requests (``ScorerTraits.waits_on_requests``: the judge) get
    ``request_threads``, as many as the requests the process may have in flight, since each
    only waits on the event loop. A result is used only for the answer it was computed from;
    the item's call sees the same Score, or the same ScorerError, that scoring in the call
    would have given.
    """

    def __init__(
        self,
        scorer_for: Callable[[Record], Callable[[str, Record], Any] | None],
        *,
        threads: int,
        request_threads: int = 1,
    ) -> None:
        self.scorer_for = scorer_for
        self._pool = DaemonPool(threads, name="evalindex-score")
        self._request_pool = DaemonPool(request_threads, name="evalindex-score-requests")
        self._scores: dict[tuple[str, int], tuple[str, Future[Any]]] = {}
        self._lock = threading.Lock()

    def start(self, record: Record, repeat: int, answer: ModelAnswer) -> None:
        scorer = self.scorer_for(record)
        if scorer is None:
            return
        traits = getattr(scorer, "traits", None)
        pool = self._request_pool if getattr(traits, "waits_on_requests", False) else self._pool
        try:
            future = pool.submit(keeping_judge_calls, scorer, answer.content, record)
        except RuntimeError:  # shut down: the run is over
            return
        with self._lock:
            self._scores[(record.id, repeat)] = (answer.content, future)

    def take(self, record: Record, repeat: int, content: str) -> Any | None:
        """The score computed ahead for this answer (raising what the scorer raised), or
        None when there is none and the caller should score it itself."""
        with self._lock:
            entry = self._scores.pop((record.id, repeat), None)
        if entry is None or entry[0] != content:
            return None
        try:
            return score_kept(entry[1])
        except CancelledError:
            return None

    def close(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._request_pool.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            self._scores.clear()


def cached_chat(
    client: ChatClient,
    cache: ResponseCache | None,
    messages: list[dict[str, Any]],
    repeat: int,
    meter: Meter | None = None,
) -> ModelAnswer:
    """The stored answer to these messages, else the client's, stored as it arrives; with
    a ``meter`` (``--index-budget``) a request is sent only when the budget has room."""
    chat = client.chat if meter is None else functools.partial(meter.chat, client)
    if cache is None:
        return chat(messages)
    key = cache_key(
        base_url=client.base_url,
        model=client.model,
        messages=messages,
        generation=client.generation,
        repeat=repeat,
    )
    stored = cache.get(key)
    if stored is not None:
        return ModelAnswer.from_dict(stored, cached=True)
    answer = chat(messages)
    cache.put(key, answer.to_dict())
    return answer


class Requester:
    """Answers records through the model client, from the cache when it can, keeping up to
    the client's limit of requests in flight on the event loop (and, with ``score_ahead``,
    starting to score each answer the moment it arrives).

    The cache is read in the thread that asks (an answer found there never touches the
    loop); a request is a coroutine on the loop, and its answer is stored there the moment
    it arrives."""

    def __init__(
        self,
        client: ChatClient,
        *,
        cache: ResponseCache | None,
        score_ahead: ScoreAhead | None = None,
        meter: Meter | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.score_ahead = score_ahead
        self.meter = meter
        self._futures: dict[tuple[str, int], Future[ModelAnswer]] = {}
        self._tasks: set[asyncio.Task[ModelAnswer]] = set()  # on the loop, while running
        self._lock = threading.Lock()
        self._stopped = False

    def _cache_key(self, messages: list[dict[str, Any]], repeat: int) -> str:
        client = self.client
        return cache_key(
            base_url=client.base_url,
            model=client.model,
            messages=messages,
            generation=client.generation,
            repeat=repeat,
        )

    async def _fetch(
        self, record: Record, repeat: int, messages: list[dict[str, Any]], key: str | None
    ) -> ModelAnswer:
        if self.meter is None:
            answer = await self.client.achat(messages)
        else:
            answer = await self.meter.achat(self.client, messages)
        if self.cache is not None and key is not None:
            self.cache.put(key, answer.to_dict())
        if self.score_ahead is not None:
            self.score_ahead.start(record, repeat, answer)
        return answer

    def submit(self, record: Record, repeat: int = 0) -> None:
        self.prefetch([(record, repeat)])

    def prefetch(self, pending: Iterable[tuple[Record, int]]) -> None:
        """Ask for these answers: those in the cache are taken at once, the others start
        on the loop together."""
        to_send: list[tuple[tuple[str, int], Coroutine[Any, Any, ModelAnswer]]] = []
        with self._lock:
            if self._stopped:
                raise RuntimeError("cannot ask after the run was stopped")
            for record, repeat in pending:
                if (record.id, repeat) in self._futures:
                    continue
                messages = [m.model_dump() for m in record.input]
                key = self._cache_key(messages, repeat) if self.cache is not None else None
                stored = self.cache.get(key) if self.cache is not None and key else None
                if stored is None:
                    coroutine = self._fetch(record, repeat, messages, key)
                    to_send.append(((record.id, repeat), coroutine))
                    continue
                future: Future[ModelAnswer] = Future()
                answer = ModelAnswer.from_dict(stored, cached=True)
                future.set_result(answer)
                self._futures[(record.id, repeat)] = future
                if self.score_ahead is not None:
                    self.score_ahead.start(record, repeat, answer)
            if to_send:
                started = self.client.loop.start_all([c for _, c in to_send], self._tasks)
                for (asked, _), future in zip(to_send, started, strict=True):
                    self._futures[asked] = future

    def answer(self, record: Record, repeat: int = 0) -> ModelAnswer:
        self.submit(record, repeat)
        with self._lock:
            future = self._futures[(record.id, repeat)]
        try:
            return future.result()
        finally:
            # a wait cut short (pytest-timeout) leaves the request in flight: a rerun of
            # the item waits for it instead of asking again
            if future.done():
                with self._lock:
                    self._futures.pop((record.id, repeat), None)

    def close(self, *, wait: bool = True) -> None:
        """Close the client and the cache. Requests not yet sent are dropped; with ``wait``
        those in flight finish first (and are cached); without, they are cut off (the run
        was interrupted and is over: every answer that arrived is in the cache)."""
        with self._lock:
            futures = list(self._futures.values())
        if wait:
            # asked ahead but never needed (-x, a stop): not sent; those on the wire finish
            self.client.pool.stop("not asked: the run ended")
            for future in futures:
                # a failure was its item's to report, or nobody asked for it
                with contextlib.suppress(BaseException):
                    future.result()
        else:
            self.abandon()
            self.client.loop.cancel_all(self._tasks)
        if self.score_ahead is not None:
            self.score_ahead.close(wait=wait)
        self.client.close()
        if self.cache is not None:
            self.cache.close()

    def abandon(self) -> None:
        """Stop at once (the run was interrupted): requests not yet sent are dropped, those
        in flight are left to finish or to die with the process. The client and the cache
        stay open for them; each answer that still arrives is cached as usual."""
        with self._lock:
            self._stopped = True
        self.client.pool.stop("not asked: the run was interrupted")
        if self.score_ahead is not None:
            self.score_ahead.close(wait=False)


class DefaultModel:
    """The plugin's own ``model`` fixture value: ``model(record) -> ModelAnswer``."""

    def __init__(self, requester: Requester) -> None:
        self.requester = requester

    def __call__(self, record: Record, repeat: int = 0) -> ModelAnswer:
        return self.requester.answer(record, repeat)

    def prefetch(self, pending: Iterable[tuple[Record, int]]) -> None:
        self.requester.prefetch(pending)


class JudgeModel:
    """``judge_model(messages) -> str`` for judge scorers: its own endpoint, the same
    retries, and the same cache (so a rerun never pays for a verdict twice)."""

    def __init__(
        self,
        make_client: Callable[[], ChatClient],
        cache_dir: Any | None,
        *,
        pricing: Prices | None = None,
        generation: dict[str, Any] | None = None,
        meter: Meter | None = None,
    ) -> None:
        self._make_client = make_client
        self._cache_dir = cache_dir
        self.pricing = pricing  # judge.pricing: its verdicts are priced apart
        self.generation = dict(generation or {})
        self.meter = meter
        self._client: ChatClient | None = None
        self._cache: ResponseCache | None = None
        self._lock = threading.Lock()

    def _ready(self) -> tuple[ChatClient, ResponseCache | None]:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
                if self._cache_dir is not None:
                    self._cache = ResponseCache(self._cache_dir)
            return self._client, self._cache

    def __call__(self, messages: list[dict[str, str]]) -> str:
        client, cache = self._ready()
        # repeat -1 never collides with an answer of the model under test
        answer = cached_chat(client, cache, messages, -1, self.meter)
        note_judge_call(answer, self.pricing)
        return answer.content

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cache is not None:
            self._cache.close()


def plan_work_units(nodeids: list[str], *, workers: int, concurrency: int) -> dict[str, str]:
    """Node id → work unit name, consecutive runs of ``work_unit_size`` items in collection
    order. Workers compute the same plan from the same collection."""
    size = work_unit_size(len(nodeids), workers, concurrency)
    return {nodeid: f"evalindex-unit-{i // size}" for i, nodeid in enumerate(nodeids)}


def work_unit_keys(
    collection: list[str],
    is_index_nodeid: Callable[[str], bool],
    *,
    workers: int,
    concurrency: int,
) -> dict[str, str]:
    """Node id → the work unit it goes out in under ``--dist load``, for the whole
    collection: index items by ``plan_work_units``, other tests by module or class (as
    ``--dist loadscope`` groups them). The controller's scheduler hands out these units and
    each worker computes the same from its own collection, which xdist has checked to be
    the controller's, so both agree whatever ``is_index_nodeid`` says."""
    plan = plan_work_units(
        [nodeid for nodeid in collection if is_index_nodeid(nodeid)],
        workers=workers,
        concurrency=concurrency,
    )
    return {
        nodeid: plan.get(nodeid) or "scope " + nodeid.rsplit("::", 1)[0] for nodeid in collection
    }


class LookAheadPlan:
    """Which items this process runs after each one, and how far requests were handed over.

    ``dist`` is how xdist hands out items ("no" on a serial run): under ``load`` the
    scheduler gives whole work units, under ``loadscope``/``loadfile`` a dataset or a file
    goes to one worker; under other modes nothing says which worker runs what, so an item
    looks ahead only at itself and the item after it.

    The item after the current one is what pytest passes to ``pytest_runtest_protocol`` as
    ``nextitem`` (an xdist worker waits until it knows it). It confirms the plan: while it is
    the next member of the current group, requests run ahead inside the group; when it is
    not (a work unit ends, or the rest of a unit went elsewhere), the look-ahead moves on
    to the group of that next item, from that item on.
    """

    def __init__(self, *, repeats: int, depth: int) -> None:
        self.repeats = repeats
        self.depth = depth
        self.batch = max(1, depth // 8)
        # node id -> the items this process runs after it, in order
        self.run_groups: dict[str, tuple[list[IndexItem], int]] = {}
        # id of a run group -> how far into it requests have been handed to the model
        self.prefetched_until: dict[int, int] = {}
        # (node id of the running item, the item pytest runs after it)
        self.next_item: tuple[str, pytest.Item | None] | None = None
        self.dist = "no"
        # under --dist load: the units the controller sent this worker, a line each
        self.units_file: Path | None = None
        self.collection: list[str] = []
        self.position_in_collection: dict[str, int] = {}

    def group(
        self,
        items: list[IndexItem],
        dist: str,
        *,
        workers: int,
        concurrency: int,
        collection: list[str] | None = None,
        is_index_nodeid: Callable[[str], bool] | None = None,
        units_file: Path | None = None,
    ) -> None:
        """``items`` are this process's index items; under ``load``, ``collection`` (every
        node id, in order) and ``is_index_nodeid`` give the controller's work units, and
        ``units_file`` (when the controller names one) the units it sent this worker."""
        self.dist = dist
        self.units_file = units_file if dist == "load" else None
        if self.units_file is not None and collection is not None:
            self.collection = collection
            self.position_in_collection = {nodeid: i for i, nodeid in enumerate(collection)}
        groups: dict[str, list[IndexItem]] = {}
        if dist == "no":
            groups["all"] = items
        elif dist == "load":
            # the controller's scheduler hands out the same units, planned the same way
            unit_of = work_unit_keys(
                collection if collection is not None else [i.nodeid for i in items],
                is_index_nodeid or (lambda nodeid: True),
                workers=workers,
                concurrency=concurrency,
            )
            for item in items:
                groups.setdefault(unit_of[item.nodeid], []).append(item)
        elif dist in ("loadscope", "loadfile"):
            # xdist keeps a dataset (loadscope) or a whole file (loadfile) on one worker
            for item in items:
                parent = item.parent
                assert parent is not None
                scope = parent.nodeid if dist == "loadscope" else str(item.path)
                groups.setdefault(scope, []).append(item)
        else:
            # no guarantee which worker runs what beyond the next item
            groups = {item.nodeid: [item] for item in items}
        for members in groups.values():
            for position, item in enumerate(members):
                self.run_groups[item.nodeid] = (members, position)

    def runs_next(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Called as pytest starts running ``item``, with the item it runs after it."""
        self.next_item = (item.nodeid, nextitem)

    def upcoming(self, item: IndexItem) -> list[tuple[Record, int]]:
        """Requests to hand to the model before ``item`` runs: its own and those of the
        items this process runs after it, up to the look-ahead depth, less those handed
        over already (the model also drops duplicates; asking for an answer submits it)."""
        members, position = self.run_groups.get(item.nodeid, ([item], 0))
        if self.group_ends_here(item, members, position):
            wanted = self.ahead_in(members, position, 1)
            following = self.next_item[1] if self.next_item is not None else None
            if isinstance(following, IndexItem):
                # look ahead from what this process runs next, inside that item's group
                next_members, next_position = self.run_groups.get(
                    following.nodeid, ([following], 0)
                )
                wanted += self.ahead_in(next_members, next_position, self.depth)
        else:
            wanted = self.ahead_in(members, position, self.depth + 1)
            short = position + self.depth + 1 - len(members)
            following = self.sent_after(item) if short > 0 else None
            if following is not None:
                # the unit ends within the look-ahead: go on into the next one sent here
                next_members, next_position = self.run_groups[following.nodeid]
                wanted += self.ahead_in(next_members, next_position, short)
        return [(i.record, repeat) for i in wanted for repeat in range(self.repeats)]

    def sent_after(self, item: IndexItem) -> IndexItem | None:
        """The first index item of the unit the controller sent this worker after the one
        ``item`` is in, when it has been sent (``units_file``); else None."""
        if self.units_file is None:
            return None
        mine = self.position_in_collection.get(item.nodeid)
        try:
            lines = self.units_file.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        sent = [[int(i) for i in line.split()] for line in lines if line.strip()]
        # the last unit holding the item: a unit given back after a crash is sent again
        holding = [n for n, unit in enumerate(sent) if mine in unit]
        if not holding:
            return None
        for unit in sent[holding[-1] + 1 :]:
            for index in unit:
                group = self.run_groups.get(self.collection[index])
                if group is not None:
                    members, position = group
                    return members[position]
        return None

    def group_ends_here(self, item: IndexItem, members: list[IndexItem], position: int) -> bool:
        """Whether this process runs something other than the group's next member after
        ``item``, by pytest's own ``nextitem``. Without it (the item was not started by
        pytest's protocol) the plan stands."""
        if self.next_item is None or self.next_item[0] != item.nodeid:
            return False
        following = self.next_item[1]
        successor = members[position + 1] if position + 1 < len(members) else None
        if following is successor:
            return False
        # a serial run's one group is the whole session: another test in between ends nothing
        return not (
            self.dist == "no"
            and following is not None
            and successor is not None
            and not isinstance(following, IndexItem)
        )

    def ahead_in(self, members: list[IndexItem], position: int, count: int) -> list[IndexItem]:
        """Up to ``count`` members from ``position`` on, less those handed over already."""
        # items before the mark were handed over already
        end = min(len(members), position + count)
        start = max(position, self.prefetched_until.get(id(members), 0))
        if start >= end:
            return []
        if start > position and end - start < self.batch and end < len(members):
            # the window is still nearly full: top it up later, several at a time, so
            # the loop's thread is woken once per batch rather than once per item
            return []
        self.prefetched_until[id(members)] = end
        return members[start:end]
