"""How close a run gets to the network's limit: samples x latency / concurrency.

Runs ``pytest --index`` in a subprocess against the fake server (in its own process, so its
CPU does not count), with no cache, and prints wall time, the ideal and their ratio.

    python benchmarks/throughput.py [--records 2000] [--latency 0.1] [--concurrency 64] [-n 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_evalindex.testing import serve_in_subprocess

SPEC = """
name: throughput
sampler: uniform
count: {count}
datasets:
  - name: qa
    adapter: general_qa
    source: rows.jsonl
    fields: {{id: id, input: q, target: a}}
    scorer: includes
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("-n", dest="workers", default="0")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(SPEC.format(count=args.records))
        rows = (
            json.dumps({"id": i, "q": f"Repeat the word apple, case {i}.", "a": "apple"})
            for i in range(args.records)
        )
        (folder / "rows.jsonl").write_text("\n".join(rows) + "\n")
        with serve_in_subprocess(latency=args.latency, default="apple") as base_url:
            command = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--index", "spec.yaml", "--index-base-url", base_url, "--index-model", "m",
                "--index-no-cache", "--index-concurrency", str(args.concurrency),
                "-n", args.workers, "--index-json", "out.json",
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
            wall = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(done.stdout[-3000:] + done.stderr[-3000:])
        results = json.loads((folder / "out.json").read_text())
    ideal = args.records * args.latency / args.concurrency
    session = results["run"]["duration_s"]
    print(f"records {args.records}, latency {args.latency}s, concurrency {args.concurrency}, "
          f"-n {args.workers}")  # fmt: skip
    print(f"ideal (records x latency / concurrency): {ideal:.2f} s")
    print(f"pytest wall time (with start-up):        {wall:.2f} s  ratio {wall / ideal:.2f}")
    print(f"session time (collection to finish):    {session:.2f} s  ratio {session / ideal:.2f}")
    print(f"scored samples: {results['index']['count']}, errors: {results['index']['errors']}")


if __name__ == "__main__":
    main()
