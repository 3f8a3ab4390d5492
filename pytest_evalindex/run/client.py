"""OpenAI-compatible chat client: one call, retries that respect the server, clear errors.

Requests are coroutines on the process's one event loop (``run.event_loop``), sent with
aiohttp: measured on these machines it is the async stack that keeps 64 requests in flight
at the lowest CPU cost (DESIGN §10; httpx's async pool rescans every connection on every
request). ``chat`` is the synchronous door for any thread; ``achat`` the coroutine.
The API key is read from the environment at call time and only ever put in a header.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_evalindex.run.event_loop import BackgroundLoop, shared_loop

if TYPE_CHECKING:
    import aiohttp

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
THINK_BLOCK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


class ModelError(Exception):
    """A call that did not produce an answer after retries; the sample becomes an error."""


class AuthRejected(ModelError):
    """The server refused the API key (401/403): no further call can succeed."""


@dataclass
class ModelAnswer:
    """What the model said, and what it cost."""

    content: str
    reasoning: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    latency_s: float = 0.0
    attempts: int = 1
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "reasoning": self.reasoning,
            "usage": dict(self.usage),
            "latency_s": self.latency_s,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool = False) -> ModelAnswer:
        return cls(
            content=str(data.get("content") or ""),
            reasoning=data.get("reasoning"),
            usage={k: int(v) for k, v in (data.get("usage") or {}).items()},
            latency_s=float(data.get("latency_s") or 0.0),
            attempts=int(data.get("attempts") or 1),
            cached=cached,
        )


class AdaptiveLimit:
    """How many requests may be in flight: halved while the server answers 429, then
    grown back by one per window of successes (additive increase, multiplicative decrease).

    Used on the event loop only; waiters are served first come, first served.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self._last_cut = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.stopped: str | None = None

    def _has_room(self) -> bool:
        return self.in_flight < max(1, int(self.limit))

    async def acquire(self) -> None:
        if self.stopped is not None:
            raise ModelError(self.stopped)
        if self._has_room() and not self._waiters:
            self.in_flight += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved with the slot already counted as ours
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed a slot as we were cancelled: pass it on
            raise

    def release(self, *, throttled: bool = False, succeeded: bool = False) -> None:
        self.in_flight -= 1
        now = time.monotonic()
        if throttled:
            # a burst of 429s for requests sent together is one signal, not many
            if now - self._last_cut > 0.5:
                self.limit = max(1.0, self.limit / 2)
                self._last_cut = now
        elif succeeded and self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._has_room():
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def stop(self, why: str) -> None:
        """No request starts from now on: the waiting ones fail with ``why``."""
        self.stopped = why
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ModelError(why))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_total_s: float = 120.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return rng.uniform(cap / 2, cap)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's requested wait: ``retry-after-ms``, ``Retry-After`` seconds or HTTP date
    (``headers`` is case-insensitive, as both aiohttp's and httpx's are)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_message(body: bytes, reason: str) -> str:
    """The error text the server gave, short, for a user to read."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", errors="replace").strip()
        return text[:300] if text else reason
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return str(data)[:300]


def split_thinking(content: str) -> tuple[str, str | None]:
    """Separate ``<think>…</think>`` blocks from the answer that gets scored."""
    blocks = re.findall(r"<think>(.*?)</think>", content, flags=re.DOTALL)
    if not blocks:
        # an unclosed block means the answer never came out of thinking
        if content.lstrip().startswith("<think>") and "</think>" not in content:
            return "", content.lstrip()[len("<think>") :].strip()
        return content, None
    return THINK_BLOCK.sub("", content).strip(), "\n".join(b.strip() for b in blocks)


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``ALL_PROXY``, less ``NO_PROXY``), as an httpx client would use it; None for none."""
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    # proxy_bypass reads NO_PROXY (and, on macOS and Windows, the system settings)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(parts.scheme) or proxies.get("all") or None


class HttpPool:
    """The connections of a run: one aiohttp session on the process's loop, shared by the
    model under test and the judge, so both draw on one pool and one concurrency; each
    endpoint gets one ``AdaptiveLimit``, so a judge on the model's server shares its limit."""

    def __init__(self, max_connections: int, *, loop: BackgroundLoop | None = None) -> None:
        self.loop = loop or shared_loop()
        self.max_connections = max(1, max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._limits: dict[str, AdaptiveLimit] = {}

    def limit_for(self, base_url: str, maximum: int) -> AdaptiveLimit:
        limit = self._limits.get(base_url)
        if limit is None:
            limit = self._limits[base_url] = AdaptiveLimit(min(maximum, self.max_connections))
        return limit

    def session(self) -> aiohttp.ClientSession:
        """The session, made on first use (on the loop, where aiohttp wants it made)."""
        if self._session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
            # not trust_env: aiohttp would then read .netrc and the proxy variables in an
            # executor thread for every request; each client finds its proxy once instead
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def stop(self, why: str) -> None:
        """Requests not yet sent fail with ``why``; those on the wire go on."""

        def stop_all() -> None:
            for limit in self._limits.values():
                limit.stop(why)

        self.loop.loop.call_soon_threadsafe(stop_all)

    def close(self) -> None:
        """Close the connections (from any thread but the loop's)."""
        if self._session is not None:
            session, self._session = self._session, None
            self.loop.run(session.close())


class ChatClient:
    """POST ``{base_url}/chat/completions`` with retries: ``await achat(messages)`` on the
    loop, or ``chat(messages)`` from any other thread."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        generation: dict[str, Any] | None = None,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        strip_thinking: bool = True,
        pool: HttpPool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.generation = dict(generation or {})
        self.retry = retry or RetryPolicy()
        self.strip_thinking = strip_thinking
        self.timeout_s = timeout_s
        self._own_pool = pool is None
        self.pool = pool if pool is not None else HttpPool(max_connections)
        self.loop = self.pool.loop
        self.limit = self.pool.limit_for(self.base_url, max_connections)
        self.proxy = proxy_for(self.base_url)
        self._rng = random.Random()
        self._auth_failure: str | None = None

    def close(self) -> None:
        if self._own_pool:
            self.pool.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def chat(self, messages: list[dict[str, Any]]) -> ModelAnswer:
        """``achat`` from a thread other than the loop's: waits for the answer."""
        return self.loop.run(self.achat(messages))

    async def achat(self, messages: list[dict[str, Any]]) -> ModelAnswer:
        """Ask once (with retries); raise ModelError with the server's own words on failure."""
        if self._auth_failure:
            raise AuthRejected(self._auth_failure)
        payload = json.dumps({**self.generation, "model": self.model, "messages": messages})
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(payload.encode())
            if isinstance(outcome, ModelAnswer):
                outcome.latency_s = time.monotonic() - started
                outcome.attempts = attempt
                return outcome
            problem, wait = outcome
            elapsed = time.monotonic() - started
            delay = wait if wait is not None else self.retry.backoff(attempt, self._rng)
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_total_s:
                raise ModelError(f"{problem} (gave up after {attempt} attempts, {elapsed:.1f}s)")
            await asyncio.sleep(delay)

    async def _attempt(self, payload: bytes) -> ModelAnswer | tuple[str, float | None]:
        """One HTTP request: the answer, or (what went wrong, the server's requested wait)
        for a retryable failure. Non-retryable failures raise."""
        import aiohttp

        url = f"{self.base_url}/chat/completions"
        await self.limit.acquire()
        if self._auth_failure:  # learnt while this request waited for its turn
            self.limit.release()
            raise AuthRejected(self._auth_failure)
        status = 0
        # like httpx's timeout: each wait for the connection or for data, not the whole call
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
        )
        try:
            async with self.pool.session().post(
                url, data=payload, headers=self._headers(), timeout=timeout, proxy=self.proxy
            ) as response:
                body = await response.read()
                status, headers, reason = response.status, response.headers, response.reason
        except asyncio.TimeoutError:
            return f"timed out after {self.timeout_s}s", None
        except aiohttp.ClientError as exc:
            return f"connection failed: {exc or type(exc).__name__}", None
        finally:
            self.limit.release(throttled=status == 429, succeeded=status == 200)
        if status == 200:
            try:
                return self._parse(body)
            except ModelError as exc:
                return str(exc), None
        message = server_message(body, reason or "")
        if status in (401, 403):
            text = (
                f"{url} rejected the API key (HTTP {status}): {message}. "
                f"Set the key in ${self.api_key_env or 'OPENAI_API_KEY'} or pass "
                "--index-api-key-env."
            )
            self._auth_failure = text
            raise AuthRejected(text)
        if status in RETRY_STATUSES:
            return f"HTTP {status}: {message}", retry_after_seconds(headers)
        raise ModelError(f"HTTP {status} from {url}: {message}")

    def _parse(self, body: bytes) -> ModelAnswer:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ModelError(f"response is not valid JSON: {exc}") from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise ModelError("response has no choices")
        message = choices[0].get("message") or {}
        content = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if self.strip_thinking:
            content, thought = split_thinking(content)
            if thought and not reasoning:
                reasoning = thought
        usage = data.get("usage") or {}
        counts = {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
        }
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        if isinstance(cached, int) and cached > 0:
            # priced apart (pricing.cached_input); kept only when the provider reports it
            counts["cached_tokens"] = cached
        return ModelAnswer(content=content, reasoning=reasoning, usage=counts)
