"""Command-line options and ini values, read once into ``RunOptions``.

Every option has an ini twin named ``evalindex_<name>``; the command line wins.
Values are checked by argparse ``type=`` functions, so bad input is a usage error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.argtypes import (
    any_int,
    positive_float,
    positive_int,
    probability,
    sampler_name,
    sandbox_mode,
    score_threshold,
)


def _lazy(module: str, name: str) -> Callable[[str], Any]:
    """An argparse type whose parser lives in a module imported only when used."""

    def parse(text: str) -> Any:
        import importlib

        return getattr(importlib.import_module(module), name)(text)

    parse.__name__ = name
    return parse


parse_gate = _lazy("pytest_evalindex.results.gates", "parse_gate")
parse_compare_fail = _lazy("pytest_evalindex.results.compare", "parse_compare_fail")
parse_reducer = _lazy("pytest_evalindex.results.repeats", "parse_reducer")
parse_shard = _lazy("pytest_evalindex.results.shards", "parse_shard")
parse_price = _lazy("pytest_evalindex.run.budget", "parse_price")


# (option name, ini/dest suffix, argparse type, metavar, help)
OPTIONS: list[tuple[str, str, Callable[[str], Any] | None, str, str]] = [
    ("--index-gate", "gate", parse_gate, "EXPR",
     "a gate such as task_type:instruction>=0.9 or tag:zh>=35%; repeatable"),
    ("--index-model", "model", None, "NAME",
     "model under test (default: the spec's model.name)"),
    ("--index-base-url", "base_url", None, "URL",
     "OpenAI-compatible base URL (default: the spec, then $OPENAI_BASE_URL)"),
    ("--index-api-key-env", "api_key_env", None, "VAR",
     "environment variable holding the API key (default: the spec, then OPENAI_API_KEY)"),
    ("--index-judge-model", "judge_model", None, "NAME",
     "judge model for judge-scored datasets (default: the spec's judge.name)"),
    ("--index-judge-base-url", "judge_base_url", None, "URL",
     "judge endpoint (default: the spec's judge.base_url, then the model's endpoint)"),
    ("--index-judge-api-key-env", "judge_api_key_env", None, "VAR",
     "environment variable holding the judge's API key (default: the model's)"),
    ("--index-concurrency", "concurrency", positive_int, "N",
     "requests in flight per run (default: 16)"),
    ("--index-count", "count", positive_int, "N", "override the spec's sample count"),
    ("--index-seed", "seed", any_int, "N", "override the spec's sampling seed"),
    ("--index-sampler", "sampler", sampler_name, "NAME",
     "override the spec's sampler: weighted, stratified or uniform"),
    ("--index-json", "json", None, "PATH",
     "also write the results JSON here (always written to .evalindex/last.json, "
     "or last.partial.json for a run of part of the test set)"),
    ("--index-html", "html", None, "PATH",
     "write a self-contained HTML case-analysis report here"),
    ("--index-markdown", "markdown", None, "PATH",
     "write the markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set)"),
    ("--index-fail-under", "fail_under", score_threshold, "X",
     "fail the run when the index score is below X (0..1 or a percentage)"),
    ("--index-compare-fail", "compare_fail", parse_compare_fail, "EXPR",
     "with --index-compare: fail on a significant drop beyond a margin, e.g. index:2pp "
     "or task_type:instruction:5%; repeatable"),
    ("--index-alpha", "alpha", probability, "P",
     "significance level of comparisons (default: 0.05)"),
    ("--index-repeat", "repeat", positive_int, "K", "ask each record K times (default: 1)"),
    ("--index-reducer", "reducer", parse_reducer, "NAME",
     "combine repeats: mean (default), majority, pass@k, pass^k"),
    ("--index-shard", "shard", parse_shard, "I/N",
     "run only shard I of N (a deterministic 1/N of the records); merge with evalindex merge"),
    ("--index-timeout", "timeout", positive_float, "SECONDS",
     "per-request timeout (default: 120)"),
    ("--index-max-attempts", "max_attempts", positive_int, "N",
     "attempts per request, retries included (default: 6)"),
    ("--index-max-retry-time", "max_retry_time", positive_float, "SECONDS",
     "give up retrying a request after this long (default: 300)"),
    ("--index-price", "price", parse_price, "INPUT,OUTPUT",
     "the model's prices in USD per million tokens, e.g. 0.50,1.50 (a third value prices "
     "cached input); overrides the spec's model.pricing"),
    ("--index-budget", "budget", positive_float, "USD",
     "the most the run may spend; records not asked by then end as errors (needs prices "
     "and max_tokens)"),
    ("--index-cache-dir", "cache_dir", None, "DIR",
     "response cache shared by all processes (default: .evalindex/cache)"),
    ("--index-sandbox", "sandbox", sandbox_mode, "MODE",
     "code sandbox: auto (bubblewrap when it works here, default), strict (require it) "
     "or basic (without it)"),
]  # fmt: skip


# options given several times collect into a list
REPEATABLE = ("gate", "compare_fail")


# the options whose value may be left out (argparse nargs="?") and the value they then take;
# the token after such an option is its value unless it is a path or node id to run (see
# preflight.protect_optional_values), and `--index-save=NAME` is always read as a value
OPTIONAL_VALUES = {"--index-save": "", "--index-compare": "latest"}


class _EscapedGroup:
    """An option group whose help texts are taken literally: argparse %-formats help, so a
    '%' (as in "tag:zh>=35%") would break `pytest --help`."""

    def __init__(self, group: Any) -> None:
        self._group = group

    def addoption(self, *names: str, **attrs: Any) -> None:
        if "help" in attrs:
            attrs["help"] = attrs["help"].replace("%", "%%")
        self._group.addoption(*names, **attrs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._group, name)


def add_options(parser: pytest.Parser) -> None:
    group = _EscapedGroup(parser.getgroup("evalindex", "evaluation index"))
    group.addoption(
        "--index",
        action="append",
        dest="evalindex_index",
        metavar="PATH",
        default=None,
        help="an index spec (.yaml), a frozen test set (.jsonl), a published folder, or a "
        "published index hf://OWNER/NAME[@REV] or modelscope://OWNER/NAME[@REV] to run; "
        "repeatable",
    )
    parser.addini("evalindex_index", "index specs or test sets to run", type="paths")
    for flag, name, type_, metavar, help_ in OPTIONS:
        action = "append" if name in REPEATABLE else "store"
        group.addoption(
            flag,
            dest=f"evalindex_{name}",
            metavar=metavar,
            type=type_,
            default=None,
            action=action,
            help=help_,
        )
        if name in REPEATABLE:
            parser.addini(f"evalindex_{name}", help_, type="linelist")
        else:
            parser.addini(f"evalindex_{name}", help_, type="string")
    group.addoption(
        "--index-save",
        dest="evalindex_save",
        metavar="NAME",
        nargs="?",
        const=OPTIONAL_VALUES["--index-save"],
        default=None,
        help="save the results as a numbered baseline under .evalindex/runs/<index>/",
    )
    group.addoption(
        "--index-compare",
        dest="evalindex_compare",
        metavar="NUM|PATH",
        nargs="?",
        const=OPTIONAL_VALUES["--index-compare"],
        default=None,
        help="compare with a saved run (default: the latest) with paired statistics",
    )
    group.addoption(
        "--index-compare-intersection",
        action="store_true",
        dest="evalindex_compare_intersection",
        default=None,
        help="compare runs over different test sets on the samples they share",
    )
    parser.addini(
        "evalindex_compare_intersection", "compare on the samples both runs share", type="bool"
    )
    parser.addini("evalindex_save", "save every run under this name", type="string")
    parser.addini("evalindex_compare", "compare with this saved run (latest, NUM or PATH)")
    group.addoption(
        "--index-strict",
        action="store_true",
        dest="evalindex_strict",
        default=None,
        help="a wrong answer fails its item (default: reported as missed)",
    )
    parser.addini("evalindex_strict", "a wrong answer fails its item", type="bool")
    group.addoption(
        "--index-no-cache",
        action="store_true",
        dest="evalindex_no_cache",
        default=None,
        help="neither read nor write the response cache",
    )
    parser.addini("evalindex_no_cache", "do not use the response cache", type="bool")


def _index_file(path: Path) -> Path:
    """A folder given as an index stands for its test set (``test.jsonl``, else its only
    ``*.jsonl``), e.g. a folder holding an EvalScope collection file."""
    if not path.is_dir():
        return path
    from pytest_evalindex.data.sources import folder_data_file
    from pytest_evalindex.errors import EvalIndexError

    try:
        return Path(folder_data_file(str(path))).resolve()
    except EvalIndexError as exc:
        raise pytest.UsageError(f"evalindex: --index {path}: {exc.message}") from None


def _from_ini(raw: Any, type_: Callable[[str], Any] | None) -> Any:
    convert = type_ or (lambda text: text)
    return [convert(line) for line in raw] if isinstance(raw, list) else convert(raw)


def _ini_error(config: pytest.Config, key: str, message: str) -> pytest.UsageError:
    where = f"{config.inipath}: " if config.inipath else ""
    return pytest.UsageError(f"evalindex: {where}ini value {key}: {message}")


def _getini(config: pytest.Config, key: str) -> Any:
    """An ini value; one that pytest cannot read as its type (``evalindex_strict = maybe``)
    is a usage error naming the key and the file, not a traceback."""
    try:
        return config.getini(key)
    except (ValueError, pytest.UsageError) as exc:
        # pytest names neither the key nor the file for a bad truth value
        hint = "; expected true or false" if "truth value" in str(exc) else ""
        raise _ini_error(config, key, f"{exc}{hint}") from None


@dataclass(frozen=True)
class RunOptions:
    index_paths: tuple[Path, ...]
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    judge_model: str | None = None
    judge_base_url: str | None = None
    judge_api_key_env: str | None = None
    concurrency: int = 16
    count: int | None = None
    seed: int | None = None
    sampler: str | None = None
    json_path: Path | None = None
    html_path: Path | None = None
    markdown_path: Path | None = None
    fail_under: float | None = None
    timeout: float = 120.0
    max_attempts: int = 6
    max_retry_time: float = 300.0
    cache_dir: Path | None = None
    no_cache: bool = False
    strict: bool = False
    gate: tuple[Any, ...] = ()
    compare_fail: tuple[Any, ...] = ()
    alpha: float = 0.05
    save: str | None = None
    compare: str | None = None
    compare_intersection: bool = False
    repeat: int = 1
    reducer: Any = None
    shard: tuple[int, int] | None = None
    sandbox: str = "auto"
    price: dict[str, float] | None = None
    budget: float | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunOptions:
        values: dict[str, Any] = {}
        for _flag, name, type_, _metavar, _help in OPTIONS:
            value = config.getoption(f"evalindex_{name}")
            if value is None:
                raw = _getini(config, f"evalindex_{name}")
                if raw:
                    try:
                        value = _from_ini(raw, type_)
                    except (argparse.ArgumentTypeError, ValueError) as exc:
                        raise _ini_error(config, f"evalindex_{name}", str(exc)) from None
            if value is not None:
                values[name] = tuple(value) if name in REPEATABLE else value
        for name in ("save", "compare"):
            given_value = config.getoption(f"evalindex_{name}")
            values[name] = (
                given_value
                if given_value is not None
                else (_getini(config, f"evalindex_{name}") or None)
            )
        if values.get("reducer") is None:
            values["reducer"] = parse_reducer("mean")
        invocation = config.invocation_params.dir
        given = config.getoption("evalindex_index") or []
        paths = [(invocation / p).resolve() for p in given]
        if not paths:
            paths = [Path(p).resolve() for p in _getini(config, "evalindex_index")]
        paths = [_index_file(p) for p in paths]
        for name in ("json", "html", "markdown"):
            if name in values:
                values[f"{name}_path"] = (invocation / values.pop(name)).resolve()
        values["cache_dir"] = (
            (invocation / values["cache_dir"]).resolve()
            if "cache_dir" in values
            else config.rootpath / ".evalindex" / "cache"
        )
        for flag in ("strict", "no_cache", "compare_intersection"):
            given_flag = config.getoption(f"evalindex_{flag}")
            values[flag] = bool(
                given_flag if given_flag is not None else _getini(config, f"evalindex_{flag}")
            )
        return cls(index_paths=tuple(dict.fromkeys(paths)), **values)
