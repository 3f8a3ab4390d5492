"""Run untrusted Python source in a child process with limits (see docs/code.md).

    run_python(source, *, stdin="", timeout_s=10.0, ..., sandbox="auto") -> SandboxResult

Each call writes the program to a fresh temporary directory, runs it there with
``python -I -S`` (isolated mode, no site-packages unless asked) under a minimal environment
built from scratch, and deletes the directory afterwards. The child is the leader of a new
session, so the whole process group is killed at the end of every run, timeout or not, and
the run returns only once none of its processes is still running.

With bubblewrap (``bwrap``; ``sandbox="auto"`` when it works here, ``"strict"`` to require
it) the program runs in new mount, pid, network and IPC namespaces and sees a file system
made of read-only binds of only what Python needs (``/usr``, the Python installation, with
``site_packages`` the virtualenv), a private ``/tmp``, its own ``/proc`` and a minimal
``/dev``, and its directory: not the user's home, the project, the caches or other
processes. ``SandboxResult.isolation`` says whether it ran so (``"bubblewrap"``) or not
(``"basic"``). Without bubblewrap only the layers below apply.

Layers, each applied when the operating system allows it; ``SandboxResult.layers`` names
the ones that were in force for that run:

- ``mountns``, ``pidns``: the private file system and process view (bubblewrap).
- ``rlimits``: CPU seconds, address space (memory), size of one written file, open files,
  no core dumps.
- ``netns``: a new, empty network namespace (no interface but a loopback that is down), so no
  connection reaches anything, the host's loopback included. Needs root, or unprivileged
  user namespaces (then the child also gets its own user namespace). Under bubblewrap, its
  ``--unshare-net`` (the loopback is up, but only the program is behind it).
- ``uid``: when the caller is root, the child switches to a fresh unprivileged user id that no
  file belongs to, keeping only the capability to read and search directories (Python's own
  files may live under a private home). It can then write only where everybody may write
  (its directory, /tmp, /dev/shm), it cannot signal other users' processes, and every process
  it leaves behind is found by that id and killed, even one that left the process group.
- ``nproc``: a limit on the processes and threads of that user id, which stops fork bombs in
  the kernel. Applied with ``uid`` or a user namespace (a shared user id would count every
  process of the user running the tests).
- ``guard``: an audit hook (PEP 578) installed before the program runs. It refuses process
  creation (fork, exec, spawn, subprocess, os.system), signals to other processes, network
  calls and DNS, ctypes, raising the sandbox's resource limits, and file writes, removals
  and renames outside the run's directory.
  An audit hook is not a security boundary: native code or a determined attacker can get
  around it. It stops ordinary and accidental damage; the layers above are the kernel's.

Without bubblewrap, reading files is not restricted by any layer. Thread safety: every call
owns its directory, pipes and process; calls may run concurrently from many threads and
processes.

This module is also the child's bootstrap: the parent runs ``python -I -S sandbox.py
SETTINGS``, which applies the limits to its own process and then executes the program. Its
top-level imports are therefore kept small, and the parent's tools are imported inside the
functions that use them: each import here is paid by every run.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see above)
if TYPE_CHECKING:
    import ctypes
    import subprocess

PROGRAM_NAME = "main.py"
DEFAULT_OUTPUT_LIMIT = 64 * 1024
# the child exits with this status when the program ran out of memory (a MemoryError)
MEMORY_EXIT_CODE = 121
# the first line the child writes to stderr: the isolation layers in force
_ISOLATION_MARKER = "evalindex-sandbox-isolation:"
_READ_CHUNK = 1 << 16
_POLL_S = 0.1  # how often a silent child is checked for having exited
# a fresh user id per run: base + (pid << 9 | slot), unique among the runs alive on this
# machine (pids are below 2**22); the largest is below 2**32 - 1, the invalid id
_UID_BASE = 0x4000_0000
_UID_SLOTS = 512
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_KEEPCAPS = 8
_PR_SET_NO_NEW_PRIVS = 38
_CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_uid_lock = _thread.allocate_lock()
_uids_in_use: set[int] = set()
_uid_next_slot = 0


class SandboxResult:
    """What a run did.

    ``status``: ``ok`` (exit status 0), ``failed`` (another exit status), ``timeout`` (wall
    or CPU time limit), ``memory`` (memory limit), ``output_limit`` (too much output, the run
    was stopped) or ``killed`` (ended by a signal it did not get from the sandbox).
    ``returncode`` is negative for the signal that ended the process. ``stdout`` and
    ``stderr`` hold at most ``output_limit`` bytes each, decoded as UTF-8 (bad bytes
    replaced). ``reason`` is one line for humans ("" when ok). ``isolation`` is
    ``"bubblewrap"`` (a private view of the file system, see the module doc) or ``"basic"``;
    ``layers`` names the layers that were in force.

    A plain class rather than a dataclass: the child imports this module too, and the
    dataclasses module would add milliseconds to every run.
    """

    __slots__ = (
        "duration_s",
        "isolation",
        "layers",
        "reason",
        "returncode",
        "status",
        "stderr",
        "stdout",
    )

    def __init__(
        self,
        status: str,
        returncode: int | None,
        stdout: str,
        stderr: str,
        duration_s: float,
        reason: str,
        layers: tuple[str, ...] = (),
        isolation: str = "basic",
    ) -> None:
        self.status = status
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.duration_s = duration_s
        self.reason = reason
        self.layers = layers
        self.isolation = isolation

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        return (
            f"SandboxResult(status={self.status!r}, returncode={self.returncode!r}, "
            f"reason={self.reason!r}, duration_s={self.duration_s:.3f}, "
            f"stdout={_shorten(self.stdout)!r}, stderr={_shorten(self.stderr)!r}, "
            f"isolation={self.isolation!r}, layers={self.layers!r})"
        )


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


SANDBOX_MODES = ("auto", "strict", "basic")


class SandboxUnavailable(OSError):
    """``sandbox="strict"`` was asked for and bubblewrap cannot run here."""


def run_python(
    source: str,
    *,
    stdin: str = "",
    timeout_s: float = 10.0,
    cpu_s: float | None = None,
    memory_mb: int = 1024,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    network: bool = False,
    file_size_mb: int = 64,
    max_processes: int = 64,
    guard: bool = True,
    site_packages: bool = False,
    sandbox: str = "auto",
) -> SandboxResult:
    """Run ``source`` as a Python program in a fresh directory and return what happened.

    ``timeout_s`` is wall time, ``cpu_s`` CPU time (default: ``timeout_s``). ``memory_mb``
    caps the address space. ``output_limit`` caps stdout and stderr (bytes each); a run that
    goes over is stopped. ``network=True`` keeps the host's network and lets the guard allow
    sockets. ``max_processes`` caps processes and threads of the run's user id (layer
    ``nproc``). ``guard=False`` leaves only the kernel's layers (for testing those).
    ``site_packages=True`` lets the program import the installed packages.
    ``sandbox``: ``auto`` runs the program under bubblewrap when it works on this machine
    (see ``bubblewrap_problem``), else with the basic layers only; ``strict`` requires
    bubblewrap (SandboxUnavailable otherwise); ``basic`` never uses it.

    Raises ValueError for a bad limit and OSError when the child cannot be started at all.
    """
    _check_limits(timeout_s, cpu_s, memory_mb, output_limit, file_size_mb, max_processes)
    if sandbox not in SANDBOX_MODES:
        raise ValueError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got {sandbox!r}")
    if sys.platform != "linux":
        raise OSError("the code sandbox runs on Linux only")
    bwrap = None
    if sandbox != "basic":
        bwrap, problem = _bubblewrap()
        if bwrap is None and sandbox == "strict":
            raise SandboxUnavailable(problem)
    return _run(
        source,
        stdin=stdin,
        timeout_s=timeout_s,
        cpu_limit=timeout_s if cpu_s is None else cpu_s,
        memory_mb=memory_mb,
        output_limit=output_limit,
        network=network,
        file_size_mb=file_size_mb,
        max_processes=max_processes,
        guard=guard,
        site_packages=site_packages,
        bwrap=bwrap,
    )


def _run(
    source: str,
    *,
    stdin: str,
    timeout_s: float,
    cpu_limit: float,
    memory_mb: int,
    output_limit: int,
    network: bool,
    file_size_mb: int,
    max_processes: int,
    guard: bool,
    site_packages: bool,
    bwrap: str | None,
) -> SandboxResult:
    import subprocess
    import tempfile

    workdir = tempfile.mkdtemp(prefix="evalindex-sandbox-")
    uid = _take_uid() if os.geteuid() == 0 else -1
    info_read = info_write = -1
    try:
        program = os.path.join(workdir, PROGRAM_NAME)
        with open(program, "w", encoding="utf-8") as handle:
            handle.write(source)
        if uid >= 0:
            os.chown(workdir, uid, uid)
            os.chown(program, uid, uid)
        settings = {
            "memory": memory_mb * 1024 * 1024,
            "cpu": max(1, int(-(-cpu_limit // 1))),  # whole seconds, rounded up
            "fsize": file_size_mb * 1024 * 1024,
            "nproc": max_processes,
            "network": int(network),
            "guard": int(guard),
            "uid": uid,
            "bwrap": int(bwrap is not None),
        }
        environment = _child_environment(workdir)
        pass_fds: tuple[int, ...] = ()
        if bwrap is None:
            interpreter, bootstrap, prefix = sys.executable, os.path.abspath(__file__), []
        else:
            if uid < 0:  # no user id of its own: the pid namespace tells its processes
                info_read, info_write = os.pipe()
                pass_fds = (info_write,)
            interpreter, bootstrap = _interpreter(site_packages), _BOOTSTRAP_INSIDE
            prefix = _bubblewrap_command(
                bwrap,
                workdir,
                environment,
                site_packages=site_packages,
                network=network,
                as_root=uid >= 0,
                info_fd=info_write,
            )
        command = [*prefix, interpreter, "-I", "-B", "-X", "utf8"]
        if not site_packages:
            command.append("-S")
        command += [bootstrap, ",".join(f"{k}={v}" for k, v in settings.items())]
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin.encode("utf-8"))
            stdin_file.seek(0)
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=environment,
                stdin=stdin_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=pass_fds,
            )
            if info_write >= 0:
                os.close(info_write)
                info_write = -1
            try:
                stopped_by, out, err = _collect_output(process, started + timeout_s, output_limit)
            finally:
                # the leader is alive or a zombie not yet reaped, so its group id is still ours
                _kill_group(process.pid, wait=uid < 0 and bwrap is None)
                returncode, cpu_used = _reap(process)
                if info_read >= 0:
                    _kill_namespace(info_read)
            duration = time.monotonic() - started
    finally:
        for fd in (info_read, info_write):
            if fd >= 0:
                os.close(fd)
        if uid >= 0:
            _kill_until_gone(owner=uid)  # also what left the process group
            _return_uid(uid)
        _remove_tree(workdir)

    stdout = out.decode("utf-8", "replace")
    stderr, layers = _split_isolation(err.decode("utf-8", "replace"))
    if bwrap is not None:
        returncode = _bubblewrap_status(returncode)
        # bubblewrap's own CPU time, not the program's: a SIGKILL at the hard CPU limit
        # comes after at least that long on the clock
        cpu_used = max(cpu_used, duration)
    status, reason = _classify(
        stopped_by,
        returncode,
        stderr,
        cpu_used=cpu_used,
        cpu_limit=cpu_limit,
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        output_limit=output_limit,
    )
    isolation = "bubblewrap" if bwrap is not None else "basic"
    return SandboxResult(status, returncode, stdout, stderr, duration, reason, layers, isolation)


# --------------------------------------------------------------------------- bubblewrap
# Where the bootstrap (this file) appears inside the sandbox: the project checkout that
# holds it is not there.
_BOOTSTRAP_INSIDE = "/run/evalindex/sandbox.py"
# bubblewrap's status for a command ended by signal N
_SIGNAL_STATUS_BASE = 128
_probes: dict[str, str] = {}  # bwrap binary -> "" when it works, else why not
_probe_lock = _thread.allocate_lock()


def bubblewrap_problem() -> str:
    """An empty string when bubblewrap isolates programs on this machine, else why not.

    Found by running a small program under it once per process and binary (``bwrap`` on
    ``PATH``); a changed ``PATH`` is probed anew.
    """
    return _bubblewrap()[1]


def _bubblewrap() -> tuple[str | None, str]:
    import shutil

    path = shutil.which("bwrap")
    if path is None:
        return None, "bubblewrap is not installed (no `bwrap` on PATH)"
    with _probe_lock:
        problem = _probes.get(path)
        if problem is None:
            problem = _probes[path] = _probe(path)
    return (None if problem else path), problem


def _probe(bwrap: str) -> str:
    try:
        result = _run(
            "import os\nprint(os.getpid())\n",
            stdin="",
            timeout_s=20.0,
            cpu_limit=20.0,
            memory_mb=1024,
            output_limit=DEFAULT_OUTPUT_LIMIT,
            network=False,
            file_size_mb=1,
            max_processes=16,
            guard=True,
            site_packages=False,
            bwrap=bwrap,
        )
    except OSError as exc:
        return f"{bwrap} cannot be started ({exc})"
    if result.ok and "mountns" in result.layers:
        return ""
    detail = _last_line(result.stderr) or result.reason or result.status
    return (
        f"{bwrap} cannot create the sandbox's namespaces here ({detail}); user namespaces "
        "may be forbidden (kernel.unprivileged_userns_clone, "
        "kernel.apparmor_restrict_unprivileged_userns)"
    )


def _interpreter(site_packages: bool) -> str:
    """The Python to run inside: the real binary, unless a virtualenv's packages are asked
    for (its ``bin/python`` is what makes them importable)."""
    return sys.executable if site_packages else os.path.realpath(sys.executable)


def _read_only_paths(site_packages: bool) -> list[str]:
    """What the program may read besides its own directory: the system's shared libraries
    (/usr), the Python installation, and with ``site_packages`` the virtualenv."""
    paths = ["/usr", sys.base_prefix, sys.base_exec_prefix]
    executable = os.path.realpath(sys.executable)
    paths.append(executable)  # a copied interpreter may live outside its prefix
    if site_packages:
        paths += [sys.prefix, sys.exec_prefix]
    kept: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _bubblewrap_command(
    bwrap: str,
    workdir: str,
    environment: dict[str, str],
    *,
    site_packages: bool,
    network: bool,
    as_root: bool,
    info_fd: int,
) -> list[str]:
    command = [bwrap, "--die-with-parent", "--new-session"]
    if as_root:
        # no user namespace: the bootstrap switches to the run's own user id, which the
        # process limit counts and the clean-up finds; root in a user namespace would be
        # exempt from the process limit. Only the capabilities that switch are kept.
        command += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not network:
            command.append("--unshare-net")
        for capability in ("CAP_SETUID", "CAP_SETGID", "CAP_DAC_READ_SEARCH"):
            command += ["--cap-add", capability]
    else:
        command.append("--unshare-all")
        if network:
            command.append("--share-net")
    if info_fd >= 0:
        command += ["--info-fd", str(info_fd)]
    for path in _read_only_paths(site_packages):
        command += ["--ro-bind", path, path]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            command += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            command += ["--ro-bind", name, name]
    # the dynamic loader's cache; without it libraries in multiarch folders are not found
    command += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    command += ["--ro-bind", os.path.abspath(__file__), _BOOTSTRAP_INSIDE]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "1777", "--size", str(64 << 20), "--tmpfs", "/tmp"]
    command += ["--bind", workdir, workdir, "--chdir", workdir, "--clearenv"]
    for key, value in environment.items():
        command += ["--setenv", key, value]
    command.append("--")
    return command


def _bubblewrap_status(returncode: int) -> int:
    """bubblewrap exits with 128 + N when the program was ended by signal N."""
    number = returncode - _SIGNAL_STATUS_BASE
    if 0 < number < 65 and returncode != MEMORY_EXIT_CODE:
        return -number
    return returncode


def _kill_namespace(info_read: int) -> None:
    """Kill what is left in the run's pid namespace and wait until it is gone.

    bubblewrap exits when the program does; its init process and anything the program left
    behind then die with the namespace, shortly after. ``info_read`` is the pipe on which
    bubblewrap named that namespace.
    """
    import json

    try:
        os.set_blocking(info_read, False)  # never wait for a bubblewrap that said nothing
        info = json.loads(os.read(info_read, _READ_CHUNK) or b"{}")
        namespace = f"pid:[{int(info['pid-namespace'])}]"
        init = int(info["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    try:
        own = os.readlink(f"/proc/{init}/ns/pid") == namespace
    except OSError:
        own = False
    if own:
        import contextlib

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(init, signal.SIGKILL)  # the kernel then kills the whole namespace
    _kill_until_gone(namespace=namespace)


def _check_limits(
    timeout_s: float,
    cpu_s: float | None,
    memory_mb: int,
    output_limit: int,
    file_size_mb: int,
    max_processes: int,
) -> None:
    for name, value in (("timeout_s", timeout_s), ("cpu_s", cpu_s)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    for name, number in (
        ("memory_mb", memory_mb),
        ("output_limit", output_limit),
        ("file_size_mb", file_size_mb),
        ("max_processes", max_processes),
    ):
        if not isinstance(number, int) or number < 1:
            raise ValueError(f"{name} must be a positive integer, got {number!r}")


def _take_uid() -> int:
    """A user id that no other live run on this machine has; give it back with _return_uid.

    The sweep after a run kills every process of its id, so two live runs must never share
    one: ids are unique per process (pid) and, inside a process, taken from a set in use.
    """
    global _uid_next_slot
    with _uid_lock:
        for _ in range(_UID_SLOTS):
            slot = _uid_next_slot
            _uid_next_slot = (_uid_next_slot + 1) % _UID_SLOTS
            uid = _UID_BASE + ((os.getpid() & 0x3FFFFF) << 9 | slot)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid
    raise RuntimeError(f"more than {_UID_SLOTS} sandbox runs at once in one process")


def _return_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


def _child_environment(workdir: str) -> dict[str, str]:
    """Built from scratch: nothing of the caller's environment (API keys...) gets through."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        # numeric libraries reserve memory per thread; one thread keeps them under the cap
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _collect_output(
    process: subprocess.Popen[bytes], deadline: float, limit: int
) -> tuple[str | None, bytes, bytes]:
    """Read stdout and stderr until both close; stop early at the deadline or the limit.

    Returns (why it stopped early: "timeout", "output_limit" or None; stdout; stderr).
    """
    import selectors

    assert process.stdout is not None and process.stderr is not None
    stdout_fd = process.stdout.fileno()
    stderr_fd = process.stderr.fileno()
    pid = process.pid
    buffers = {stdout_fd: bytearray(), stderr_fd: bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", bytes(buffers[stdout_fd]), bytes(buffers[stderr_fd])
            ready = selector.select(min(remaining, _POLL_S))
            for key, _ in ready:
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                buffer += chunk
                if len(buffer) > limit:
                    del buffer[limit:]
                    return "output_limit", bytes(buffers[stdout_fd]), bytes(buffers[stderr_fd])
            if not ready and _has_exited(pid):
                break  # a leftover descendant holds the pipes open; the group is killed next
    # both pipes closed: wait (without reaping) for the leader to exit, up to the deadline
    pause = 0.001
    while not _has_exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", bytes(buffers[stdout_fd]), bytes(buffers[stderr_fd])
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.05)
    return None, bytes(buffers[stdout_fd]), bytes(buffers[stderr_fd])


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, leaving it unreaped (its pid and group id stay ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int, *, wait: bool) -> None:
    """SIGKILL the process group; with ``wait``, until none of its members is running.

    Called while the leader is unreaped, so the group id cannot belong to anybody else.
    Waiting matters: a killed process takes a moment to die, and whoever checks right after
    the run must find nothing of it still running. (Runs with their own user id wait in
    ``_kill_until_gone(owner=...)`` instead, which also finds processes that left the group.)
    """
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    if wait:
        _kill_until_gone(group=pgid)


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Reap the child: its exit status (negative: signal) and the CPU seconds it used."""
    try:
        _, status, usage = os.wait4(process.pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
        cpu_used = usage.ru_utime + usage.ru_stime
    except ChildProcessError:  # reaped elsewhere; should not happen
        returncode, cpu_used = -signal.SIGKILL, 0.0
    process.returncode = returncode  # so that Popen never waits for it again
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return returncode, cpu_used


def _kill_until_gone(
    *, owner: int | None = None, group: int | None = None, namespace: str | None = None
) -> None:
    """SIGKILL every running process of user id ``owner``, in process group ``group`` or in
    pid namespace ``namespace`` (``pid:[inode]``), until none is left. Zombies have ended
    already and are skipped."""
    for _ in range(1000):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if owner is not None and os.stat(f"/proc/{name}").st_uid != owner:
                    continue  # checked first: a stat is cheaper than reading the stat file
                if namespace is not None and os.readlink(f"/proc/{name}/ns/pid") != namespace:
                    continue
                with open(f"/proc/{name}/stat", "rb") as handle:
                    stat = handle.read()
                if _stat_field(stat, 3) in (b"Z", b"X"):
                    continue
                if group is not None and _stat_field(stat, 5) != group:
                    continue
                os.kill(int(name), signal.SIGKILL)
                found = True
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        if not found:
            return
        time.sleep(0.001)


def _stat_field(stat: bytes, number: int) -> bytes | int:
    """Field ``number`` (1-based, as in proc(5)) of /proc/<pid>/stat: the state (3) as
    bytes, the others as int. The command name (2) is in parentheses and may hold spaces."""
    fields = stat[stat.rfind(b")") + 2 :].split()
    value = fields[number - 3]
    return value if number == 3 else int(value)


def _remove_tree(path: str) -> None:
    """Delete the run's directory, even where the program took its own permissions away."""
    import contextlib
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    os.chmod(path, 0o700)
    for folder, subfolders, _ in os.walk(path):  # top-down: a folder is fixed before entered
        for name in subfolders:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _split_isolation(stderr: str) -> tuple[str, tuple[str, ...]]:
    if not stderr.startswith(_ISOLATION_MARKER):
        return stderr, ()
    line, _, rest = stderr.partition("\n")
    return rest, tuple(line[len(_ISOLATION_MARKER) :].split())


def _classify(
    stopped_by: str | None,
    returncode: int,
    stderr: str,
    *,
    cpu_used: float,
    cpu_limit: float,
    timeout_s: float,
    memory_mb: int,
    output_limit: int,
) -> tuple[str, str]:
    """The status and a one-line reason."""
    if stopped_by == "timeout":
        return "timeout", f"time limit exceeded ({timeout_s:g} s wall time)"
    if stopped_by == "output_limit":
        return "output_limit", f"output limit exceeded (more than {output_limit} bytes)"
    if returncode == 0:
        return "ok", ""
    memory_reason = f"memory limit exceeded ({memory_mb} MB)"
    if returncode == MEMORY_EXIT_CODE:
        return "memory", memory_reason
    if returncode < 0:
        number = -returncode
        if number == signal.SIGXCPU or (number == signal.SIGKILL and cpu_used >= cpu_limit):
            return "timeout", f"time limit exceeded ({cpu_limit:g} s CPU time)"
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == signal.SIGKILL:
            return "killed", f"killed by {name} (for example by the kernel's out-of-memory killer)"
        return "killed", f"killed by {name}"
    last_line = _last_line(stderr)
    if last_line.startswith("MemoryError"):
        return "memory", memory_reason
    return "failed", last_line or f"exit status {returncode}"


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            line = line.strip()
            return line if len(line) <= 200 else line[:199] + "…"
    return ""


# --------------------------------------------------------------------------- the child side
# Everything below runs in the child, before and around the program.


def _child_main(argv: list[str]) -> None:
    settings = {key: int(value) for key, value in (item.split("=") for item in argv[1].split(","))}
    applied = []
    # a file over the size limit then fails with OSError (EFBIG) instead of killing the run
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _set_limits(settings)
    applied.append("rlimits")
    own_user_namespace = False
    if settings["bwrap"]:
        # bubblewrap made the namespaces: a user namespace unless started as root
        applied += ["mountns", "pidns"]
        if not settings["network"]:
            applied.append("netns")
        own_user_namespace = settings["uid"] < 0
    elif not settings["network"]:
        namespace = _unshare_network()
        if namespace:
            applied.append("netns")
        own_user_namespace = namespace == "user"
    if settings["uid"] >= 0 and os.geteuid() == 0 and _drop_privileges(settings["uid"]):
        applied.append("uid")
    if "uid" in applied or own_user_namespace:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (settings["nproc"], settings["nproc"]))
        applied.append("nproc")
    with open(PROGRAM_NAME, encoding="utf-8") as handle:
        source = handle.read()
    if settings["guard"]:
        _install_guard(os.getcwd(), allow_network=bool(settings["network"]))
        applied.append("guard")
    os.write(2, f"{_ISOLATION_MARKER}{' '.join(applied)}\n".encode())
    _run_program(source)


def _set_limits(settings: dict[str, int]) -> None:
    import resource

    limits = {
        resource.RLIMIT_AS: settings["memory"],
        resource.RLIMIT_CPU: settings["cpu"],
        resource.RLIMIT_FSIZE: settings["fsize"],
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # the CPU soft limit sends SIGXCPU; the hard one, a second later, SIGKILL
        new_hard = value + 1 if kind == resource.RLIMIT_CPU else value
        if hard != resource.RLIM_INFINITY:
            new_hard = min(new_hard, hard)
        resource.setrlimit(kind, (value, new_hard))


def _libc() -> ctypes.CDLL:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _unshare_network() -> str | None:
    """Enter a new network namespace: "root" or "user" (with a user namespace), else None."""
    if os.geteuid() == 0:
        return "root" if _unshare(_CLONE_NEWNET) else None
    uid, gid = os.getuid(), os.getgid()
    if not _unshare(_CLONE_NEWUSER | _CLONE_NEWNET):
        return None
    # map our own ids into the new user namespace, so files keep their owner
    try:
        for path, text in (
            ("/proc/self/setgroups", "deny"),
            ("/proc/self/uid_map", f"{uid} {uid} 1"),
            ("/proc/self/gid_map", f"{gid} {gid} 1"),
        ):
            with open(path, "w") as handle:
                handle.write(text)
    except OSError:
        pass
    return "user"


def _unshare(flags: int) -> bool:
    unshare = getattr(os, "unshare", None)  # Python 3.12+
    if unshare is not None:
        try:
            unshare(flags)
        except OSError:
            return False
        return True
    return bool(_libc().unshare(flags) == 0)


def _drop_privileges(uid: int) -> bool:
    """Become ``uid`` (no groups), keeping only CAP_DAC_READ_SEARCH; False if not possible."""
    import ctypes

    libc = _libc()
    libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0)
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    data = (Data * 2)()
    data[0].effective = data[0].permitted = 1 << _CAP_DAC_READ_SEARCH
    libc.capset(ctypes.byref(Header(_LINUX_CAPABILITY_VERSION_3, 0)), data)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    return True


# events refused outright; the value says what the refusal message calls them
_REFUSED_EVENTS = {
    "os.fork": "starting processes",
    "os.forkpty": "starting processes",
    "os.posix_spawn": "starting processes",
    "os.spawn": "starting processes",
    "os.exec": "starting processes",
    "os.system": "starting processes",
    "subprocess.Popen": "starting processes",
    "ctypes.dlopen": "ctypes",
    "ctypes.dlsym": "ctypes",
    "ctypes.dlsym/handle": "ctypes",
    "ctypes.call_function": "ctypes",
    "ctypes.cdata": "ctypes",
    "ctypes.cdata/buffer": "ctypes",
    # these would let the program find and change the guard itself
    "gc.get_objects": "walking the garbage collector",
    "gc.get_referrers": "walking the garbage collector",
    "gc.get_referents": "walking the garbage collector",
}
_NETWORK_EVENTS = (
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
)
# event -> ((index of a path argument, index of its dir_fd argument or None, follow the
# last symlink?), ...): calls that change the file system at those paths
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None, bool], ...]] = {
    "os.remove": ((0, 1, False),),
    "os.rmdir": ((0, 1, False),),
    "os.mkdir": ((0, 2, False),),
    "os.rename": ((0, 2, False), (1, 3, False)),
    "os.link": ((1, 3, False),),
    "os.symlink": ((1, 2, False),),
    "os.chmod": ((0, 2, True),),
    "os.chown": ((0, 3, True),),
    "os.truncate": ((0, None, True),),
    "os.utime": ((0, 3, True),),
    "os.setxattr": ((0, None, True),),
    "os.removexattr": ((0, None, True),),
    "shutil.rmtree": ((0, 1, False),),
    "shutil.copyfile": ((1, None, True),),
    "shutil.copytree": ((1, None, True),),
    "shutil.move": ((0, None, False), (1, None, True)),
    "shutil.chown": ((0, None, True),),
    "sqlite3.connect": ((0, None, True),),
}
# the modules whose import is refused: ctypes reaches native code directly, and a fresh
# import of _posixsubprocess would bring back the fork_exec the guard replaced
_REFUSED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
_WRITABLE_DEVICES = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})


def _install_guard(workdir: str, *, allow_network: bool) -> None:
    """Refuse process creation, native calls, network and writes outside ``workdir``."""
    import _posixsubprocess

    def no_fork_exec(*args: object) -> object:
        raise PermissionError("the sandbox does not allow starting processes")

    # subprocess audits Popen itself, but _posixsubprocess.fork_exec can be called directly
    _posixsubprocess.fork_exec = no_fork_exec  # type: ignore[assignment]
    for name in [n for n in sys.modules if n.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # used by the bootstrap; the program must import it afresh

    root = os.path.realpath(workdir)
    inside = root + os.sep
    own_pid = os.getpid()
    own_group = os.getpgid(0)
    import resource

    limited = {
        resource.RLIMIT_AS,
        resource.RLIMIT_CPU,
        resource.RLIMIT_FSIZE,
        resource.RLIMIT_NOFILE,
        resource.RLIMIT_NPROC,
        resource.RLIMIT_CORE,
    }
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    refused = dict(_REFUSED_EVENTS)
    if not allow_network:
        refused.update(dict.fromkeys(_NETWORK_EVENTS, "network access"))
    realpath, dirname, basename, join = (
        os.path.realpath,
        os.path.dirname,
        os.path.basename,
        os.path.join,
    )
    fspath, fsdecode, readlink = os.fspath, os.fsdecode, os.readlink

    def resolve(path: object, dir_fd: object, follow: bool) -> str | None:
        """The absolute path a call acts on; None for a file descriptor."""
        if isinstance(path, int):
            return None
        text = fsdecode(fspath(path))  # type: ignore[call-overload]
        # audit events pass -1 (or AT_FDCWD) when no dir_fd was given
        if isinstance(dir_fd, int) and dir_fd >= 0 and not text.startswith("/"):
            text = join(readlink(f"/proc/self/fd/{dir_fd}"), text)
        if follow:
            return realpath(text)
        # the entry itself is acted on, not what a symlink there points to
        return join(realpath(dirname(text) or "."), basename(text))

    def outside(path: str | None) -> bool:
        return path is not None and path != root and not path.startswith(inside)

    def refuse(what: str) -> None:
        raise PermissionError(f"the sandbox does not allow {what}")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in refused:
            refuse(refused[event])
        elif event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags
            )
            allowed_device = isinstance(path, str) and path in _WRITABLE_DEVICES
            if writing and not allowed_device and outside(resolve(path, None, True)):
                refuse(f"writing outside its directory ({path!r})")
        elif event in _PATH_EVENTS:
            for path_index, fd_index, follow in _PATH_EVENTS[event]:
                dir_fd = args[fd_index] if fd_index is not None and fd_index < len(args) else None
                if path_index < len(args) and outside(resolve(args[path_index], dir_fd, follow)):
                    refuse(f"{event} outside its directory ({args[path_index]!r})")
        elif event == "os.kill":
            pid, sig = args
            if pid not in (0, own_pid) and sig != 0:
                refuse("signals to other processes")
        elif event == "os.killpg":
            if args[0] != own_group:
                refuse("signals to other processes")
        elif event == "resource.setrlimit":
            # lowering, or raising what the sandbox leaves free (the stack), is fine; a
            # process that kept privileges could otherwise lift the sandbox's own limits
            kind, limits = args
            if kind in limited and _raises_hard_limit(kind, limits):
                refuse("raising the sandbox's resource limits")
        elif event == "resource.prlimit":
            refuse("changing resource limits with prlimit")
        elif event == "import" and args[0] in _REFUSED_IMPORTS:
            raise ImportError(f"the sandbox does not allow importing {args[0]}")

    sys.addaudithook(hook)


def _raises_hard_limit(kind: int, limits: object) -> bool:
    import resource

    try:
        new_hard = int(limits[1])  # type: ignore[index]
        _, hard = resource.getrlimit(kind)
    except (TypeError, ValueError, IndexError, OSError):
        return False  # setrlimit itself will reject it
    if hard == resource.RLIM_INFINITY:
        return False
    return new_hard == resource.RLIM_INFINITY or new_hard > hard


def _run_program(source: str) -> None:
    """Execute the program as ``__main__``; tracebacks show only its own frames."""
    import builtins
    import types

    sys.dont_write_bytecode = True
    if not hasattr(builtins, "exit"):  # site (skipped with -S) defines exit() and quit()
        builtins.exit = builtins.quit = _exit_builtin  # type: ignore[assignment]
    main = types.ModuleType("__main__")
    main.__file__ = PROGRAM_NAME
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    sys.argv = [PROGRAM_NAME]
    try:
        code = compile(source, PROGRAM_NAME, "exec")
        exec(code, main.__dict__)
    except SystemExit:
        raise
    except MemoryError:
        _flush_streams()
        os.write(2, b"MemoryError: the program ran out of memory\n")
        os._exit(MEMORY_EXIT_CODE)
    except BaseException as exc:
        _flush_streams()
        _print_exception(exc)
        _flush_streams()
        os._exit(1)
    _flush_streams()


def _exit_builtin(code: object = None) -> None:
    raise SystemExit(code)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 - contextlib would cost every run an import
            stream.flush()
        except Exception:  # a closed or broken stream: nothing more to say
            pass


def _print_exception(exc: BaseException) -> None:
    """The traceback as Python prints it, minus this module's frames (bootstrap, guard)."""
    try:
        import traceback

        report = traceback.TracebackException.from_exception(exc)
        pending = [report]
        while pending:
            current = pending.pop()
            frames = [frame for frame in current.stack if frame.filename != __file__]
            current.stack = traceback.StackSummary.from_list(frames)
            pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        sys.stderr.write("".join(report.format()))
    except Exception:  # e.g. the traceback module is not readable
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")


if __name__ == "__main__":
    _child_main(sys.argv)
