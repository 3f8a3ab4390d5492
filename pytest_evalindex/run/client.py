"""OpenAI-compatible chat client: one call, retries that respect the server, clear errors.

Synchronous ``httpx.Client`` shared by threads: measured on these machines it keeps a high
number of requests in flight at low CPU cost (benchmarks/throughput.py), unlike one large
async pool.
The API key is read from the environment at call time and only ever put in a header.
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

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
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(self.maximum)
        self.in_flight = 0
        self._last_cut = 0.0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_flight >= max(1, int(self.limit)):
                self._cond.wait()
            self.in_flight += 1

    def release(self, *, throttled: bool = False, succeeded: bool = False) -> None:
        with self._cond:
            self.in_flight -= 1
            now = time.monotonic()
            if throttled:
                # a burst of 429s for requests sent together is one signal, not many
                if now - self._last_cut > 0.5:
                    self.limit = max(1.0, self.limit / 2)
                    self._last_cut = now
            elif succeeded and self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._cond.notify_all()


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


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """The server's requested wait: ``retry-after-ms``, ``Retry-After`` seconds or HTTP date."""
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


def server_message(response: httpx.Response) -> str:
    """The error text the server gave, short, for a user to read."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return str(body)[:300]


def split_thinking(content: str) -> tuple[str, str | None]:
    """Separate ``<think>…</think>`` blocks from the answer that gets scored."""
    blocks = re.findall(r"<think>(.*?)</think>", content, flags=re.DOTALL)
    if not blocks:
        # an unclosed block means the answer never came out of thinking
        if content.lstrip().startswith("<think>") and "</think>" not in content:
            return "", content.lstrip()[len("<think>") :].strip()
        return content, None
    return THINK_BLOCK.sub("", content).strip(), "\n".join(b.strip() for b in blocks)


class ChatClient:
    """POST ``{base_url}/chat/completions`` with retries; safe to share between threads."""

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
    ) -> None:
        self.limit = AdaptiveLimit(max_connections)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.generation = dict(generation or {})
        self.retry = retry or RetryPolicy()
        self.strip_thinking = strip_thinking
        self._rng = random.Random()
        self._auth_failure: str | None = None
        self._lock = threading.Lock()
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), limits=limits)

    def close(self) -> None:
        self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def chat(self, messages: list[dict[str, Any]]) -> ModelAnswer:
        """Ask once (with retries); raise ModelError with the server's own words on failure."""
        if self._auth_failure:
            raise AuthRejected(self._auth_failure)
        body = {**self.generation, "model": self.model, "messages": messages}
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(body)
            if isinstance(outcome, ModelAnswer):
                outcome.latency_s = time.monotonic() - started
                outcome.attempts = attempt
                return outcome
            problem, wait = outcome
            elapsed = time.monotonic() - started
            delay = wait if wait is not None else self.retry.backoff(attempt, self._rng)
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_total_s:
                raise ModelError(f"{problem} (gave up after {attempt} attempts, {elapsed:.1f}s)")
            time.sleep(delay)

    def _attempt(self, body: dict[str, Any]) -> ModelAnswer | tuple[str, float | None]:
        """One HTTP request: the answer, or (what went wrong, the server's requested wait)
        for a retryable failure. Non-retryable failures raise."""
        url = f"{self.base_url}/chat/completions"
        self.limit.acquire()
        status = 0
        try:
            response = self._http.post(url, json=body, headers=self._headers())
            status = response.status_code
        except httpx.TimeoutException:
            return f"timed out after {self._http.timeout.read}s", None
        except httpx.TransportError as exc:
            return f"connection failed: {exc or type(exc).__name__}", None
        finally:
            self.limit.release(throttled=status == 429, succeeded=status == 200)
        if status == 200:
            try:
                return self._parse(response)
            except ModelError as exc:
                return str(exc), None
        if status in (401, 403):
            message = (
                f"{url} rejected the API key (HTTP {status}): {server_message(response)}. "
                f"Set the key in ${self.api_key_env or 'OPENAI_API_KEY'} or pass "
                "--index-api-key-env."
            )
            with self._lock:
                self._auth_failure = message
            raise AuthRejected(message)
        if status in RETRY_STATUSES:
            return f"HTTP {status}: {server_message(response)}", retry_after_seconds(
                response.headers
            )
        raise ModelError(f"HTTP {status} from {url}: {server_message(response)}")

    def _parse(self, response: httpx.Response) -> ModelAnswer:
        try:
            data = response.json()
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
