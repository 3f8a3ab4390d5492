"""The loopback fake OpenAI server, exercised through real sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# httpx imports httpcore lazily. Loading it at collection keeps it in the sys.modules snapshot
# that in-process pytester runs restore; otherwise a run that first imports it leaves httpx
# mapping the exceptions of a discarded httpcore, and httpcore's own errors leak out unmapped.
import httpcore  # noqa: F401
import httpx
import pytest

from pytest_evalindex.testing import FakeOpenAI, Fault, serve_in_subprocess

SECRET_KEY = "sk-test-5ecret-never-logged"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(
        answers={"What is 2+2?": "four", "2+2": "4", "capital": {"content": "Paris"}},
        default="no idea",
    ) as running:
        yield running


@pytest.fixture
def client(server: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5.0) as http:
        yield http


def chat_body(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}


def ask(http: httpx.Client, content: str, **extra: Any) -> httpx.Response:
    return http.post("/chat/completions", json=chat_body(content, **extra))


def reply_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


# ---------------------------------------------------------------------- answers


def test_answers_match_exactly_then_by_substring_then_default(client: httpx.Client) -> None:
    assert reply_text(ask(client, "What is 2+2?")) == "four"
    assert reply_text(ask(client, "Quick: 2+2 equals?")) == "4"
    assert reply_text(ask(client, "The capital of France?")) == "Paris"
    assert reply_text(ask(client, "Something else entirely")) == "no idea"


def test_answers_match_only_the_last_user_message(client: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "2+2"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "and the capital?"},
    ]
    response = client.post("/chat/completions", json={"model": "m", "messages": messages})
    assert reply_text(response) == "Paris"


def test_content_given_as_text_parts_is_matched(client: httpx.Client) -> None:
    parts = [{"type": "text", "text": "What is"}, {"type": "text", "text": "2+2 now"}]
    response = client.post(
        "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": parts}]}
    )
    assert reply_text(response) == "4"


def test_completion_has_openai_shape_echoes_model_and_counts_words(
    client: httpx.Client,
) -> None:
    body = {
        "model": "qwen-under-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "What is 2+2?"},
        ],
    }
    completion = client.post("/chat/completions", json=body).json()
    assert completion["object"] == "chat.completion"
    assert completion["id"].startswith("chatcmpl-")
    assert isinstance(completion["created"], int)
    assert completion["model"] == "qwen-under-test"
    assert completion["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "four"}, "finish_reason": "stop"}
    ]
    assert completion["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


def test_path_without_v1_prefix_is_served(server: FakeOpenAI) -> None:
    root = server.base_url.removesuffix("/v1")
    response = httpx.post(f"{root}/chat/completions", json=chat_body("2+2"))
    assert reply_text(response) == "4"


def test_models_endpoint_lists_the_configured_model() -> None:
    with FakeOpenAI(model="served-model") as running:
        listing = httpx.get(f"{running.base_url}/models").json()
        # a request naming no model is answered as the served one
        completion = httpx.post(
            f"{running.base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}]},
        ).json()
    assert listing["object"] == "list"
    assert [entry["id"] for entry in listing["data"]] == ["served-model"]
    assert completion["model"] == "served-model"


def test_echo_replies_with_the_last_user_message() -> None:
    with (
        FakeOpenAI(answers={"known": "yes"}, echo=True) as running,
        httpx.Client(base_url=running.base_url) as http,
    ):
        assert reply_text(ask(http, "repeat me please")) == "repeat me please"
        assert reply_text(ask(http, "a known prompt")) == "yes"


# ---------------------------------------------------------------------- responder


def test_responder_takes_precedence_and_sees_messages_and_body() -> None:
    seen: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []

    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        seen.append((messages, body))
        return {"content": "the answer is 72", "reasoning_content": "think think"}

    with FakeOpenAI(answers={"2+2": "4"}, responder=responder) as running:
        completion = httpx.post(
            f"{running.base_url}/chat/completions", json=chat_body("2+2", temperature=0.0)
        ).json()
    message = completion["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "the answer is 72",
        "reasoning_content": "think think",
    }
    # reasoning words count as completion tokens, as OpenAI bills them
    assert completion["usage"]["completion_tokens"] == 6
    assert seen == [([{"role": "user", "content": "2+2"}], chat_body("2+2", temperature=0.0))]


def test_responder_usage_and_finish_reason_override_the_defaults() -> None:
    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        return {"content": "cut", "usage": {"completion_tokens": 4096}, "finish_reason": "length"}

    with FakeOpenAI(responder=responder) as running:
        completion = httpx.post(
            f"{running.base_url}/chat/completions", json=chat_body("a b")
        ).json()
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 4096,
        "total_tokens": 4098,
    }


def test_async_responder_runs_on_the_server_loop() -> None:
    async def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        return messages[-1]["content"].upper()

    with FakeOpenAI(responder=responder) as running:
        response = httpx.post(f"{running.base_url}/chat/completions", json=chat_body("shout"))
    assert reply_text(response) == "SHOUT"


def test_responder_exception_becomes_500_with_its_text() -> None:
    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        raise ValueError("no answer for this one")

    with FakeOpenAI(responder=responder) as running:
        response = httpx.post(f"{running.base_url}/chat/completions", json=chat_body("x"))
        logged_status = running.requests[0].status
    assert response.status_code == 500
    assert "no answer for this one" in response.json()["error"]["message"]
    assert logged_status == 500


def test_responder_can_script_an_error_reply() -> None:
    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        return {"status": 400, "error": "context length exceeded"}

    with FakeOpenAI(responder=responder) as running:
        response = httpx.post(f"{running.base_url}/chat/completions", json=chat_body("x"))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "context length exceeded"


def test_blocking_responder_does_not_stall_other_requests() -> None:
    release = threading.Event()

    def responder(messages: list[dict[str, Any]], body: dict[str, Any]) -> str:
        if messages[-1]["content"] == "wait":
            release.wait(5)
        return "done"

    with (
        FakeOpenAI(responder=responder) as running,
        httpx.Client(base_url=running.base_url, timeout=5) as http,
        ThreadPoolExecutor(1) as pool,
    ):
        blocked = pool.submit(ask, http, "wait")
        assert reply_text(ask(http, "go")) == "done"
        assert not blocked.done()
        release.set()
        assert reply_text(blocked.result()) == "done"


# ---------------------------------------------------------------------- bad requests, auth


def test_bad_json_gets_400_with_an_openai_error(client: httpx.Client) -> None:
    response = client.post(
        "/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["type"] == "invalid_request_error"


def test_missing_messages_gets_400(client: httpx.Client, server: FakeOpenAI) -> None:
    response = client.post("/chat/completions", json={"model": "m"})
    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]
    assert server.requests[-1].status == 400


def test_unknown_path_gets_404(client: httpx.Client) -> None:
    response = client.get("/embeddings")
    assert response.status_code == 404
    assert "error" in response.json()


def test_api_key_is_required_and_never_logged() -> None:
    with (
        FakeOpenAI(default="ok", api_key=SECRET_KEY) as running,
        httpx.Client(base_url=running.base_url) as http,
    ):
        missing = ask(http, "hello")
        wrong = http.post(
            "/chat/completions", json=chat_body("hello"), headers={"Authorization": "Bearer nope"}
        )
        right = http.post(
            "/chat/completions",
            json=chat_body("hello"),
            headers={"Authorization": f"Bearer {SECRET_KEY}"},
        )
        models = http.get("/models", headers={"Authorization": f"Bearer {SECRET_KEY}"})
        log = running.requests
        server_repr = repr(running)
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert "Incorrect API key provided" in missing.json()["error"]["message"]
    assert SECRET_KEY not in wrong.text
    assert reply_text(right) == "ok"
    assert models.status_code == 200
    assert [entry.authorized for entry in log] == [False, True, True, True]
    assert [entry.status for entry in log] == [401, 401, 200, 200]
    assert SECRET_KEY not in repr(log)
    assert SECRET_KEY not in server_repr


# ---------------------------------------------------------------------- the log


def test_log_records_each_request(client: httpx.Client, server: FakeOpenAI) -> None:
    before = time.monotonic()
    ask(client, "2+2")
    client.get("/models")
    log = server.requests
    assert server.request_count == 2
    assert [(entry.method, entry.path, entry.status) for entry in log] == [
        ("POST", "/v1/chat/completions", 200),
        ("GET", "/v1/models", 200),
    ]
    assert log[0].json == chat_body("2+2")
    assert log[1].json is None
    assert before <= log[0].received_at <= log[1].received_at <= time.monotonic()
    assert log[0].fault is None
    server.clear_log()
    assert server.request_count == 0
    assert server.requests == []


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("status", [429, 500, 503, 408])
def test_status_fault_is_sent_once_then_normal_answers_resume(
    client: httpx.Client, server: FakeOpenAI, status: int
) -> None:
    server.script_faults([Fault.status_code(status)])
    assert server.faults_remaining == 1
    failed = ask(client, "2+2")
    assert failed.status_code == status
    assert "message" in failed.json()["error"]
    assert reply_text(ask(client, "2+2")) == "4"
    assert server.faults_remaining == 0
    assert [entry.fault for entry in server.requests] == ["status", None]
    assert [entry.status for entry in server.requests] == [status, 200]


def test_retry_after_headers_reach_the_client(client: httpx.Client, server: FakeOpenAI) -> None:
    server.script_faults(
        [Fault.status_code(429, retry_after=1), Fault.status_code(503, retry_after_ms=50)]
    )
    first = ask(client, "x")
    second = ask(client, "x")
    assert (first.status_code, first.headers["retry-after"]) == (429, "1")
    assert (second.status_code, second.headers["retry-after-ms"]) == (503, "50")
    assert "retry-after" not in second.headers


def test_faults_are_consumed_in_order_and_body_can_be_overridden(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.rate_limit(), Fault(status=500, body="plain text")])
    assert ask(client, "x").status_code == 429
    custom = ask(client, "x")
    assert (custom.status_code, custom.text) == (500, "plain text")
    assert ask(client, "x").status_code == 200


def test_close_fault_drops_the_connection_without_a_response(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.close()])
    with pytest.raises(httpx.RemoteProtocolError):
        ask(client, "2+2")
    assert server.requests[0].status is None
    assert server.requests[0].fault == "close"
    assert reply_text(ask(client, "2+2")) == "4"


def test_close_mid_body_fault_sends_a_truncated_body(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.close_mid_body()])
    with client.stream("POST", "/chat/completions", json=chat_body("2+2")) as response:
        assert response.status_code == 200
        declared = int(response.headers["content-length"])
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    assert declared > 0
    assert reply_text(ask(client, "2+2")) == "4"


def test_malformed_json_fault_is_a_200_with_a_broken_body(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.malformed_json()])
    response = ask(client, "2+2")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_empty_choices_fault_is_a_completion_without_choices(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.empty_choices()])
    completion = ask(client, "2+2").json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"] == []


def test_fault_delay_and_slow_fault_delay_the_reply(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.status_code(500, delay=0.2), Fault.slow(0.2)])
    started = time.perf_counter()
    assert ask(client, "2+2").status_code == 500
    middle = time.perf_counter()
    assert reply_text(ask(client, "2+2")) == "4"
    finished = time.perf_counter()
    assert middle - started >= 0.2
    assert finished - middle >= 0.2


def test_slow_fault_trips_a_client_timeout(server: FakeOpenAI) -> None:
    server.script_faults([Fault.slow(1.0)])
    with (
        httpx.Client(base_url=server.base_url, timeout=0.2) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        ask(http, "2+2")


def test_per_prompt_faults_hit_only_matching_requests_under_concurrency(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.faults_for("record-7", [Fault.status_code(503), Fault.status_code(503)])
    server.latency = 0.05
    prompts = [f"question for record-{index}" for index in range(16)]
    with ThreadPoolExecutor(16) as pool:
        statuses = dict(
            zip(prompts, pool.map(lambda p: ask(client, p).status_code, prompts), strict=True)
        )
    assert statuses.pop("question for record-7") == 503
    assert set(statuses.values()) == {200}
    assert server.faults_remaining == 1
    assert ask(client, "question for record-7").status_code == 503
    assert ask(client, "question for record-7").status_code == 200


def test_per_prompt_faults_come_before_the_general_queue(
    client: httpx.Client, server: FakeOpenAI
) -> None:
    server.script_faults([Fault.status_code(500)])
    server.faults_for("special", [Fault.status_code(429)])
    assert ask(client, "a special one").status_code == 429
    assert ask(client, "a special one").status_code == 500
    assert ask(client, "a special one").status_code == 200


def test_fault_arguments_are_checked(server: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        Fault.close(delay=-1)
    with pytest.raises(TypeError, match="Fault"):
        server.script_faults([429])  # type: ignore[list-item]
    server.script_faults([Fault.close()])
    server.clear_faults()
    assert server.faults_remaining == 0


# ---------------------------------------------------------------------- latency, concurrency


def test_latency_delays_each_chat_reply() -> None:
    with FakeOpenAI(default="ok", latency=0.2) as running:
        started = time.perf_counter()
        response = httpx.post(f"{running.base_url}/chat/completions", json=chat_body("x"))
        elapsed = time.perf_counter() - started
    assert reply_text(response) == "ok"
    assert elapsed >= 0.2


def test_latency_can_depend_on_the_request() -> None:
    def latency(body: dict[str, Any]) -> float:
        return 0.2 if body["messages"][-1]["content"] == "slow" else 0.0

    with (
        FakeOpenAI(default="ok", latency=latency) as running,
        httpx.Client(base_url=running.base_url) as http,
    ):
        started = time.perf_counter()
        ask(http, "fast")
        middle = time.perf_counter()
        ask(http, "slow")
        finished = time.perf_counter()
    assert middle - started < 0.2 <= finished - middle


def test_concurrent_requests_wait_their_latency_in_parallel() -> None:
    latency = 0.5
    with (
        FakeOpenAI(default="ok", latency=latency) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as http,
        ThreadPoolExecutor(32) as pool,
    ):
        started = time.perf_counter()
        replies = list(pool.map(lambda index: reply_text(ask(http, f"q{index}")), range(32)))
        elapsed = time.perf_counter() - started
        assert running.request_count == 32
    assert replies == ["ok"] * 32
    # one after another would take 32 x 0.5 = 16 s; the bound leaves room for a busy machine
    assert latency <= elapsed < 8 * latency


# ---------------------------------------------------------------------- HTTP on the wire


def raw_exchange(sock: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """Read one response from a raw socket: status line, headers, body by Content-Length."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    length = int(headers["content-length"])
    while len(rest) < length:
        rest += sock.recv(65536)
    return status_line.encode(), headers, rest[:length]


def raw_request(body: bytes, extra_headers: str = "") -> bytes:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra_headers}\r\n"
    ).encode() + body


def test_one_connection_carries_several_requests(server: FakeOpenAI) -> None:
    body = json.dumps(chat_body("2+2")).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(raw_request(body))
            status, headers, payload = raw_exchange(sock)
            assert status == b"HTTP/1.1 200 OK"
            assert headers["connection"] == "keep-alive"
            assert json.loads(payload)["choices"][0]["message"]["content"] == "4"
        sock.sendall(raw_request(body, "Connection: close\r\n"))
        status, headers, _ = raw_exchange(sock)
        assert headers["connection"] == "close"
        assert sock.recv(1) == b""
    assert server.request_count == 4


def test_chunked_request_body_is_read(server: FakeOpenAI) -> None:
    body = json.dumps(chat_body("What is 2+2?")).encode()
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        _, _, payload = raw_exchange(sock)
    assert json.loads(payload)["choices"][0]["message"]["content"] == "four"


def test_expect_continue_is_answered_before_the_body(server: FakeOpenAI) -> None:
    body = json.dumps(chat_body("2+2")).encode()
    head = raw_request(body, "Expect: 100-continue\r\n").removesuffix(body)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        interim = sock.recv(64)
        sock.sendall(body)
        _, _, payload = raw_exchange(sock)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert json.loads(payload)["choices"][0]["message"]["content"] == "4"


def test_a_failing_latency_callable_gives_500() -> None:
    def latency(body: dict[str, Any]) -> float:
        raise RuntimeError("latency table missing")

    with FakeOpenAI(latency=latency) as running:
        response = httpx.post(f"{running.base_url}/chat/completions", json=chat_body("x"))
        logged_status = running.requests[0].status
    assert response.status_code == 500
    assert "latency table missing" in response.json()["error"]["message"]
    assert logged_status == 500


def test_stop_closes_idle_and_busy_connections_promptly() -> None:
    running = FakeOpenAI(default="ok", latency=10.0).start()
    port = running.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    busy = socket.create_connection(("127.0.0.1", port), timeout=5)
    with idle, busy:
        busy.sendall(raw_request(json.dumps(chat_body("x")).encode()))
        deadline = time.monotonic() + 2
        while running.request_count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.perf_counter()
        running.stop()
        stopped_in = time.perf_counter() - started
        assert idle.recv(1) == b""
        assert busy.recv(1) == b""
    assert stopped_in < 1.0
    assert not accepts_connections(port)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except ConnectionRefusedError:
        return False


def test_port_and_base_url_need_a_running_server() -> None:
    idle = FakeOpenAI()
    with pytest.raises(RuntimeError, match="not running"):
        _ = idle.base_url
    with idle:
        assert idle.base_url == f"http://127.0.0.1:{idle.port}/v1"
        with pytest.raises(RuntimeError, match="already started"):
            idle.start()
    idle.stop()  # stopping twice is harmless


# ---------------------------------------------------------------------- subprocess mode


def test_serve_in_subprocess_answers_requests() -> None:
    options: dict[str, Any] = {"answers": {"ping": "pong"}, "echo_target": True, "model": "sub"}
    with serve_in_subprocess(api_key=SECRET_KEY, **options) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        auth = {"Authorization": f"Bearer {SECRET_KEY}"}
        with httpx.Client(base_url=url, timeout=5) as http:
            assert ask(http, "ping?").status_code == 401
            http.headers.update(auth)
            assert reply_text(ask(http, "ping?")) == "pong"
            assert reply_text(ask(http, "say this back")) == "say this back"
            assert http.get("/models").json()["data"][0]["id"] == "sub"
            stats = http.get(url.removesuffix("/v1") + "/_fake/stats").json()
    assert stats["requests"] == 4
    assert stats["process_cpu_s"] > 0


def test_serve_in_subprocess_reports_a_child_that_cannot_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(RuntimeError, match="did not start"), serve_in_subprocess(answers=missing):
        pass
