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

from pytest_evalindex.scoring.sandbox import SandboxResult, run_python

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


# --------------------------------------------------------------------------- bubblewrap
# The attacks a model's answer could make on the machine running the tests, each run under
# bubblewrap (``sandbox="strict"``) on this machine and contained.

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def token() -> str:
    import secrets

    return f"tok-{secrets.token_hex(12)}"


def read_attempt(path: str) -> str:
    """A program that prints the file's content, or why it could not read it."""
    return f"""
    try:
        print(open({path!r}).read())
    except OSError as exc:
        print(type(exc).__name__)
    """


def test_bubblewrap_is_available_on_this_machine() -> None:
    from pytest_evalindex.scoring.sandbox import bubblewrap_problem

    assert bubblewrap_problem() == ""
    result = run("print('ok')")
    assert result.ok and result.stdout == "ok\n"
    assert result.isolation == "bubblewrap"
    assert {"mountns", "pidns", "netns", "rlimits", "guard"} <= set(result.layers)
    assert run("pass", sandbox="basic").isolation == "basic"


def test_a_token_in_the_home_folder_is_not_visible(
    tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".token").write_text(token)
    monkeypatch.setenv("HOME", str(home))
    for path in (str(home / ".token"), "~/.token"):
        program = read_attempt(path).replace("open(", "open(__import__('os').path.expanduser(")
        program = program.replace(").read()", ")).read()")
        result = run(program, sandbox="strict")
        assert result.ok, result
        assert token not in result.stdout and result.stdout.strip() == "FileNotFoundError"
    # the same program in the basic sandbox reads it: the test can tell the difference
    leaked = run(read_attempt(str(home / ".token")), sandbox="basic")
    assert token in leaked.stdout


def test_a_dotenv_beside_the_spec_and_the_project_checkout_are_not_visible(
    tmp_path: Path, token: str
) -> None:
    (tmp_path / ".env").write_text(f"API_TOKEN={token}\n")
    for path in (
        str(tmp_path / ".env"),
        str(PROJECT_ROOT / "pyproject.toml"),
        str(Path.cwd() / "pyproject.toml"),
        str(Path(__file__)),
    ):
        result = run(read_attempt(path), sandbox="strict")
        assert result.ok, result
        assert result.stdout.strip() == "FileNotFoundError", path


def test_only_what_python_needs_is_in_view() -> None:
    result = run(
        """
        import os, sys
        print(sorted(os.listdir("/")))
        print(os.listdir("/tmp"), os.path.exists("/etc/passwd"), os.path.exists("/home"))
        print(sys.prefix)
        """,
        sandbox="strict",
    )
    assert result.ok, result
    top, tmp, prefix = result.stdout.splitlines()
    assert set(eval(top)) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc",
                              "run", "sbin", "tmp", "usr", "root", "opt", "home"}  # fmt: skip
    # /tmp holds only the program's own directory; no passwd, no home folders
    assert tmp.startswith("['evalindex-sandbox-") and "False False" in tmp
    assert os.path.realpath(prefix) == os.path.realpath(sys_base_prefix())


def sys_base_prefix() -> str:
    import sys

    return sys.base_prefix


def test_other_processes_environments_are_not_visible(
    token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    monkeypatch.setenv("EVALINDEX_TEST_TOKEN", token)
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        program = f"""
        import os
        found = []
        for pid in [os.getppid(), {os.getpid()}, {sibling.pid}, 1] + os.listdir("/proc"):
            try:
                found.append(open(f"/proc/{{pid}}/environ").read())
            except (OSError, ValueError):
                pass
        print(repr(found))
        """
        result = run(program, sandbox="strict")
        assert result.ok, result
        assert token not in result.stdout
        assert "EVALINDEX_TEST_TOKEN" not in result.stdout
    finally:
        sibling.kill()
        sibling.wait()


def test_proc_shows_only_the_programs_own_processes() -> None:
    result = run(
        """
        import os
        print(os.getpid(), sorted(int(n) for n in os.listdir("/proc") if n.isdigit()))
        """,
        sandbox="strict",
    )
    assert result.ok, result
    own, listed = result.stdout.split(" ", 1)
    pids = eval(listed)
    assert int(own) in pids and max(pids) < 10  # bubblewrap's init and the program
    assert os.getpid() not in pids or os.getpid() < 10


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "kernel-only"])
def test_writes_outside_never_reach_the_host(tmp_path: Path, guard: bool) -> None:
    import uuid

    name = f"evalindex-escape-{uuid.uuid4().hex}"
    targets = [tmp_path / "escaped.txt", Path("/tmp") / name, Path("/dev/shm") / name]
    program = "import os\n" + "".join(
        f"try:\n    open({str(p)!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for p in targets
    )
    program += "print(os.path.exists('/tmp/' + " + repr(name) + "))\n"
    result = run_python(program, guard=guard, sandbox="strict")
    assert result.ok, result
    # without the guard the private /tmp takes the write; on the host nothing appears
    assert result.stdout.strip() == ("False" if guard else "True")
    assert not any(p.exists() for p in targets)


def host_processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline and pid_is_running(int(name)):
                found.append(int(name))
    return found


def test_a_daemonised_child_is_gone_after_the_run() -> None:
    import uuid

    marker = f"evalindex-daemon-{uuid.uuid4().hex}"
    result = run(
        f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # a daemon: its own session, its parent gone
                for fd in (0, 1, 2):
                    os.close(fd)
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)",
                                          {marker!r}])
            os._exit(0)
        for _ in range(200):  # until the daemon runs
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            if any({marker!r}.encode() in open(f"/proc/{{p}}/cmdline", "rb").read()
                   for p in pids if os.path.exists(f"/proc/{{p}}/cmdline")):
                print("started")
                break
            time.sleep(0.01)
        """,
        guard=False,
        sandbox="strict",
    )
    assert result.ok, result
    assert result.stdout == "started\n"
    assert host_processes_with(marker) == []
