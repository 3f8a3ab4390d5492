"""Benchmark: sample a test set from a large source; wall time and peak memory.

    python benchmarks/sampling.py [--records 1000000] [--count 1000] [--keep DIR]

Writes a JSONL source of ``--records`` rows (general_qa layout, about 200 bytes a row) and a
spec with three datasets reading that one file, each filtered to one subset; then runs
``sample_index`` in a fresh Python process and reports its wall time (process start to exit,
imports included) and peak resident memory. Targets: under 15 s and under 150 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TARGET_SECONDS = 15.0
TARGET_MB = 150.0
TOPICS = ("billing", "shipping", "returns", "other")
WORDS = [
    "order", "account", "refund", "parcel", "invoice", "delivery", "address", "payment",
    "card", "warehouse", "customer", "tracking", "return", "label", "discount",
    "subscription", "courier", "damaged", "late",
]  # fmt: skip

CHILD = textwrap.dedent(
    """
    import sys, time
    start = time.perf_counter()
    from pytest_evalindex.testset.sampling import sample_index
    from pytest_evalindex.spec.index import load_spec
    result = sample_index(load_spec(sys.argv[1]))
    print(len(result.records), round(time.perf_counter() - start, 3))
    """
)


def write_source(path: Path, records: int) -> None:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(records):
            question = " ".join(rng.choice(WORDS) for _ in range(11)).capitalize() + "?"
            answer = " ".join(rng.choice(WORDS) for _ in range(6))
            row = {
                "id": f"ticket-{i:08d}",
                "question": question,
                "answer": answer,
                "topic": TOPICS[i % len(TOPICS)],
            }
            fh.write(json.dumps(row) + "\n")


def write_spec(path: Path, source: Path, count: int) -> None:
    weights = {"billing": 0.5, "shipping": 0.3, "returns": 0.2}
    lines = [
        "name: sampling_benchmark",
        "sampler: weighted",
        f"count: {count}",
        "seed: 42",
        "datasets:",
    ]
    for topic, weight in weights.items():
        lines += [
            f"  - name: {topic}",
            f"    weight: {weight}",
            "    adapter: general_qa",
            "    fields: {input: question, target: answer, id: id, subset: topic}",
            "    scorer: {name: includes}",
            f"    source: {source.name}",
            f"    args: {{subset_list: [{topic}]}}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source, spec = folder / "tickets.jsonl", folder / "index.yaml"
        started = time.perf_counter()
        write_source(source, args.records)
        print(
            f"source: {args.records:,} rows, {source.stat().st_size / 1e6:.0f} MB, "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        write_spec(spec, source, args.count)

        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(spec)], capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        if child.returncode != 0:
            print(child.stderr, file=sys.stderr)
            return 1
        # ru_maxrss is in KiB on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak_mb = peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6
        selected, inner = child.stdout.split()

    print(f"sampled {selected} records in {inner} s after start-up")
    print(f"wall time  {wall:6.2f} s   (target < {TARGET_SECONDS:.0f} s)")
    print(f"peak RSS   {peak_mb:6.1f} MB  (target < {TARGET_MB:.0f} MB)")
    ok = wall < TARGET_SECONDS and peak_mb < TARGET_MB
    print("within targets" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
