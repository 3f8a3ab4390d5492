"""The run's state and the pytest hooks that drive it.

One ``EvalIndexSession`` per pytest process, registered as a plugin and found through
``config.stash``. On an xdist controller it never collects: it only gathers the samples that
arrive on worker reports, which is the same path a serial run takes. The work itself lives
in the pipeline's packages: loading indexes in ``run.loading``, the models in ``run.models``,
the look-ahead in ``run.lookahead``, result files in ``run.writing`` and the terminal summary
in ``report.summary`` (see docs/architecture.md).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Generator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.items import IndexItem, MissedAnswer
from pytest_evalindex.options import RunOptions
from pytest_evalindex.report.summary import describe_sample
from pytest_evalindex.results.verdicts import Verdicts
from pytest_evalindex.run.collector_pacing import CollectorPacing
from pytest_evalindex.run.loading import LoadedIndex, load_index, marker_lines, scorer_key
from pytest_evalindex.run.lookahead import DefaultModel, LookAheadPlan, lookahead_depth
from pytest_evalindex.run.models import NoModel, RunModels
from pytest_evalindex.testset.records import Record

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import PartialRun, Results, RunInfo, SandboxInfo
    from pytest_evalindex.run.interrupt import WorkerProcesses
    from pytest_evalindex.run.local_model import LocalModelServer
    from pytest_evalindex.run.lookahead import JudgeModel, ScoreAhead

SESSION_KEY = pytest.StashKey["EvalIndexSession"]()


def session_of(config: pytest.Config) -> EvalIndexSession:
    return config.stash[SESSION_KEY]


class EvalIndexSession:
    """Owns the run. Hooks here run on serial runs, xdist workers and the controller."""

    def __init__(self, config: pytest.Config, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self.indexes: dict[Path, LoadedIndex] = {}
        self.started_at = datetime.now(timezone.utc)
        self.started = time.monotonic()
        self.is_worker = hasattr(config, "workerinput")
        self.models = RunModels(config, options, self.indexes)
        self.write_errors: list[str] = []  # output files the end of the run could not write
        self.stop_reason: str | None = None
        self.lookahead = LookAheadPlan(
            repeats=options.repeat,
            depth=lookahead_depth(options.concurrency, self.models.workers()),
        )
        self.score_ahead_decided = False
        self.collector = CollectorPacing()  # fewer garbage collections while items run
        self.sandbox: SandboxInfo | None = None  # the code sandbox (results run.sandbox)

        from pytest_evalindex.report.html_extras import pytest_html_writes_report

        # pytest-html's report gets each not-passed item's details
        self.html_extras = pytest_html_writes_report(config)
        # path as given -> its index; resolving a path is a system call, items are many
        self._index_by_path: dict[Path | str, LoadedIndex | None] = {}
        from pytest_evalindex.run.interrupt import StopSignals

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
            loaded = load_index(path, self.options, self.models.scorer_context)
            if self.options.compare is not None and not self.is_worker:
                from pytest_evalindex.results.baselines import load_baseline

                ref = None if self.options.compare == "latest" else self.options.compare
                loaded.baseline = load_baseline(self.evalindex_dir(), loaded.name, ref)
            self.indexes[path] = loaded
        if not self.is_worker:
            from pytest_evalindex.scoring.code import sandbox_for_run

            scorers = [s for i in self.indexes.values() for s in i.scorers.values()]
            self.sandbox = sandbox_for_run(self.options.sandbox, scorers)
        for line in marker_lines(self.indexes.values()):
            self.config.addinivalue_line("markers", line)

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

    # -- the models (kept in RunModels) ---------------------------------------------------

    @property
    def model(self) -> DefaultModel | None:
        return self.models.model

    @property
    def judge(self) -> JudgeModel | None:
        return self.models.judge

    @property
    def judge_base_url(self) -> str | None:
        return self.models.judge_base_url

    @property
    def local_server(self) -> LocalModelServer | None:
        return self.models.local_server

    def model_settings(self) -> dict[str, Any]:
        return self.models.model_settings()

    def configured_settings(self) -> dict[str, Any]:
        return self.models.configured_settings()

    def wants_local_model(self, settings: dict[str, Any]) -> bool:
        return self.models.wants_local_model(settings)

    def start_local_model_if_needed(self) -> None:
        self.models.start_local_model_if_needed()

    def stop_local_model(self) -> None:
        self.models.stop_local_model()

    def shared_with_workers(self) -> dict[str, Any]:
        return self.models.shared_with_workers()

    def default_model(self) -> DefaultModel:
        try:
            return self.models.default_model()
        except NoModel as exc:
            self.stop_reason = exc.stop_reason
            raise

    def workers(self) -> int:
        return self.models.workers()

    def process_concurrency(self) -> int:
        return self.models.process_concurrency()

    def score_ahead(self) -> ScoreAhead | None:
        """Scoring beside the requests for the records whose scorer declares that it works
        outside this interpreter (ScorerTraits); None when there are none."""
        from pytest_evalindex.run.lookahead import ScoreAhead, score_ahead_threads
        from pytest_evalindex.scoring import BoundScorer

        # records are the items' own objects, alive all run: their identity is the key
        ahead: dict[int, Callable[..., Any]] = {}
        for loaded in self.indexes.values():
            for record in loaded.records:
                scorer = loaded.scorer_of.get(record.id)
                if isinstance(scorer, BoundScorer) and scorer.traits.scores_outside_interpreter:
                    ahead[id(record)] = scorer
        if not ahead:
            return None
        threads = score_ahead_threads(self.workers())
        return ScoreAhead(
            lambda record: ahead.get(id(record)),
            threads=threads,
            request_threads=self.process_concurrency(),
        )

    # -- the look-ahead -----------------------------------------------------------------

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Group the items this process will run, so each can prefetch its successors."""
        items = [i for i in session.items if isinstance(i, IndexItem)]
        workerinput = getattr(self.config, "workerinput", {})
        dist = workerinput.get("evalindex_dist", "each") if self.is_worker else "no"
        self.lookahead.group(
            items,
            dist,
            workers=self.workers(),
            concurrency=self.options.concurrency,
            collection=[i.nodeid for i in session.items],
            is_index_nodeid=self.is_index_nodeid,
            units_file=Path(units) if (units := workerinput.get("evalindex_units_file")) else None,
        )
        if items and not self.config.option.collectonly:
            self.warm_up_scorers()
            self.collector.start()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        # pytest says which item runs after this one (an xdist worker waits until it
        # knows): the look-ahead follows it across the end of a work unit
        self.lookahead.runs_next(item, nextitem)
        return (yield)

    def warm_up_scorers(self) -> None:
        """Start what the scorers need before the first answer arrives (math-verify's
        helper process takes about half a second to import SymPy): each warm-up once."""
        from pytest_evalindex.scoring import BoundScorer

        started: set[Callable[[], None]] = set()
        for loaded in self.indexes.values():
            for scorer in loaded.scorers.values():
                warm_up = scorer.traits.warm_up if isinstance(scorer, BoundScorer) else None
                if warm_up is not None and warm_up not in started:
                    started.add(warm_up)
                    warm_up()

    # -- running one item ---------------------------------------------------------------

    def evaluate(self, item: IndexItem, model: Callable[..., Any], record: Record) -> None:
        from pytest_evalindex.run.client import AuthRejected
        from pytest_evalindex.run.evaluation import blank_sample, evaluate

        __tracebackhide__ = True
        loaded = self.index_for(item.path)
        assert loaded is not None
        scorer = loaded.scorer_of.get(record.id) or loaded.scorers[scorer_key(record)]
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
                (r, k)
                for r, k in self.lookahead.upcoming(item)
                if r is not item.record or k not in kept
            )
            ask: Callable[[Record, int], Any] = model
            if requester.score_ahead is not None:
                prescored = requester.score_ahead.take
        else:
            # a user's model takes only the record; repeats simply ask it again
            def ask(record: Record, repeat: int) -> Any:
                return model(record)

        from pytest_evalindex.run.attempts import remembering

        # a rerun of this item (pytest-rerunfailures) reuses the answers it already got
        ask = remembering(item.evalindex_answers, ask)
        from pytest_evalindex.run.budget import judge_calls_into

        try:
            with judge_calls_into(sample):  # a priced judge's verdicts, for the cost
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
            report.evalindex_stop = self.stop_reason  # for the controller, under xdist
        if not isinstance(item, IndexItem):
            return report
        if call.when == "call" or (call.when == "setup" and report.failed):
            sample = item.evalindex_sample
            if sample is None:
                from pytest_evalindex.run.evaluation import blank_sample

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
        stop = getattr(report, "evalindex_stop", None)
        if stop and not self.stop_reason:
            self.stop_reason = str(stop)
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
        from pytest_evalindex.run.attempts import lost_sample

        loaded = self.index_for(self.config.rootpath / report.nodeid.split("::", 1)[0])
        sample = lost_sample(loaded, report.nodeid, str(report.longrepr)) if loaded else None
        if loaded is not None and sample is not None:
            loaded.add_sample(sample)

    # -- the header -------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """A warning line per index whose few samples carry much of its weight; a line, not
        a Python warning, so a run under ``-W error`` still runs."""
        if self.is_worker:
            return []
        from pytest_evalindex.results.planning import testset_warning

        lines = []
        if self.indexes and getattr(config.option, "dist", "no") == "worksteal":
            lines.append(
                "evalindex: --dist worksteal: a worker cannot know which items it runs next, "
                "so each keeps only its current and next record's requests in flight; "
                "--dist load (the default with -n) keeps --index-concurrency in flight"
            )
        for loaded in self.indexes.values():
            message = testset_warning(loaded.all_records or loaded.records)
            if message:
                lines.append(f"evalindex: warning: index {loaded.name!r}: {message}")
        return lines

    # -- interruption -------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.signals.install()

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from pytest_evalindex.results.partial import is_keyboard_interrupt
        from pytest_evalindex.run.interrupt import keep_last_frame

        received = self.signals.received is not None
        session_stop = pytest.Session.Interrupted  # raised for session.shouldstop
        self.interrupted = received or is_keyboard_interrupt(excinfo.value, session_stop)
        if self.interrupted:
            # before anything else, so the workers stop while this process reports
            self.stop_at_once()
        if not self.config.option.fulltrace:
            keep_last_frame(excinfo)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.signals.restore()
        if self.interrupted:
            # the requests abandoned at the interruption had until now to reach the cache;
            # whatever is still in flight is dropped with the connections
            self.models.close(wait=False)

    def stop_at_once(self) -> None:
        """Interrupted: tell the workers, drop queued requests, leave those in flight."""
        if self.worker_processes is not None:
            self.worker_processes.interrupt()
        if self.model is not None:
            self.model.requester.abandon()

    def partial_of(self, loaded: LoadedIndex, session: pytest.Session) -> PartialRun | None:
        from pytest_evalindex.results.partial import partial_run, selection_causes

        causes = selection_causes(
            self.config,
            session,
            index_paths=self.indexes,
            shard=self.options.shard is not None,
            interrupted=self.interrupted,
            stopped=self.stop_reason is not None,
        )
        ran = len({s["id"] for s in loaded.samples})
        return partial_run(ran=ran, of=len(loaded.all_records), causes=causes)

    # -- the end of the run -------------------------------------------------------------

    def run_metadata(self, loaded: LoadedIndex, partial: PartialRun | None) -> RunInfo:
        from importlib.metadata import version

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
            "index_source": loaded.index_source,
            "sandbox": self.sandbox,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - self.started, 3),
            "versions": {
                "pytest_evalindex": pytest_evalindex.__version__,
                "pytest": pytest.__version__,
                "aiohttp": version("aiohttp"),  # the client that sent the requests
                "python": platform.python_version(),
            },
            "partial": partial,
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.collector.stop()
        self.signals.finishing()
        if not self.interrupted:  # else stop_at_once() has abandoned the requests
            self.models.close()
        if self.is_worker or self.config.option.collectonly:
            return
        from pytest_evalindex.results.aggregate import build_results

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
            self.models.add_cost(loaded.results)
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
        from pytest_evalindex.results.verdicts import judge_run

        if self.options.shard is not None:
            # a shard is part of a run: gates and comparisons belong on the merged result
            return Verdicts()
        from pytest_evalindex.results.partial import compare_on_shared, partial_of

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
            from pytest_evalindex.results.partial import gate_failure

            failure = gate_failure(partial)
            verdicts.failures.append(failure)
            # printed once, in its own section, like the gates' own failures
            verdicts.sections.append(("partial run", [f"FAIL {failure}"]))
        return verdicts

    def finished(self) -> list[LoadedIndex]:
        return [i for i in self.indexes.values() if i.results is not None]

    def evalindex_dir(self) -> Path:
        return self.config.rootpath / ".evalindex"

    def _write_results(self) -> None:
        from pytest_evalindex.run.writing import write_results

        write_results(
            self.finished(),
            self.options,
            evalindex_dir=self.evalindex_dir(),
            write_errors=self.write_errors,
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
        from pytest_evalindex.report.summary import write_summary

        write_summary(terminalreporter, self)

    def interrupted_line(self) -> str:
        from pytest_evalindex.results.partial import interrupted_line
        from pytest_evalindex.run.interrupt import kept_answers, shown_path

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
