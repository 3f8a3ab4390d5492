"""pytest entry point: options, fixtures and the hooks that hand off to ``EvalIndexSession``.

Kept thin and lazy: nothing heavy is imported unless ``--index`` is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_evalindex.options import add_options

if TYPE_CHECKING:
    from pytest_evalindex.testset.records import Record


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_evalindex import hookspec

    pluginmanager.add_hookspecs(hookspec)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    # `pytest --index spec.yaml` needs no other path: the index files join the args
    # unless the user already names them (e.g. a node id `spec.yaml::gsm8k::gsm8k/3`).
    namespace = early_config.known_args_namespace
    indexes = list(getattr(namespace, "evalindex_index", None) or [])
    if not indexes:
        indexes = [str(p) for p in early_config.getini("evalindex_index")]
    if not indexes:
        return
    from pytest_evalindex.options import OPTIONAL_VALUES
    from pytest_evalindex.run.preflight import looks_positional, protect_optional_values

    indexes = _resolve_shared_indexes(indexes, args, early_config.rootpath)
    invocation = early_config.invocation_params.dir
    index_paths = [invocation / index for index in indexes]
    # a bare --index-save/--index-compare must not take a path or node id as its value
    rescued = protect_optional_values(
        args, OPTIONAL_VALUES, lambda token: looks_positional(token, invocation, index_paths)
    )
    named = {
        (invocation / arg.split("::", 1)[0]).resolve()
        for arg in [*(namespace.file_or_dir or []), *rescued]
        if not arg.startswith("-")
    }
    # in front of the options, where no option can take them as its value
    missing = [i for i in indexes if (invocation / i).resolve() not in named]
    args[:0] = list(dict.fromkeys(missing))


def _resolve_shared_indexes(indexes: list[str], args: list[str], root: Path) -> list[str]:
    """Download the hub ids among ``indexes`` (``hf://OWNER/NAME[@REV]``) and put their
    local test sets in their place in ``args``, so the rest of the run sees files."""
    from pytest_evalindex.data.published import is_shared_id, resolve_shared_index
    from pytest_evalindex.errors import EvalIndexError

    local: dict[str, str] = {}
    for index in indexes:
        if is_shared_id(index) and index not in local:
            try:
                local[index] = str(resolve_shared_index(index, root))
            except EvalIndexError as exc:
                raise pytest.UsageError(f"evalindex: {exc}") from None
    if not local:
        return indexes
    for at, arg in enumerate(args):
        if arg.startswith("--index=") and arg[len("--index=") :] in local:
            args[at] = "--index=" + local[arg[len("--index=") :]]
        elif arg in local and at > 0 and args[at - 1] == "--index":
            args[at] = local[arg]
    return [local.get(index, index) for index in indexes]


def pytest_configure(config: pytest.Config) -> None:
    from pytest_evalindex.options import RunOptions

    if config.option.help or config.option.version:
        return  # `pytest --help` shows the options; it runs nothing
    options = RunOptions.from_config(config)
    if not options.index_paths:
        return
    from pytest_evalindex.errors import EvalIndexError
    from pytest_evalindex.items import EVALUATOR_KEY
    from pytest_evalindex.run.preflight import check_run
    from pytest_evalindex.session import SESSION_KEY, EvalIndexSession

    session = EvalIndexSession(config, options)
    try:
        session.load()
        if not session.is_worker:
            check_run(session)  # whatever can be wrong is said before the first request
        if config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None):
            # one embedded model server for the whole run, started before the workers
            session.start_local_model_if_needed()
    except EvalIndexError as exc:
        raise pytest.UsageError(f"evalindex: {exc}") from None
    config.stash[SESSION_KEY] = session
    config.stash[EVALUATOR_KEY] = session.evaluate
    config.add_cleanup(session.collector.stop)  # also when the run stops early
    config.pluginmanager.register(session, "evalindex-session")
    if not session.is_worker and config.getoption("xmlpath", None):
        from pytest_evalindex.report.junit import MissedInJUnit

        config.pluginmanager.register(MissedInJUnit(config), "evalindex-junit")
    if config.pluginmanager.hasplugin("xdist") and not session.is_worker:
        from pytest_evalindex.run.xdist_scheduling import WorkUnitSchedulerPlugin

        scheduler = WorkUnitSchedulerPlugin(
            session.is_index_nodeid, options.concurrency, session.shared_with_workers
        )
        config.pluginmanager.register(scheduler, "evalindex-xdist-scheduler")
        from pytest_evalindex.run.interrupt import WorkerProcesses

        session.worker_processes = WorkerProcesses()
        config.pluginmanager.register(session.worker_processes, "evalindex-xdist-workers")


def pytest_unconfigure(config: pytest.Config) -> None:
    from pytest_evalindex.session import SESSION_KEY

    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.stop_local_model()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    from pytest_evalindex.session import SESSION_KEY

    session = parent.config.stash.get(SESSION_KEY, None)
    loaded = session.index_for(file_path) if session else None
    if loaded is None:
        return None
    from pytest_evalindex.items import IndexFile

    collector = IndexFile.from_parent(parent, path=file_path)
    collector.loaded = loaded
    return collector


@pytest.fixture(scope="session")
def model(request: pytest.FixtureRequest) -> Any:
    """Answers a record: ``model(record) -> str | ModelAnswer``. Override it in conftest.py
    to evaluate your own function, agent or RAG pipeline instead of a raw model."""
    from pytest_evalindex.run.client import ModelError
    from pytest_evalindex.session import session_of

    try:
        return session_of(request.config).default_model()
    except ModelError as exc:
        problem = str(exc)
    # a setup problem of the whole run: its message, not the fixture's traceback
    pytest.fail(problem, pytrace=False)


@pytest.fixture
def index_record(request: pytest.FixtureRequest) -> Record:
    """The record the current index item evaluates."""
    record: Record = request.node.record
    return record
