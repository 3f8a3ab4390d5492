"""The floors every benchmark measures beside its own run, and the one way rows are printed.

A wall time from one machine says little on another; a ratio to a floor measured in the same
invocation, on the same machine, travels. The floors:

- the network ideal: records x latency / concurrency (computed, not measured);
- bare pytest: plain ``pytest`` running the same number of trivial parametrised tests in the
  same mode (serial or ``-n N``) with the same ``-q -p no:cacheprovider`` and the same
  ``-p no:PLUGIN`` exclusions (and ``-p no:evalindex``: the floor is pytest, not this plugin);
- a plain async client: the same chat requests sent with aiohttp (httpx.AsyncClient when
  aiohttp is missing) at the same concurrency against the same server, in a child process.

Every process tree is measured with ``os.wait4``: wall time, CPU of the process and every
descendant it reaped (xdist workers, math-verify helpers, sandboxed programs), and the peak
memory of its largest process.

The other scripts import this file (``python benchmarks/X.py`` puts this folder first on
``sys.path``). Run directly, it is the plain client's child process::

    python benchmarks/floors.py client URL PROMPTS.json CONCURRENCY [aiohttp|httpx]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_evalindex.testing import FakeOpenAI

PYTEST_BASE = ["-q", "-p", "no:cacheprovider"]
# a target that holds for wall / max(ideal, floor) and for CPU per item against bare pytest
RATIO_TARGET = 1.5

BARE_TEST = """\
import pytest


@pytest.mark.parametrize("i", range({count}))
def test_x(i):
    assert i >= 0
"""


# --------------------------------------------------------------------------- measuring


@dataclass
class Measured:
    """What one process tree cost."""

    exit_status: int
    started_at: float  # time.monotonic(), the clock of the fake server's log
    wall_s: float
    cpu_s: float  # user + system of the process and of every process it waited for
    peak_rss_mb: float  # the largest single process of the tree
    output: str


def run_measured(command: Sequence[str], cwd: Path, log_path: Path) -> Measured:
    """Run ``command`` in ``cwd``, its output to ``log_path``; wall, CPU and peak memory."""
    with log_path.open("w") as log:
        started = time.monotonic()
        process = subprocess.Popen(list(command), cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        # os.wait4 reports the child together with every descendant it reaped: CPU summed,
        # memory the largest
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        exit_status=process.returncode,
        started_at=started,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
        output=log_path.read_text(),
    )


@dataclass
class RunFigures:
    """What one pytest process tree cost, with the results file it wrote."""

    exit_status: int
    started_at: float
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    results: dict[str, Any]
    output: str

    @property
    def session_s(self) -> float:
        return float(self.results.get("run", {}).get("duration_s", float("nan")))

    def outcomes(self) -> str:
        counts: dict[str, int] = {}
        for sample in self.results.get("samples", []):
            counts[sample["outcome"]] = counts.get(sample["outcome"], 0) + 1
        return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def run_pytest(
    folder: Path,
    arguments: Sequence[str],
    *,
    wrapper: Sequence[str] = (),
    results_file: str = "out.json",
) -> RunFigures:
    """``python -m pytest -q -p no:cacheprovider ARGUMENTS`` in ``folder``, measured."""
    command = [*wrapper, sys.executable, "-m", "pytest", *PYTEST_BASE, *arguments]
    results_path = folder / results_file
    results_path.unlink(missing_ok=True)
    measured = run_measured(command, folder, folder / "pytest-output.txt")
    return RunFigures(
        exit_status=measured.exit_status,
        started_at=measured.started_at,
        wall_s=measured.wall_s,
        cpu_s=measured.cpu_s,
        peak_rss_mb=measured.peak_rss_mb,
        results=json.loads(results_path.read_text()) if results_path.exists() else {},
        output=measured.output,
    )


def mode_arguments(workers: int) -> list[str]:
    """Serial (0) passes no ``-n`` at all; otherwise ``-n WORKERS``."""
    return ["-n", str(workers)] if workers else []


def mode_name(workers: int) -> str:
    return f"-n {workers}" if workers else "serial"


def plugin_exclusions(arguments: Sequence[str]) -> list[str]:
    """The ``-p NAME`` pairs of a pytest argument list (the rest may be this plugin's own
    options, which bare pytest does not know)."""
    pairs: list[str] = []
    items = list(arguments)
    for position, item in enumerate(items):
        if item == "-p" and position + 1 < len(items):
            pairs += ["-p", items[position + 1]]
        elif item.startswith("-p") and len(item) > 2:
            pairs += ["-p", item[2:]]
    return pairs


# --------------------------------------------------------------------------- bare pytest


@dataclass
class Floor:
    """Bare pytest: ``count`` trivial parametrised tests in one mode."""

    count: int
    workers: int
    wall_s: float
    cpu_s: float

    @property
    def cpu_per_item_ms(self) -> float:
        return 1000 * self.cpu_s / self.count


def measure_bare_pytest(
    count: int, workers: int, extra_args: Sequence[str] = (), *, runs: int = 1
) -> Floor:
    """Plain pytest over ``count`` trivial tests in the same mode and with the same plugin
    exclusions as the run it is compared with; the fastest of ``runs``."""
    arguments = [*mode_arguments(workers), *plugin_exclusions(extra_args), "-p", "no:evalindex"]
    best: RunFigures | None = None
    with tempfile.TemporaryDirectory(prefix="bare-pytest-") as tmp:
        folder = Path(tmp)
        (folder / "test_bare.py").write_text(BARE_TEST.format(count=count))
        for _ in range(max(1, runs)):
            figures = run_pytest(folder, arguments)
            if figures.exit_status != 0:
                raise SystemExit(f"bare pytest failed:\n{figures.output[-3000:]}")
            if best is None or figures.wall_s < best.wall_s:
                best = figures
    assert best is not None
    return Floor(count=count, workers=workers, wall_s=best.wall_s, cpu_s=best.cpu_s)


class FloorCache:
    """Bare-pytest floors measured once per (count, mode, exclusions) in an invocation."""

    def __init__(self, runs: int = 1) -> None:
        self.runs = runs
        self._floors: dict[tuple[int, int, tuple[str, ...]], Floor] = {}

    def get(self, count: int, workers: int, extra_args: Sequence[str] = ()) -> Floor:
        key = (count, workers, tuple(plugin_exclusions(extra_args)))
        if key not in self._floors:
            self._floors[key] = measure_bare_pytest(count, workers, extra_args, runs=self.runs)
        return self._floors[key]


# --------------------------------------------------------------------------- plain client


@dataclass
class ClientFloor:
    """The same chat requests from a plain async client, in a child process."""

    library: str
    sent: int
    answered: int  # replies with status 200 and a choice
    wall_s: float  # the whole child process, interpreter start-up included
    span_s: float  # first request to last reply, inside the child
    cpu_s: float


def client_library() -> str:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx"
    return "aiohttp"


def measure_plain_client(
    base_url: str, prompts: Sequence[str], concurrency: int, *, library: str | None = None
) -> ClientFloor:
    """Send one chat request for each of ``prompts`` from a child process, ``concurrency``
    at a time, and measure that process like the runs."""
    library = library or client_library()
    with tempfile.TemporaryDirectory(prefix="plain-client-") as tmp:
        folder = Path(tmp)
        (folder / "prompts.json").write_text(json.dumps(list(prompts)))
        command = [
            sys.executable, str(Path(__file__).resolve()), "client",
            f"{base_url}/chat/completions", "prompts.json", str(concurrency), library,
        ]  # fmt: skip
        measured = run_measured(command, folder, folder / "client-output.txt")
    if measured.exit_status != 0:
        raise SystemExit(f"the plain client failed:\n{measured.output[-3000:]}")
    report = json.loads(measured.output.strip().splitlines()[-1])
    return ClientFloor(
        library=library,
        sent=report["sent"],
        answered=report["answered"],
        wall_s=measured.wall_s,
        span_s=report["span_s"],
        cpu_s=measured.cpu_s,
    )


def _request_body(prompt: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": prompt}]}


async def _send_with_aiohttp(url: str, prompts: list[str], concurrency: int) -> int:
    import aiohttp

    queue: Iterator[str] = iter(prompts)
    answered = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Authorization": "Bearer benchmark"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal answered
            # the workers share one iterator: each takes the next prompt when it is free
            for prompt in queue:
                async with session.post(url, json=_request_body(prompt)) as response:
                    payload = await response.json()
                    answered += response.status == 200 and bool(payload.get("choices"))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


async def _send_with_httpx(url: str, prompts: list[str], concurrency: int) -> int:
    import httpx

    # one httpx pool serialises on its own lock at high concurrency; eight smaller ones do not
    pools = 8 if concurrency >= 8 else 1
    per_pool = -(-concurrency // pools)
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    clients = [
        httpx.AsyncClient(limits=limits, timeout=60, headers={"Authorization": "Bearer benchmark"})
        for _ in range(pools)
    ]
    queue: Iterator[str] = iter(prompts)
    answered = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal answered
        for prompt in queue:
            response = await client.post(url, json=_request_body(prompt))
            answered += response.status_code == 200 and bool(response.json().get("choices"))

    try:
        await asyncio.gather(*(worker(clients[k % pools]) for k in range(concurrency)))
    finally:
        for client in clients:
            await client.aclose()
    return answered


def _client_main(argv: list[str]) -> int:
    url, prompts_path, concurrency_text, *rest = argv
    library = rest[0] if rest else client_library()
    prompts = json.loads(Path(prompts_path).read_text())
    send = _send_with_aiohttp if library == "aiohttp" else _send_with_httpx
    started = time.monotonic()
    answered = asyncio.run(send(url, prompts, int(concurrency_text)))
    span = time.monotonic() - started
    print(json.dumps({"sent": len(prompts), "answered": answered, "span_s": span}))
    return 0


# --------------------------------------------------------------------------- rows


def chat_request_count(server: FakeOpenAI) -> int:
    """Chat requests in the server's log (``/v1/models`` and the like do not count)."""
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


@dataclass
class Row:
    """One measured run beside its floors."""

    name: str
    mode: str
    records: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    ideal_s: float | None  # None: no network in this run (every answer cached)
    floor: Floor
    requests: int  # chat requests the server saw
    expected_requests: int  # the records, or 0 when every answer is cached
    client: ClientFloor | None = None

    @classmethod
    def of(cls, name: str, figures: RunFigures | Measured, **fields: Any) -> Row:
        return cls(
            name=name,
            wall_s=figures.wall_s,
            cpu_s=figures.cpu_s,
            peak_rss_mb=figures.peak_rss_mb,
            **fields,
        )

    @property
    def reference_s(self) -> float:
        """max(ideal, bare floor): what the run cannot beat."""
        return max(self.ideal_s or 0.0, self.floor.wall_s)

    @property
    def ratio(self) -> float:
        return self.wall_s / self.reference_s

    @property
    def additive_s(self) -> float | None:
        """bare floor + ideal: pytest's start-up and finish cannot overlap the requests (none
        can be sent before the test set is collected, none is pending at the summary), so
        this is nearer what a run can reach; None without requests."""
        return None if self.ideal_s is None else self.floor.wall_s + self.ideal_s

    @property
    def cpu_per_item_ms(self) -> float:
        return 1000 * self.cpu_s / self.records

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_per_item_ms / self.floor.cpu_per_item_ms

    @property
    def requests_ok(self) -> bool:
        return self.requests == self.expected_requests


def print_row(row: Row) -> None:
    """The figures of one run against its floors, one per line."""
    ideal = "none (no requests)" if row.ideal_s is None else f"{row.ideal_s:.2f} s"
    bound = "bare floor" if (row.ideal_s or 0.0) <= row.floor.wall_s else "ideal"
    print(f"mode:                              {row.mode}, {row.records} records")
    print(f"wall time with start-up:           {row.wall_s:7.2f} s")
    print(f"CPU of the process tree:           {row.cpu_s:7.2f} s  (peak memory "
          f"{row.peak_rss_mb:.0f} MB)")  # fmt: skip
    print(f"network ideal:                     {ideal}")
    print(f"bare-pytest floor:                 {row.floor.wall_s:7.2f} s wall, "
          f"{row.floor.cpu_s:.2f} s CPU ({row.floor.count} trivial tests)")  # fmt: skip
    print(f"ratio to max(ideal, floor):        {row.ratio:7.2f}  (the {bound} binds)")
    if row.additive_s is not None:
        print(f"bare floor + ideal:                {row.additive_s:7.2f} s  "
              f"ratio {row.wall_s / row.additive_s:.2f}")  # fmt: skip
    print(f"CPU per item:                      {row.cpu_per_item_ms:7.2f} ms ours, "
          f"{row.floor.cpu_per_item_ms:.2f} ms bare, ratio {row.cpu_ratio:.2f}")  # fmt: skip
    if row.client is not None:
        client = row.client
        with_requests = row.floor.cpu_per_item_ms + 1000 * client.cpu_s / row.records
        print(f"bare CPU per item + the client's:  {with_requests:7.2f} ms  "
              f"ratio {row.cpu_per_item_ms / with_requests:.2f}")  # fmt: skip
        print(f"plain {client.library} client:              {client.wall_s:7.2f} s wall "
              f"({client.span_s:.2f} s of requests), {client.cpu_s:.2f} s CPU; "
              f"ours / client wall {row.wall_s / client.wall_s:.2f}")  # fmt: skip
    verdict = "OK" if row.requests_ok else "MISMATCH"
    print(f"requests:                          {row.requests} of {row.expected_requests} "
          f"expected  {verdict}")  # fmt: skip


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| run | mode | records | wall s | ideal s | floor s | ratio | CPU s | CPU/item ms "
        "(ours / bare) | CPU ratio | client wall s | requests |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        ideal = "-" if row.ideal_s is None else f"{row.ideal_s:.2f}"
        client = "-" if row.client is None else f"{row.client.wall_s:.2f}"
        verdict = "OK" if row.requests_ok else "MISMATCH"
        lines.append(
            f"| {row.name} | {row.mode} | {row.records} | {row.wall_s:.2f} | {ideal} | "
            f"{row.floor.wall_s:.2f} | {row.ratio:.2f} | {row.cpu_s:.2f} | "
            f"{row.cpu_per_item_ms:.2f} / {row.floor.cpu_per_item_ms:.2f} | "
            f"{row.cpu_ratio:.2f} | {client} | {row.requests}/{row.expected_requests} "
            f"{verdict} |"
        )
    return "\n".join(lines)


def machine_line(extra_args: Sequence[str]) -> str:
    bytecode = "off" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "on"
    return (
        f"{sys.executable}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, bytecode "
        f"cache {bytecode}, pytest extra arguments: {' '.join(extra_args) or 'none'}"
    )


def load_line() -> str:
    """The load average at the end, to set beside the one at the start."""
    one, five, fifteen = os.getloadavg()
    return f"load average now {one:.2f} (5 min {five:.2f}, 15 min {fifteen:.2f})"


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "client":
        sys.exit(_client_main(sys.argv[2:]))
    sys.exit(__doc__)
