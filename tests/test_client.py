"""The chat client against the real loopback server: retries, waits, faults, key handling."""

from __future__ import annotations

import asyncio
import email.utils
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from pytest_evalindex.run.client import (
    AdaptiveLimit,
    AuthRejected,
    ChatClient,
    ModelError,
    RetryPolicy,
    proxy_for,
    retry_after_seconds,
    split_thinking,
)
from pytest_evalindex.testing import FakeOpenAI, Fault

FAST = RetryPolicy(max_attempts=5, max_total_s=30, base_delay_s=0.01, max_delay_s=0.05)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(answers={"capital of France": "Paris"}) as fake:
        yield fake


def client_for(server: FakeOpenAI, **kwargs: object) -> ChatClient:
    options: dict[str, object] = {"retry": FAST, "timeout_s": 5.0}
    options.update(kwargs)
    return ChatClient(base_url=server.base_url, model="m", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status_code(500),
        Fault.status_code(502),
        Fault.status_code(503),
        Fault.status_code(408),
        Fault.status_code(429),
        Fault.close(),
        Fault.close_mid_body(),
        Fault.malformed_json(),
        Fault.empty_choices(),
    ],
    ids=lambda f: f"{f.kind}-{f.status}",
)
def test_each_fault_is_retried_until_answered(server: FakeOpenAI, fault: Fault) -> None:
    server.script_faults([fault, fault])
    client = client_for(server)
    try:
        answer = client.chat(QUESTION)
    finally:
        client.close()
    assert answer.content == "Paris"
    assert answer.attempts == 3
    assert server.request_count == 3


def test_timeout_is_retried(server: FakeOpenAI) -> None:
    server.script_faults([Fault.slow(1.0)])
    client = client_for(server, timeout_s=0.2)
    try:
        answer = client.chat(QUESTION)
    finally:
        client.close()
    assert answer.content == "Paris"
    assert answer.attempts == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "0.4"}, 0.4), ({"retry-after-ms": "300"}, 0.3)],
)
def test_retry_after_is_honoured(
    server: FakeOpenAI, headers: dict[str, str], expected: float
) -> None:
    server.script_faults([Fault.status_code(429, headers=headers)])
    client = client_for(server)
    try:
        client.chat(QUESTION)
    finally:
        client.close()
    first, second = server.requests
    assert second.received_at - first.received_at >= expected - 0.02


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    wait = retry_after_seconds(httpx.Headers({"Retry-After": when}))
    assert wait is not None and 1.0 <= wait <= 3.5
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "1500"})) == 1.5


def test_bounded_attempts_give_up_with_the_servers_message(server: FakeOpenAI) -> None:
    server.script_faults([Fault.status_code(503, body={"error": {"message": "overloaded"}})] * 9)
    client = client_for(server, retry=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    with pytest.raises(ModelError, match=r"HTTP 503: overloaded \(gave up after 3 attempts"):
        client.chat(QUESTION)
    client.close()
    assert server.request_count == 3


def test_total_retry_time_is_bounded(server: FakeOpenAI) -> None:
    server.script_faults([Fault.status_code(429, retry_after=5)])
    client = client_for(server, retry=RetryPolicy(max_attempts=10, max_total_s=1.0))
    started = time.monotonic()
    with pytest.raises(ModelError, match="gave up after 1 attempts"):
        client.chat(QUESTION)
    client.close()
    assert time.monotonic() - started < 1.0


def test_other_4xx_is_not_retried(server: FakeOpenAI) -> None:
    server.script_faults([Fault.status_code(400, body={"error": {"message": "bad max_tokens"}})])
    client = client_for(server)
    with pytest.raises(ModelError, match=r"HTTP 400 .*bad max_tokens"):
        client.chat(QUESTION)
    client.close()
    assert server.request_count == 1


def test_rejected_key_stops_further_calls_without_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALINDEX_TEST_KEY", "sk-wrong-secret")
    with FakeOpenAI(api_key="sk-right", answers={"France": "Paris"}) as fake:
        client = ChatClient(base_url=fake.base_url, model="m", api_key_env="EVALINDEX_TEST_KEY")
        with pytest.raises(AuthRejected, match=r"rejected the API key .*EVALINDEX_TEST_KEY"):
            client.chat(QUESTION)
        with pytest.raises(AuthRejected):
            client.chat(QUESTION)
        client.close()
        assert fake.request_count == 1
        assert "sk-wrong-secret" not in repr(fake.requests)


def test_key_is_sent_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALINDEX_TEST_KEY", "sk-right")
    with FakeOpenAI(api_key="sk-right", answers={"France": "Paris"}) as fake:
        client = ChatClient(base_url=fake.base_url, model="m", api_key_env="EVALINDEX_TEST_KEY")
        assert client.chat(QUESTION).content == "Paris"
        client.close()
        assert fake.requests[0].authorized


def test_reasoning_kept_apart_and_think_stripped() -> None:
    def reply(messages: list[dict[str, str]], body: dict[str, object]) -> object:
        if "native" in messages[-1]["content"]:
            return {"content": "42", "reasoning_content": "six times seven"}
        return "<think>let me add</think>\nThe answer is 5."

    with FakeOpenAI(responder=reply) as fake:
        client = ChatClient(base_url=fake.base_url, model="m")
        native = client.chat([{"role": "user", "content": "native reasoning"}])
        inline = client.chat([{"role": "user", "content": "inline"}])
        kept = ChatClient(base_url=fake.base_url, model="m", strip_thinking=False)
        raw = kept.chat([{"role": "user", "content": "inline"}])
        client.close()
        kept.close()
    assert (native.content, native.reasoning) == ("42", "six times seven")
    assert (inline.content, inline.reasoning) == ("The answer is 5.", "let me add")
    assert raw.content.startswith("<think>")


def test_split_thinking_unclosed_block() -> None:
    assert split_thinking("<think>still going") == ("", "still going")
    assert split_thinking("plain") == ("plain", None)


def test_usage_and_latency_are_reported() -> None:
    with FakeOpenAI(default="one two three", latency=0.1) as fake:
        client = ChatClient(base_url=fake.base_url, model="m")
        answer = client.chat(QUESTION)
        client.close()
    assert answer.usage["completion_tokens"] == 3
    assert answer.usage["prompt_tokens"] > 0
    assert answer.latency_s >= 0.1


def test_adaptive_limit_halves_on_429_and_recovers() -> None:
    async def exercise() -> float:
        limit = AdaptiveLimit(16)
        await limit.acquire()
        limit.release(throttled=True)
        assert limit.limit == 8
        await limit.acquire()
        limit.release(throttled=True)  # same burst: not cut again
        assert limit.limit == 8
        for _ in range(200):
            await limit.acquire()
            limit.release(succeeded=True)
        return limit.limit

    assert asyncio.run(exercise()) == 16


def test_adaptive_limit_serves_waiters_in_order_and_fails_them_when_stopped() -> None:
    async def exercise() -> tuple[list[int], str]:
        limit = AdaptiveLimit(1)
        await limit.acquire()
        order: list[int] = []

        async def wait_turn(i: int) -> None:
            await limit.acquire()
            order.append(i)
            limit.release()

        waiting = [asyncio.ensure_future(wait_turn(i)) for i in range(3)]
        await asyncio.sleep(0)
        limit.release()
        await asyncio.gather(*waiting)
        await limit.acquire()
        late = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        limit.stop("stopped for the test")
        with pytest.raises(ModelError) as excinfo:
            await late
        return order, str(excinfo.value)

    order, why = asyncio.run(exercise())
    assert order == [0, 1, 2]
    assert why == "stopped for the test"


def test_concurrency_drops_while_the_server_throttles() -> None:
    """64 threads against a server that answers 429 while more than 4 requests are open:
    every call ends answered, and the client backs off instead of hammering."""
    open_now = 0
    lock = threading.Lock()

    def reply(messages: list[dict[str, str]], body: dict[str, object]) -> object:
        nonlocal open_now
        with lock:
            open_now += 1
            busy = open_now > 4
        try:
            if busy:
                return {"status": 429, "error": "slow down"}
            time.sleep(0.02)
            return "ok"
        finally:
            with lock:
                open_now -= 1

    with FakeOpenAI(responder=reply) as fake:
        client = ChatClient(
            base_url=fake.base_url,
            model="m",
            max_connections=32,
            retry=RetryPolicy(max_attempts=30, max_total_s=60, base_delay_s=0.02, max_delay_s=0.2),
        )
        results: list[str] = []

        def ask(i: int) -> None:
            results.append(client.chat([{"role": "user", "content": f"q{i}"}]).content)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()
        assert results == ["ok"] * 64
        assert client.limit.limit < 32
        throttled = sum(1 for r in fake.requests if r.status == 429)
        assert throttled < 64 * 4  # backs off instead of retrying blindly


def test_the_proxy_comes_from_the_environment_once_per_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    assert proxy_for("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "models.internal")
    assert proxy_for("https://api.example.com/v1") == "http://proxy.internal:3128"
    assert proxy_for("https://models.internal/v1") is None
    assert proxy_for("http://api.example.com/v1") is None  # no HTTP_PROXY
    monkeypatch.setenv("ALL_PROXY", "http://all.internal:8080")
    assert proxy_for("http://api.example.com/v1") == "http://all.internal:8080"
    client = ChatClient(base_url="https://api.example.com/v1", model="m")
    try:
        assert client.proxy == "http://proxy.internal:3128"
    finally:
        client.close()
