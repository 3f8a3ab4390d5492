"""A real OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

``FakeOpenAI`` listens on ``127.0.0.1`` (a free port by default) and answers
``POST /v1/chat/completions`` and ``GET /v1/models`` over HTTP/1.1 with keep-alive, so a
client under test talks to it through real sockets, connection pools, timeouts and retries.
Replies come from a prompt → answer table, a ``responder`` callable, or a default; faults
(rate limits, server errors, dropped connections, broken bodies) can be scripted per request.

Usage in a test::

    import httpx
    from pytest_evalindex.testing import FakeOpenAI, Fault

    def test_answers_and_a_rate_limit():
        with FakeOpenAI(answers={"capital of France": "Paris"}, latency=0.05) as server:
            server.script_faults([Fault.status_code(429, retry_after=1)])  # the next request
            body = {"model": "m", "messages": [
                {"role": "user", "content": "What is the capital of France?"}]}
            url = f"{server.base_url}/chat/completions"
            assert httpx.post(url, json=body).status_code == 429
            reply = httpx.post(url, json=body).json()
            assert reply["choices"][0]["message"]["content"] == "Paris"
            assert server.request_count == 2

From a shell (prints the base URL on its first line, serves until Ctrl-C)::

    python -m pytest_evalindex.testing --port 8000 --latency 0.1 --answers answers.json

Benchmarks run it in a child process, so its CPU is not counted in theirs::

    with serve_in_subprocess(latency=0.1, default="ok") as base_url:
        ...  # GET {base_url without /v1}/_fake/stats gives the server's own CPU seconds

The server runs an asyncio event loop in one background thread: a connection costs a few
kilobytes, a slow reply (``latency``) is a timer rather than a blocked thread, and 64 or more
concurrent keep-alive connections cost little CPU. A plain (non-async) ``responder`` runs in a
thread pool, so it may block; an ``async def`` responder runs on the event loop itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import inspect
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "FakeOpenAI",
    "Fault",
    "FaultKind",
    "LoggedRequest",
    "main",
    "serve_in_subprocess",
]

FaultKind = Literal["status", "slow", "close", "close_mid_body", "malformed_json", "empty_choices"]
_FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

Reply = str | dict[str, Any]
Responder = Callable[[list[dict[str, Any]], dict[str, Any]], "Reply | Awaitable[Reply]"]
Latency = float | Callable[[dict[str, Any]], float]

DEFAULT_MODEL = "fake-model"
_MAX_HEADER_BYTES = 64 * 1024
_LISTEN_BACKLOG = 512
_STOP_TIMEOUT_S = 5.0
# a completion cut off mid-array: valid UTF-8, invalid JSON
_MALFORMED_BODY = b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": ['
# the environment variable that carries the API key to a subprocess (never its command line)
_API_KEY_ENV = "EVALINDEX_FAKE_API_KEY"


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by one chat request.

    ``kind``:

    - ``"status"``: reply ``status`` (default 500) with an OpenAI-style error body;
    - ``"slow"``: wait ``delay`` seconds, then answer normally;
    - ``"close"``: drop the connection without a response;
    - ``"close_mid_body"``: send the headers with the full Content-Length, then close halfway
      through the body;
    - ``"malformed_json"``: status 200 with a body that is not valid JSON;
    - ``"empty_choices"``: status 200 with a well-formed completion whose ``choices`` is ``[]``.

    ``delay`` (seconds) is waited before replying (or closing). ``headers`` are added to the
    response. ``body`` replaces the response body (a dict is sent as JSON). ``status`` defaults
    to 500 for ``"status"`` faults and 200 otherwise.
    """

    kind: FaultKind = "status"
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: str | bytes | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {_FAULT_KINDS}")
        if not self.delay >= 0:
            raise ValueError(f"fault delay must be >= 0 seconds, got {self.delay!r}")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP status code, got {self.status!r}")

    @property
    def effective_status(self) -> int:
        """The status line this fault sends (none is sent for ``"close"``)."""
        if self.status is not None:
            return self.status
        return 500 if self.kind == "status" else 200

    @classmethod
    def status_code(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        body: str | bytes | dict[str, Any] | None = None,
    ) -> Fault:
        """An error reply, e.g. ``Fault.status_code(429, retry_after=1)``.

        ``retry_after`` sets the ``Retry-After`` header (seconds), ``retry_after_ms`` the
        ``retry-after-ms`` header that OpenAI's own servers send.
        """
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = _header_number(retry_after)
        if retry_after_ms is not None:
            all_headers["retry-after-ms"] = _header_number(retry_after_ms)
        return cls("status", status, all_headers, delay, body)

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Fault:
        """A 429, optionally with ``Retry-After``."""
        return cls.status_code(429, retry_after=retry_after)

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Answer normally, but only after ``delay`` seconds (for client timeouts)."""
        return cls("slow", delay=delay)

    @classmethod
    def close(cls, delay: float = 0.0) -> Fault:
        """Drop the connection without sending a response."""
        return cls("close", delay=delay)

    @classmethod
    def close_mid_body(cls, delay: float = 0.0) -> Fault:
        """Send the headers and half of the body, then drop the connection."""
        return cls("close_mid_body", delay=delay)

    @classmethod
    def malformed_json(cls, delay: float = 0.0) -> Fault:
        """Reply 200 with a body that is not valid JSON."""
        return cls("malformed_json", delay=delay)

    @classmethod
    def empty_choices(cls, delay: float = 0.0) -> Fault:
        """Reply 200 with a completion whose ``choices`` list is empty."""
        return cls("empty_choices", delay=delay)


@dataclass
class LoggedRequest:
    """One request the server received.

    The Authorization header is never stored: ``authorized`` only says whether one was sent.
    ``received_at`` is ``time.monotonic()`` on arrival, so intervals between requests (e.g. a
    client's retry back-off) can be measured. ``status`` is the status sent, ``None`` while the
    request is still in progress or when the connection was dropped without a response.
    ``fault`` names the scripted fault kind applied to it, if any.
    """

    method: str
    path: str
    json: Any
    received_at: float
    status: int | None = None
    authorized: bool = False
    fault: str | None = None


@dataclass
class _HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    # "send": a whole response; "close": no response; "close_mid_body": half a body
    action: Literal["send", "close", "close_mid_body"] = "send"


class _MalformedRequest(Exception):
    """The bytes on the wire are not an HTTP/1.x request we can read."""


class FakeOpenAI:
    """A loopback OpenAI-compatible chat server; see the module docstring.

    ``answers`` maps a prompt to a reply (a string, or a dict like a responder's), matched
    against the last user message: an exact match first, then the first key (in insertion
    order) contained in it. ``responder(messages, body)`` takes precedence and returns a string
    or a dict with ``content`` and optionally ``reasoning_content``, ``usage`` (overrides the
    word counts), ``finish_reason``, or ``status`` + ``error`` for a scripted error reply; an
    exception in it becomes a 500 carrying its text. ``default`` is the reply when nothing
    matches (with ``echo=True``, the last user message is echoed instead). ``latency`` is the
    time from receiving a chat request to answering it: seconds, or ``callable(body)``.
    ``model`` is listed by ``/v1/models`` and used when a request names none (a request's own
    model is echoed). With ``api_key`` set, a request without ``Authorization: Bearer
    <api_key>`` gets a 401.
    """

    def __init__(
        self,
        answers: Mapping[str, Reply] | None = None,
        responder: Responder | None = None,
        default: str = "",
        latency: Latency = 0.0,
        model: str | None = None,
        *,
        api_key: str | None = None,
        echo: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.answers: dict[str, Reply] = dict(answers or {})
        self.responder = responder
        self.default = default
        self.latency = latency
        self.model = model
        self.echo = echo
        self.host = host
        self._requested_port = port
        # compared against the whole header value; the key itself is never logged
        self._expected_authorization = f"Bearer {api_key}" if api_key is not None else None

        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._faults: deque[Fault] = deque()
        self._prompt_faults: dict[str, deque[Fault]] = {}
        self._completion_ids = itertools.count(1)

        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._responder_pool: ThreadPoolExecutor | None = None
        self._startup_error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOpenAI:
        """Bind the socket and start serving in a background thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI is already started")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready,), name=f"FakeOpenAI-{id(self):x}", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection, then end the thread."""
        thread = self._thread
        if thread is None:
            return
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop_requested.set)
        thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        self._port = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "stopped"
        return f"<FakeOpenAI {where} requests={self.request_count}>"

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not running; call start() or use it in `with`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what a client's ``base_url`` should be."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ faults

    def script_faults(self, faults: Iterable[Fault]) -> None:
        """Queue faults; each chat request takes the next one before normal handling."""
        faults = _checked_faults(faults)
        with self._lock:
            self._faults.extend(faults)

    def faults_for(self, prompt_substring: str, faults: Iterable[Fault]) -> None:
        """Queue faults taken only by requests whose last user message contains the text.

        They are taken before the general queue of :meth:`script_faults`, so under concurrency
        a test can still target one record deterministically.
        """
        faults = _checked_faults(faults)
        with self._lock:
            self._prompt_faults.setdefault(prompt_substring, deque()).extend(faults)

    @property
    def faults_remaining(self) -> int:
        """Scripted faults not yet consumed (general and per-prompt)."""
        with self._lock:
            return len(self._faults) + sum(len(q) for q in self._prompt_faults.values())

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._prompt_faults.clear()

    def _take_fault(self, last_user_text: str) -> Fault | None:
        with self._lock:
            for substring, queue in self._prompt_faults.items():
                if queue and substring in last_user_text:
                    return queue.popleft()
            return self._faults.popleft() if self._faults else None

    # ------------------------------------------------------------------ event loop

    def _run_loop(self, ready: threading.Event) -> None:
        if hasattr(signal, "pthread_sigmask"):
            # let the main thread take Ctrl-C and SIGTERM, even while it is blocked in a read
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            asyncio.run(self._serve(ready))
        except BaseException as error:  # reported to start(); the thread must not die silently
            if not ready.is_set():
                self._startup_error = error
                ready.set()
            else:
                raise

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._responder_pool = ThreadPoolExecutor(
            max_workers=256, thread_name_prefix="FakeOpenAI-responder"
        )
        try:
            server = await asyncio.start_server(
                self._serve_connection,
                self.host,
                self._requested_port,
                backlog=_LISTEN_BACKLOG,
                limit=_MAX_HEADER_BYTES,
            )
        except BaseException:
            self._responder_pool.shutdown(wait=False)
            raise
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            server.close()
            tasks = list(self._connection_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            # a blocked responder thread is abandoned, not waited for
            self._responder_pool.shutdown(wait=False, cancel_futures=True)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connection_tasks.add(task)
        stopping = False
        try:
            while True:
                try:
                    request = await _read_request(reader, writer)
                except _MalformedRequest as error:
                    reply = _error_reply(400, str(error), "invalid_request_error")
                    writer.write(_encode_head(reply, keep_alive=False) + reply.body)
                    await writer.drain()
                    return
                if request is None:
                    return
                keep_alive = _wants_keep_alive(request)
                reply = await self._handle(request)
                if reply.action == "close":
                    return
                if reply.action == "close_mid_body":
                    half = len(reply.body) // 2
                    writer.write(_encode_head(reply, keep_alive=False) + reply.body[:half])
                    await writer.drain()
                    return
                writer.write(_encode_head(reply, keep_alive) + reply.body)
                await writer.drain()
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            # only stop() cancels these tasks; ending quietly keeps asyncio from logging it
            stopping = True
        except (ConnectionError, asyncio.IncompleteReadError):
            stopping = True  # the client went away; nothing left to flush
        finally:
            self._connection_tasks.discard(task)
            if stopping:
                writer.transport.abort()
            else:
                writer.close()

    # ------------------------------------------------------------------ routing

    async def _handle(self, request: _HttpRequest) -> _HttpReply:
        target = request.target
        if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path = target.split("?", 1)[0]
        if path == "/_fake/stats":  # for benchmarks: the server process's own CPU time
            stats = {"requests": self.request_count, "process_cpu_s": time.process_time()}
            return _json_reply(200, stats)

        parsed_body: Any = None
        body_error: str | None = None
        if request.body:
            try:
                parsed_body = json.loads(request.body)
            except ValueError as error:
                body_error = f"We could not parse the JSON body of your request: {error}"
        authorization = request.headers.get("authorization")
        entry = LoggedRequest(
            method=request.method,
            path=path,
            json=parsed_body,
            received_at=time.monotonic(),
            authorized=authorization is not None,
        )
        with self._lock:
            self._log.append(entry)

        try:
            reply = await self._route(
                request.method, path, parsed_body, body_error, authorization, entry
            )
        except Exception as error:  # e.g. a latency callable that raised
            message = f"fake server error: {type(error).__name__}: {error}"
            reply = _error_reply(500, message, "server_error")
        entry.status = None if reply.action == "close" else reply.status
        return reply

    async def _route(
        self,
        method: str,
        path: str,
        body: Any,
        body_error: str | None,
        authorization: str | None,
        entry: LoggedRequest,
    ) -> _HttpReply:
        if path in ("/v1/chat/completions", "/chat/completions"):
            endpoint = "chat"
        elif path in ("/v1/models", "/models"):
            endpoint = "models"
        else:
            return _error_reply(
                404,
                f"Unknown request URL: {method} {path}.",
                "invalid_request_error",
                code="unknown_url",
            )
        if self._expected_authorization is not None and authorization != (
            self._expected_authorization
        ):
            return _error_reply(
                401, "Incorrect API key provided.", "invalid_request_error", code="invalid_api_key"
            )
        if endpoint == "models":
            if method != "GET":
                return _error_reply(
                    405,
                    f"Method {method} not allowed on {path}.",
                    "invalid_request_error",
                    code="method_not_allowed",
                )
            model_id = self.model or DEFAULT_MODEL
            listing = {
                "object": "list",
                "data": [
                    {"id": model_id, "object": "model", "created": 0, "owned_by": "evalindex"}
                ],
            }
            return _json_reply(200, listing)
        if method != "POST":
            return _error_reply(
                405,
                f"Method {method} not allowed on {path}.",
                "invalid_request_error",
                code="method_not_allowed",
            )
        if body_error is not None:
            return _error_reply(400, body_error, "invalid_request_error")
        problem = _chat_body_problem(body)
        if problem is not None:
            return _error_reply(400, problem, "invalid_request_error", param="messages")
        return await self._chat(body, entry)

    async def _chat(self, body: dict[str, Any], entry: LoggedRequest) -> _HttpReply:
        received_at = entry.received_at
        messages: list[dict[str, Any]] = body["messages"]
        last_user = _last_user_text(messages)
        fault = self._take_fault(last_user)
        if fault is not None:
            entry.fault = fault.kind
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.kind == "close":
                return _HttpReply(0, b"", action="close")
            if fault.kind == "status":
                status = fault.effective_status
                reply = _error_reply(status, f"Scripted fault: HTTP {status}.", _error_type(status))
                return _with_fault(reply, fault)
            if fault.kind == "malformed_json":
                reply = _HttpReply(fault.effective_status, _MALFORMED_BODY)
                return _with_fault(reply, fault)
            if fault.kind == "slow":
                received_at = time.monotonic()  # latency then counts from after the delay

        reply = await self._answer(messages, body, last_user)
        if fault is not None and fault.kind == "empty_choices":
            completion = (
                json.loads(reply.body)
                if reply.status == 200
                else self._completion(body, {"content": ""}, messages)
            )
            completion["choices"] = []
            reply = _json_reply(fault.effective_status, completion)
        elif fault is not None and fault.kind == "close_mid_body":
            reply = _HttpReply(fault.effective_status, reply.body, action="close_mid_body")

        remaining = self._latency_for(body) - (time.monotonic() - received_at)
        if remaining > 0:
            await asyncio.sleep(remaining)
        return _with_fault(reply, fault) if fault is not None else reply

    def _latency_for(self, body: dict[str, Any]) -> float:
        latency = self.latency(body) if callable(self.latency) else self.latency
        return float(latency)

    async def _answer(
        self, messages: list[dict[str, Any]], body: dict[str, Any], last_user: str
    ) -> _HttpReply:
        try:
            result = await self._produce(messages, body, last_user)
        except Exception as error:
            return _error_reply(
                500, f"responder raised {type(error).__name__}: {error}", "server_error"
            )
        if isinstance(result, str):
            result = {"content": result}
        if not isinstance(result, dict):
            return _error_reply(
                500,
                f"responder returned {type(result).__name__}; expected str or dict",
                "server_error",
            )
        status = int(result.get("status") or 200)
        if status >= 400:
            return _scripted_error(status, result.get("error"))
        return _json_reply(status, self._completion(body, result, messages))

    async def _produce(
        self, messages: list[dict[str, Any]], body: dict[str, Any], last_user: str
    ) -> Any:
        responder = self.responder
        if responder is None:
            return self._match_answer(last_user)
        if inspect.iscoroutinefunction(responder):
            return await responder(messages, body)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._responder_pool, responder, messages, body)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _match_answer(self, last_user: str) -> Reply:
        answer = self.answers.get(last_user)
        if answer is not None:
            return answer
        for prompt, candidate in self.answers.items():
            if prompt in last_user:
                return candidate
        return last_user if self.echo else self.default

    def _completion(
        self, body: dict[str, Any], result: dict[str, Any], messages: list[dict[str, Any]]
    ) -> dict[str, Any]:
        content = result.get("content")
        content = "" if content is None else str(content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        reasoning = result.get("reasoning_content")
        if reasoning is not None:
            message["reasoning_content"] = str(reasoning)
        prompt_tokens = sum(_word_count(_content_text(m.get("content"))) for m in messages)
        completion_tokens = _word_count(content) + _word_count(str(reasoning or ""))
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        usage_override = result.get("usage")
        if isinstance(usage_override, dict):
            usage.update(usage_override)
            if "total_tokens" not in usage_override:
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {
            "id": f"chatcmpl-fake-{next(self._completion_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model or DEFAULT_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": result.get("finish_reason", "stop"),
                }
            ],
            "usage": usage,
        }


# ---------------------------------------------------------------------- HTTP on the wire


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _HttpRequest | None:
    """Read one request; ``None`` when the client closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if error.partial.strip():
            raise _MalformedRequest("The request ended inside its headers.") from None
        return None
    except asyncio.LimitOverrunError:
        raise _MalformedRequest("The request headers are too large.") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise _MalformedRequest(f"Bad request line: {lines[0][:100]!r}.") from None
    if not version.startswith("HTTP/1."):
        raise _MalformedRequest(f"Unsupported protocol {version[:20]!r}.")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _MalformedRequest(f"Bad header line: {line[:100]!r}.")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":
        # curl waits for this before sending a large body
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _MalformedRequest("Content-Length is not a number.") from None
        body = await reader.readexactly(length) if length > 0 else b""
    return _HttpRequest(method, target, version, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _MalformedRequest("Bad chunk size in a chunked body.") from None
        if size == 0:
            # trailers, if any, end with an empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _wants_keep_alive(request: _HttpRequest) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _encode_head(reply: _HttpReply, keep_alive: bool) -> bytes:
    try:
        reason = http.HTTPStatus(reply.status).phrase
    except ValueError:
        reason = "Status"
    lines = [
        f"HTTP/1.1 {reply.status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(reply.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------------- reply bodies


def _json_reply(status: int, payload: Any) -> _HttpReply:
    return _HttpReply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def _error_reply(
    status: int,
    message: str,
    error_type: str,
    *,
    code: str | None = None,
    param: str | None = None,
) -> _HttpReply:
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return _json_reply(status, {"error": error})


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_exceeded"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _scripted_error(status: int, error: Any) -> _HttpReply:
    if isinstance(error, dict):
        return _json_reply(status, {"error": error})
    message = str(error) if error is not None else f"Scripted error: HTTP {status}."
    return _error_reply(status, message, _error_type(status))


def _with_fault(reply: _HttpReply, fault: Fault) -> _HttpReply:
    body = reply.body
    if fault.body is not None:
        if isinstance(fault.body, dict):
            body = json.dumps(fault.body).encode("utf-8")
        elif isinstance(fault.body, str):
            body = fault.body.encode("utf-8")
        else:
            body = fault.body
    return _HttpReply(reply.status, body, {**reply.headers, **fault.headers}, reply.action)


def _chat_body_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    messages = body.get("messages")
    if messages is None:
        return "Missing required parameter: 'messages'."
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': expected a non-empty array of message objects."
    if not all(isinstance(m, dict) for m in messages):
        return "Invalid 'messages': every message must be an object."
    return None


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _word_count(text: str) -> int:
    return len(text.split())


def _header_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _checked_faults(faults: Iterable[Fault]) -> list[Fault]:
    checked = list(faults)
    for fault in checked:
        if not isinstance(fault, Fault):
            raise TypeError(f"expected Fault objects, got {type(fault).__name__}")
    return checked


# ---------------------------------------------------------------------- command line


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_evalindex.testing",
        description="Serve a fake OpenAI-compatible chat API until Ctrl-C. "
        "The first line printed is the base URL.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to bind, 0 for a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay before each chat reply (default: %(default)s)",
    )
    parser.add_argument(
        "--answers", metavar="FILE.json", help="a JSON object mapping prompts to replies"
    )
    parser.add_argument(
        "--default", default="", help="reply when no answer matches (default: empty)"
    )
    parser.add_argument(
        "--model", default=None, help=f"model listed by /v1/models (default: {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--echo-target",
        action="store_true",
        help="reply with the last user message when no answer matches, so a "
        "test set whose targets equal their prompts scores 1.0",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="require `Authorization: Bearer $VAR` (the key stays off the command line)",
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="also stop when standard input closes (when the parent dies)",
    )
    return parser.parse_args(argv)


def _load_answers(path: str) -> dict[str, Reply]:
    try:
        with open(path, encoding="utf-8") as file:
            answers = json.load(file)
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: cannot read the answers file: {error}") from None
    if not isinstance(answers, dict):
        raise SystemExit(f"{path}: expected a JSON object mapping prompts to replies")
    return answers


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the server from the command line; returns the exit status."""
    args = _parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise SystemExit(f"environment variable {args.api_key_env} is not set")
    server = FakeOpenAI(
        answers=_load_answers(args.answers) if args.answers else None,
        default=args.default,
        latency=args.latency,
        model=args.model,
        api_key=api_key,
        echo=args.echo_target,
        host=args.host,
        port=args.port,
    )
    # SIGTERM (how serve_in_subprocess stops us) ends the run like Ctrl-C
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with server:
            print(server.base_url, flush=True)
            if args.exit_on_stdin_eof:
                while sys.stdin.buffer.read(4096):
                    pass
            else:
                while True:
                    time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


@contextlib.contextmanager
def serve_in_subprocess(
    *,
    latency: float = 0.0,
    answers: Mapping[str, Reply] | str | os.PathLike[str] | None = None,
    default: str = "",
    model: str | None = None,
    echo_target: bool = False,
    api_key: str | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Run the command-line server in a child process; yields its base URL.

    The server's CPU is then spent outside the caller's process (what benchmarks want).
    ``answers`` is a dict or the path of a JSON file. ``api_key`` reaches the child through
    its environment, never its command line. The child is stopped on exit, and also stops by
    itself if this process dies.
    """
    command = [
        sys.executable,
        "-m",
        "pytest_evalindex.testing",
        "--port",
        "0",
        "--host",
        host,
        "--latency",
        str(latency),
        "--default",
        default,
        "--exit-on-stdin-eof",
    ]
    if model is not None:
        command += ["--model", model]
    if echo_target:
        command.append("--echo-target")
    environment = dict(os.environ)
    # the child imports this very package, installed or not
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_parent, environment.get("PYTHONPATH")])
    )
    if api_key is not None:
        environment[_API_KEY_ENV] = api_key
        command += ["--api-key-env", _API_KEY_ENV]
    with contextlib.ExitStack() as cleanup:
        if answers is not None and not isinstance(answers, (str, os.PathLike)):
            answers_file = cleanup.enter_context(_temporary_json(dict(answers)))
            command += ["--answers", answers_file]
        elif answers is not None:
            command += ["--answers", os.fspath(answers)]
        process = cleanup.enter_context(
            subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=environment,
                text=True,
                encoding="utf-8",
            )
        )
        cleanup.callback(_stop_process, process)
        assert process.stdout is not None
        watchdog = threading.Timer(startup_timeout, process.kill)
        watchdog.start()
        try:
            first_line = process.stdout.readline().strip()
        finally:
            watchdog.cancel()
        if not first_line.startswith("http"):
            process.kill()
            raise RuntimeError(
                f"the fake OpenAI server did not start (exit status {process.wait()}); "
                "see its standard error above"
            )
        yield first_line


def _stop_process(process: subprocess.Popen[str]) -> None:
    # closing its standard input is the polite stop on every platform; SIGTERM, then kill
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    for stop in (None, process.terminate, process.kill):
        if stop is not None:
            stop()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def _temporary_json(payload: Any) -> Iterator[str]:
    import tempfile

    handle, path = tempfile.mkstemp(prefix="evalindex-answers-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(payload, file, ensure_ascii=False)
        yield path
    finally:
        os.unlink(path)


if __name__ == "__main__":
    sys.exit(main())
