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
from typing import Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.items import IndexItem, MissedAnswer, ScoringFailed
from pytest_evalindex.options import RunOptions
from pytest_evalindex.records import Record
from pytest_evalindex.report.terminal import shorten
from pytest_evalindex.runner import DefaultModel

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
    testset_sha256: str
    position: dict[str, int] = field(default_factory=dict)
    scorers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] | None = None
    model_defaults: dict[str, Any] = field(default_factory=dict)
    strip_thinking: bool = True


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _scorer_key(record: Record) -> str:
    return json.dumps(record.scorer.model_dump(mode="json"), sort_keys=True)


def load_index(path: Path, options: RunOptions) -> LoadedIndex:
    """Sample a spec or read a frozen test set; resolve every scorer up front."""
    from pytest_evalindex.scorers import resolve_scorer
    from pytest_evalindex.testset import read_testset

    spec_sha: str | None = None
    header: dict[str, Any] | None
    model_defaults: dict[str, Any] = {}
    strip_thinking = True
    if path.suffix.lower() in (".yaml", ".yml"):
        from pytest_evalindex.sampling import sample_index
        from pytest_evalindex.spec import load_spec

        spec = load_spec(path)
        result = sample_index(spec, count=options.count, seed=options.seed, sampler=options.sampler)
        records, header, name = result.records, result.header, spec.name
        spec_sha = _sha256_file(path)
        strip_thinking = spec.strip_thinking
        if spec.model is not None:
            model_defaults = spec.model.model_dump(exclude_none=True)
    elif path.suffix.lower() == ".jsonl":
        header, records = read_testset(path)
        name = str((header or {}).get("spec") or path.stem)
    else:
        raise EvalIndexError("an index is a spec (.yaml/.yml) or a test set (.jsonl)", file=path)
    canonical = "\n".join(json.dumps(r.model_dump(mode="json"), sort_keys=True) for r in records)
    loaded = LoadedIndex(
        path=path,
        name=name,
        records=records,
        header=header,
        spec_sha256=spec_sha,
        testset_sha256=hashlib.sha256(canonical.encode()).hexdigest(),
        position={r.id: i for i, r in enumerate(records)},
        model_defaults=model_defaults,
        strip_thinking=strip_thinking,
    )
    for record in records:
        key = _scorer_key(record)
        if key not in loaded.scorers:
            try:
                loaded.scorers[key] = resolve_scorer(record.scorer)
            except EvalIndexError as exc:
                if exc.file is None:
                    exc = EvalIndexError(exc.message, file=path, field=f"{record.dataset}: scorer")
                raise exc from None
    return loaded


def describe_sample(record: Record, sample: dict[str, Any]) -> str:
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
        self.stop_reason: str | None = None
        # node id -> the items this process runs after it, in order, for the look-ahead
        self.run_groups: dict[str, tuple[list[IndexItem], int]] = {}

    # -- loading ------------------------------------------------------------------------

    def load(self) -> None:
        for path in self.options.index_paths:
            if path in self.indexes:
                continue
            if not path.exists():
                raise EvalIndexError("no such file", file=path, field="--index")
            self.indexes[path] = load_index(path, self.options)
        names: dict[str, str] = {}
        for loaded in self.indexes.values():
            for record in loaded.records:
                for name in (record.task_type, *record.tags, record.dataset):
                    if name not in RESERVED_MARKERS and name.isidentifier():
                        names.setdefault(name, f"{name}: evaluation index marker (evalindex)")
        for line in names.values():
            self.config.addinivalue_line("markers", line)

    def index_for(self, path: Path) -> LoadedIndex | None:
        return self.indexes.get(path.resolve())

    def is_index_nodeid(self, nodeid: str) -> bool:
        path = (self.config.rootpath / nodeid.split("::", 1)[0]).resolve()
        return "::" in nodeid and path in self.indexes

    # -- the model ----------------------------------------------------------------------

    def model_settings(self) -> dict[str, Any]:
        """Model name, base URL and key variable: option, then spec, then environment."""
        defaults: dict[str, Any] = {}
        for loaded in self.indexes.values():
            defaults = {**loaded.model_defaults, **defaults}
        return {
            "name": self.options.model or defaults.get("name"),
            "base_url": self.options.base_url
            or defaults.get("base_url")
            or os.environ.get("OPENAI_BASE_URL"),
            "api_key_env": self.options.api_key_env
            or defaults.get("api_key_env")
            or "OPENAI_API_KEY",
            "generation": defaults.get("generation", {}),
        }

    def default_model(self) -> DefaultModel:
        """The plugin's model: the configured endpoint behind the cache and the look-ahead."""
        from pytest_evalindex.cache import ResponseCache
        from pytest_evalindex.client import ChatClient, RetryPolicy
        from pytest_evalindex.runner import DefaultModel, Requester

        if self.model is None:
            settings = self.model_settings()
            if not settings["base_url"]:
                from pytest_evalindex.client import ModelError

                self.stop_reason = "evalindex: no model endpoint configured"
                raise ModelError(
                    "no model endpoint configured. Pass --index-base-url URL "
                    "(an OpenAI-compatible /v1 endpoint), set model.base_url in the spec or "
                    "OPENAI_BASE_URL, or override the `model` fixture in conftest.py."
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

    def upcoming(self, item: IndexItem) -> list[tuple[Record, int]]:
        members, position = self.run_groups.get(item.nodeid, ([item], 0))
        depth = self.process_concurrency()
        return [(i.record, 0) for i in members[position : position + depth + 1]]

    # -- running one item ---------------------------------------------------------------

    def evaluate(self, item: IndexItem, model: Callable[[Record], Any], record: Record) -> None:
        from pytest_evalindex.client import AuthRejected, ModelAnswer, ModelError
        from pytest_evalindex.scorers import ScorerError

        __tracebackhide__ = True
        loaded = self.index_for(item.path)
        assert loaded is not None
        sample = self._blank_sample(record, loaded)
        item.evalindex_sample = sample
        started = time.monotonic()
        if isinstance(model, DefaultModel):
            model.prefetch(self.upcoming(item))
        try:
            answer = model(record)
        except AuthRejected as exc:
            # every further call would fail the same way: stop after this item
            self.stop_reason = "evalindex: the model server rejected the API key"
            sample["explanation"] = str(exc)
            raise
        except ModelError as exc:
            sample["explanation"] = str(exc)
            raise
        if not isinstance(answer, ModelAnswer):
            answer = ModelAnswer(content="" if answer is None else str(answer))
        sample["response"] = answer.content
        sample["reasoning"] = answer.reasoning
        sample["usage"] = {k: int(v) for k, v in answer.usage.items()}
        sample["latency_s"] = round(answer.latency_s or (time.monotonic() - started), 6)
        sample["cached"] = answer.cached
        try:
            score = loaded.scorers[_scorer_key(record)](answer.content, record)
        except ScorerError as exc:
            sample["explanation"] = f"scorer error: {exc}"
            raise ScoringFailed(describe_sample(record, sample)) from exc
        sample["score"] = float(score.value)
        sample["explanation"] = score.explanation
        if score.metrics:
            sample["metrics"] = {k: float(v) for k, v in score.metrics.items()}
        passed = score.value >= record.scorer.threshold
        sample["outcome"] = "passed" if passed else "missed"
        if not passed and self.options.strict:
            raise MissedAnswer(describe_sample(record, sample))

    def _blank_sample(self, record: Record, index: LoadedIndex | None) -> dict[str, Any]:
        return {
            "id": record.id,
            "position": index.position.get(record.id, -1) if index else -1,
            "dataset": record.dataset,
            "subset": record.subset,
            "task_type": record.task_type,
            "tags": list(record.tags),
            "categories": list(record.categories),
            "weight": record.weight,
            "outcome": "error",
            "score": None,
            "response": None,
            "reasoning": None,
            "target": record.target,
            "input": [m.model_dump() for m in record.input],
            "explanation": "",
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
            "latency_s": 0.0,
            "cached": False,
        }

    # -- reports ------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if self.stop_reason:
            item.session.shouldstop = self.stop_reason
        if not isinstance(item, IndexItem) or getattr(item, "_evalindex_reported", False):
            return report
        if call.when == "call" or (call.when == "setup" and report.failed):
            sample = item.evalindex_sample or self._blank_sample(
                item.record, self.index_for(item.path)
            )
            if sample["outcome"] == "error" and not sample["explanation"] and call.excinfo:
                sample["explanation"] = f"{call.excinfo.typename}: {call.excinfo.value}"
            # only builtins cross the xdist wire
            report.evalindex = {"index": str(item.path), "sample": sample}
            item._evalindex_reported = True  # type: ignore[attr-defined]
        return report

    def pytest_report_teststatus(self, report: pytest.TestReport) -> Any:
        data = getattr(report, "evalindex", None)
        missed = data and data["sample"]["outcome"] == "missed"
        if missed and report.when == "call" and report.passed:
            return "missed", "m", ("MISSED", {"yellow": True})
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "evalindex", None)
        if not data or self.is_worker:
            return
        loaded = self.index_for(Path(data["index"]))
        if loaded is not None:
            loaded.samples.append(data["sample"])

    # -- the end of the run -------------------------------------------------------------

    def run_metadata(self, loaded: LoadedIndex) -> dict[str, Any]:
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
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 3),
            "versions": {
                "pytest_evalindex": pytest_evalindex.__version__,
                "pytest": pytest.__version__,
                "httpx": httpx.__version__,
                "python": platform.python_version(),
            },
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.model is not None:
            self.model.requester.close()
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
                run=self.run_metadata(loaded),
                seed=self.options.seed if self.options.seed is not None else 0,
            )
        self._write_results()
        if session.exitstatus == pytest.ExitCode.OK and self.gate_failures():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def finished(self) -> list[LoadedIndex]:
        return [i for i in self.indexes.values() if i.results is not None]

    def _write_results(self) -> None:
        finished = self.finished()
        if not finished:
            return
        last_dir = self.config.rootpath / ".evalindex"
        targets: list[tuple[Path, LoadedIndex]] = []
        for loaded in finished:
            suffix = "" if len(finished) == 1 else f".{loaded.name}"
            targets.append((last_dir / f"last{suffix}.json", loaded))
            if self.options.json_path is not None:
                base = self.options.json_path
                path = base if not suffix else base.with_name(f"{base.stem}{suffix}{base.suffix}")
                targets.append((path, loaded))
        for path, loaded in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(loaded.results, ensure_ascii=False, indent=1), "utf-8")
            os.replace(tmp, path)

    def gate_failures(self) -> list[str]:
        """Verdicts that fail the run; empty when every gate holds."""
        threshold = self.options.fail_under
        if threshold is None:
            return []
        failures = []
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
        for loaded in self.finished():
            assert loaded.results is not None
            missed = [s for s in loaded.results["samples"] if s["outcome"] != "passed"]
            if missed and verbosity >= 0:
                limit = None if verbosity > 0 else 10
                terminalreporter.section(f"evalindex: not passed in {loaded.name}", sep="-")
                by_id = {r.id: r for r in loaded.records}
                for line in format_missed(missed, by_id, limit=limit):
                    terminalreporter.write_line(line)
            terminalreporter.section(f"evalindex: {loaded.name}", sep="=", bold=True)
            for line in format_summary(loaded.results):
                terminalreporter.write_line(line)
        if self.options.fail_under is not None and self.finished():
            failures = self.gate_failures()
            if failures:
                for failure in failures:
                    terminalreporter.write_line(f"FAIL {failure}", red=True, bold=True)
            else:
                terminalreporter.write_line(
                    f"PASS index >= --index-fail-under {self.options.fail_under}", green=True
                )
