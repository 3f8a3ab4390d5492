"""The code sandbox: limits, containment and cleanup, checked on the machine running the tests."""

from __future__ import annotations

import functools
import os
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_evalindex.sandbox import SandboxResult, run_python

IS_ROOT = os.geteuid() == 0


def run(source: str, **limits: object) -> SandboxResult:
    return run_python(textwrap.dedent(source), **limits)  # type: ignore[arg-type]


def pid_is_running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has ended; it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] not in (b"Z", b"X")


@functools.cache
def layers_in_force() -> tuple[str, ...]:
    return run_python("pass", sandbox="basic").layers


def require_layer(layer: str) -> None:
    """Kernel layers depend on the machine: as root all must apply; otherwise skip without."""
    if layer in layers_in_force():
        return
    if IS_ROOT:
        pytest.fail(f"running as root, yet the sandbox did not apply {layer!r}")
    pytest.skip(f"the sandbox cannot apply {layer!r} here (not root, or namespaces forbidden)")


# --------------------------------------------------------------------------- running


def test_runs_a_program_with_stdin_and_captures_output() -> None:
    result = run(
        """
        import sys
        name = input()
        print(f"hello {name}")
        print("to stderr", file=sys.stderr)
        """,
        stdin="world\n",
    )
    assert result.ok, result
    assert result.status == "ok" and result.returncode == 0 and result.reason == ""
    assert result.stdout == "hello world\n"
    assert result.stderr == "to stderr\n"
    assert 0 < result.duration_s < 5
    assert "rlimits" in result.layers and "guard" in result.layers


def test_failure_gives_the_last_traceback_line_without_sandbox_frames() -> None:
    result = run(
        """
        def f(x):
            return 1 / x
        f(0)
        """
    )
    assert result.status == "failed" and result.returncode == 1
    assert result.reason == "ZeroDivisionError: division by zero"
    assert 'File "main.py", line 4' in result.stderr
    assert "sandbox.py" not in result.stderr


def test_syntax_error_and_exit_status() -> None:
    assert run("def f(:\n    pass\n").reason.startswith("SyntaxError")
    result = run("import sys\nsys.exit(3)\n")
    assert (result.status, result.returncode, result.reason) == ("failed", 3, "exit status 3")


def test_exit_builtins_and_site_packages() -> None:
    assert run("print(1)\nexit()\nprint(2)\n").stdout == "1\n"
    assert run("quit(5)\n").returncode == 5
    # the standard library only, unless installed packages are asked for
    assert run("import yaml\n").reason == "ModuleNotFoundError: No module named 'yaml'"
    assert run("import yaml\n", site_packages=True).ok


def test_signal_that_ends_the_program_is_reported() -> None:
    result = run("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    assert result.status == "killed"
    assert result.returncode == -signal.SIGTERM
    assert "SIGTERM" in result.reason


def test_environment_is_built_from_scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    result = run("import os\nprint(sorted(os.environ))\nprint(repr(dict(os.environ)))\n")
    assert result.ok, result
    assert "sk-secret-value" not in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout and "PYTHONPATH" not in result.stdout


def test_runs_in_a_fresh_directory_that_is_deleted_afterwards() -> None:
    result = run(
        """
        import os
        open("scratch.txt", "w").write("data")
        os.mkdir("sub")
        os.chmod("sub", 0)  # even a folder the program locked is removed
        print(os.getcwd())
        """
    )
    assert result.ok, result
    workdir = Path(result.stdout.strip())
    assert workdir != Path.cwd()
    assert not workdir.exists()


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        run_python("pass", timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        run_python("pass", memory_mb=0)


def test_many_threads_can_run_the_sandbox_at_once() -> None:
    def job(number: int) -> str:
        return run_python(f"import time\ntime.sleep(0.05)\nprint({number} * 2)\n").stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(job, range(12)))
    assert outputs == [f"{n * 2}\n" for n in range(12)]


# --------------------------------------------------------------------------- limits


def test_infinite_loop_times_out_and_is_killed() -> None:
    started = time.monotonic()
    result = run("while True:\n    pass\n", timeout_s=1.0)
    assert result.status == "timeout"
    assert result.reason == "time limit exceeded (1 s wall time)"
    assert result.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


def test_cpu_time_limit() -> None:
    result = run("while True:\n    pass\n", timeout_s=10.0, cpu_s=1.0)
    assert result.status == "timeout"
    assert "CPU time" in result.reason
    assert result.duration_s < 6


def test_allocating_10_gb_is_a_memory_failure() -> None:
    result = run("block = bytearray(10 * 1024**3)\n", memory_mb=512)
    assert result.status == "memory"
    assert result.reason == "memory limit exceeded (512 MB)"
    assert not result.ok


def test_huge_output_is_capped_and_stops_the_run() -> None:
    started = time.monotonic()
    result = run("while True:\n    print('x' * 1000)\n", output_limit=10_000)
    assert result.status == "output_limit"
    assert len(result.stdout) == 10_000
    assert "10000 bytes" in result.reason
    assert time.monotonic() - started < 5


def test_stderr_is_capped_too() -> None:
    result = run("import sys\nsys.stderr.write('e' * 50_000)\n", output_limit=1_000)
    assert result.status == "output_limit"
    assert len(result.stderr) <= 1_000


def test_file_size_limit_fails_the_write_instead_of_killing() -> None:
    result = run("open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))\n", file_size_mb=1)
    assert result.status == "failed"
    assert "File too large" in result.reason


# --------------------------------------------------------------------------- containment


@pytest.mark.parametrize("sandbox", ["basic", "strict"])
@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_writing_outside_its_directory_is_refused(
    tmp_path: Path, guard: bool, sandbox: str
) -> None:
    if not guard and sandbox == "basic":
        require_layer("uid")
    target = tmp_path / "escaped.txt"
    result = run(f"open({str(target)!r}, 'w').write('escaped')\n", guard=guard, sandbox=sandbox)
    assert result.status == "failed"
    if guard:
        assert "PermissionError" in result.reason
    elif sandbox == "basic":
        assert "PermissionError" in result.reason
        assert "uid" in result.layers
    else:  # the test's folder is not in the program's view of the file system
        assert "FileNotFoundError" in result.reason
        assert "mountns" in result.layers
    assert not target.exists()


def test_removing_and_renaming_outside_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    for call in (
        f"os.remove({str(victim)!r})",
        f"os.rename({str(victim)!r}, 'stolen.txt')",
        f"shutil.rmtree({str(tmp_path)!r})",
        f"os.chmod({str(victim)!r}, 0)",
    ):
        result = run(f"import os, shutil\n{call}\n")
        assert result.status == "failed", call
        assert "does not allow" in result.reason, call
    assert victim.read_text() == "precious"


@pytest.fixture
def listening_server() -> Iterator[tuple[socket.socket, int]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server, server.getsockname()[1]
    server.close()


def no_connection_arrived(server: socket.socket) -> bool:
    try:
        connection, _ = server.accept()
    except TimeoutError:
        return True
    connection.close()
    return False


@pytest.mark.parametrize("sandbox", ["basic", "strict"])
@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_no_connection_reaches_a_loopback_server(
    listening_server: tuple[socket.socket, int], guard: bool, sandbox: str
) -> None:
    if not guard and sandbox == "basic":
        require_layer("netns")
    server, port = listening_server
    result = run(
        f"""
        import socket
        client = socket.create_connection(("127.0.0.1", {port}), timeout=2)
        client.sendall(b"leak")
        print("connected")
        """,
        guard=guard,
        sandbox=sandbox,
    )
    assert result.status == "failed"
    assert "connected" not in result.stdout
    assert no_connection_arrived(server)
    if guard:
        assert "network" in result.reason
    else:
        assert "netns" in result.layers
        # bubblewrap brings the namespace's own loopback up: nobody listens there
        expected = "unreachable" if sandbox == "basic" else "Connection refused"
        assert expected in result.reason


def test_network_true_allows_the_connection(listening_server: tuple[socket.socket, int]) -> None:
    server, port = listening_server
    accepted: list[bytes] = []

    def accept() -> None:
        server.settimeout(10)
        connection, _ = server.accept()
        accepted.append(connection.recv(10))
        connection.close()

    thread = threading.Thread(target=accept)
    thread.start()
    result = run(
        f"""
        import socket
        socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"hello")
        """,
        network=True,
    )
    thread.join(10)
    assert result.ok, result
    assert accepted == [b"hello"]
    assert "netns" not in result.layers


def test_starting_processes_is_refused() -> None:
    for program in (
        "import os\nos.fork()\n",
        "import subprocess\nsubprocess.run(['true'])\n",
        "import os\nos.system('true')\n",
        "import _posixsubprocess\n_posixsubprocess.fork_exec()\n",
    ):
        result = run(program)
        assert result.status == "failed", program
        assert "does not allow starting processes" in result.reason, program


def test_limits_cannot_be_raised_but_the_stack_can() -> None:
    raised = run("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))\n")
    assert raised.status == "failed"
    assert "does not allow raising the sandbox's resource limits" in raised.reason
    stack = run(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_STACK, (256 * 1024 * 1024, resource.RLIM_INFINITY))
        print(resource.getrlimit(resource.RLIMIT_STACK)[0])
        """
    )
    assert stack.stdout == f"{256 * 1024 * 1024}\n"


def test_sqlite_database_outside_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "outside.db"
    result = run(f"import sqlite3\nsqlite3.connect({str(target)!r}).execute('create table t(x)')\n")
    assert "does not allow sqlite3.connect outside its directory" in result.reason
    assert not target.exists()
    inside = run("import sqlite3\nsqlite3.connect('inside.db').execute('create table t(x)')\n")
    assert inside.ok, inside


def test_native_calls_through_ctypes_are_refused() -> None:
    result = run("import ctypes\nctypes.CDLL(None).getpid()\n")
    assert result.status == "failed"
    assert "does not allow importing ctypes" in result.reason


def test_signals_to_other_processes_are_refused() -> None:
    result = run("import os\nos.kill(os.getppid(), 9)\n")
    assert result.status == "failed"
    assert "signals to other processes" in result.reason


def test_fork_bomb_ends_at_once_under_the_guard() -> None:
    started = time.monotonic()
    result = run(
        """
        import os
        while True:
            os.fork()
        """,
        timeout_s=5.0,
    )
    assert result.status == "failed"
    assert time.monotonic() - started < 4


def test_fork_bomb_is_bounded_by_the_kernel_and_everything_is_killed() -> None:
    require_layer("nproc")
    result = run(
        """
        import os, time
        children = []
        while True:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
        print(len(children), *children)
        """,
        guard=False,
        max_processes=16,
        timeout_s=10.0,
        sandbox="basic",  # the children's pids are the host's only without a pid namespace
    )
    assert result.ok, result
    assert "nproc" in result.layers
    count, *children = map(int, result.stdout.split())
    assert count == len(children) < 16
    assert not any(pid_is_running(pid) for pid in children)


def test_a_process_that_left_the_group_is_killed_too() -> None:
    require_layer("uid")  # found by its user id, which only a run started as root has
    result = run(
        """
        import os, time
        pid = os.fork()
        if pid == 0:
            os.setsid()  # out of the process group the sandbox kills
            time.sleep(60)
            os._exit(0)
        print(pid)
        """,
        guard=False,
        sandbox="basic",  # its pid is the host's only without a pid namespace
    )
    assert result.ok, result
    escaped = int(result.stdout)
    deadline = time.monotonic() + 2
    while pid_is_running(escaped) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not pid_is_running(escaped)


def test_runs_as_an_unprivileged_user_when_started_as_root() -> None:
    require_layer("uid")
    result = run("import os\nprint(os.getuid(), os.geteuid(), os.getgroups())\n")
    assert result.ok, result
    uid, euid, groups = result.stdout.split(" ", 2)
    assert int(uid) == int(euid) > 65535
    assert groups.strip() == "[]"
    assert {"rlimits", "netns", "uid", "nproc", "guard"} <= set(result.layers)
