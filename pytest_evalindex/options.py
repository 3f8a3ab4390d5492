"""Command-line options and ini values (DESIGN §1), read once into ``RunOptions``.

Every option has an ini twin named ``evalindex_<name>``; the command line wins.
Values are checked by argparse ``type=`` functions, so bad input is a usage error.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SAMPLERS = ("weighted", "stratified", "uniform")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def any_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def score_threshold(text: str) -> float:
    """A score in [0, 1]; ``85%`` is accepted as 0.85."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a score like 0.75 or 75%, got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a score between 0 and 1, got {text!r}")
    return value


def sampler_name(text: str) -> str:
    if text not in SAMPLERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(SAMPLERS)}, got {text!r}")
    return text


# (option name, ini/dest suffix, argparse type, metavar, help)
OPTIONS: list[tuple[str, str, Callable[[str], Any] | None, str, str]] = [
    ("--index-model", "model", None, "NAME",
     "model under test (default: the spec's model.name)"),
    ("--index-base-url", "base_url", None, "URL",
     "OpenAI-compatible base URL (default: the spec, then $OPENAI_BASE_URL)"),
    ("--index-api-key-env", "api_key_env", None, "VAR",
     "environment variable holding the API key (default: the spec, then OPENAI_API_KEY)"),
    ("--index-concurrency", "concurrency", positive_int, "N",
     "requests in flight per run (default: 16)"),
    ("--index-count", "count", positive_int, "N", "override the spec's sample count"),
    ("--index-seed", "seed", any_int, "N", "override the spec's sampling seed"),
    ("--index-sampler", "sampler", sampler_name, "NAME",
     "override the spec's sampler: weighted, stratified or uniform"),
    ("--index-json", "json", None, "PATH",
     "also write the results JSON here (always written to .evalindex/last.json)"),
    ("--index-fail-under", "fail_under", score_threshold, "X",
     "fail the run when the index score is below X (0..1 or a percentage)"),
    ("--index-timeout", "timeout", positive_float, "SECONDS",
     "per-request timeout (default: 120)"),
    ("--index-max-attempts", "max_attempts", positive_int, "N",
     "attempts per request, retries included (default: 6)"),
    ("--index-max-retry-time", "max_retry_time", positive_float, "SECONDS",
     "give up retrying a request after this long (default: 300)"),
    ("--index-cache-dir", "cache_dir", None, "DIR",
     "response cache shared by all processes (default: .evalindex/cache)"),
]  # fmt: skip


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalindex", "evaluation index")
    group.addoption(
        "--index",
        action="append",
        dest="evalindex_index",
        metavar="PATH",
        default=None,
        help="an index spec (.yaml) or frozen test set (.jsonl) to run; repeatable",
    )
    parser.addini("evalindex_index", "index specs or test sets to run", type="paths")
    for flag, name, type_, metavar, help_ in OPTIONS:
        group.addoption(
            flag, dest=f"evalindex_{name}", metavar=metavar, type=type_, default=None, help=help_
        )
        parser.addini(f"evalindex_{name}", help_, type="string")
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


@dataclass(frozen=True)
class RunOptions:
    index_paths: tuple[Path, ...]
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int = 16
    count: int | None = None
    seed: int | None = None
    sampler: str | None = None
    json_path: Path | None = None
    fail_under: float | None = None
    timeout: float = 120.0
    max_attempts: int = 6
    max_retry_time: float = 300.0
    cache_dir: Path | None = None
    no_cache: bool = False
    strict: bool = False

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunOptions:
        values: dict[str, Any] = {}
        for _flag, name, type_, _metavar, _help in OPTIONS:
            value = config.getoption(f"evalindex_{name}")
            if value is None:
                raw = config.getini(f"evalindex_{name}")
                if raw:
                    try:
                        value = type_(raw) if type_ else raw
                    except argparse.ArgumentTypeError as exc:
                        raise pytest.UsageError(f"ini value evalindex_{name}: {exc}") from None
            if value is not None:
                values[name] = value
        invocation = config.invocation_params.dir
        given = config.getoption("evalindex_index") or []
        paths = [(invocation / p).resolve() for p in given]
        if not paths:
            paths = [Path(p).resolve() for p in config.getini("evalindex_index")]
        if "json" in values:
            values["json_path"] = (invocation / values.pop("json")).resolve()
        values["cache_dir"] = (
            (invocation / values["cache_dir"]).resolve()
            if "cache_dir" in values
            else config.rootpath / ".evalindex" / "cache"
        )
        for flag in ("strict", "no_cache"):
            given_flag = config.getoption(f"evalindex_{flag}")
            values[flag] = bool(
                given_flag if given_flag is not None else config.getini(f"evalindex_{flag}")
            )
        return cls(index_paths=tuple(dict.fromkeys(paths)), **values)
