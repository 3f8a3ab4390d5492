"""How close an index run gets to its floors: the network's limit and bare pytest.

    python benchmarks/throughput.py [--records 2000] [--latency 0.1] [--concurrency 64]
        [--modes serial,2] [--no-cached] [--floor-runs N] [-p no:PLUGIN ...]

One invocation measures, for each mode (serial, ``-n 2``), an index of exact-match records
(``includes`` scorer) run with ``--index-no-cache`` against the fake server (``FakeOpenAI``,
in this process, so its CPU is not the run's), and beside it, in the same invocation:

- the network ideal, records x latency / concurrency;
- bare pytest over as many trivial parametrised tests, in the same mode, with the same
  ``-q -p no:cacheprovider`` and ``-p no:PLUGIN`` exclusions (``benchmarks/floors.py``);
- a plain async client sending the same requests at the same concurrency;
- the server's count of chat requests, which must equal the records (no request sent twice).

With the cache on (``--cached``, the default) it then fills a response cache with one run
and measures each mode again with every answer found there: no requests, so the bare floor
is the only bound. At the end a markdown table of every row and whether the targets hold:
wall <= 1.5 x max(ideal, floor) in both modes, CPU per item <= 1.5 x bare pytest's
(serial), requests == records.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from floors import (
    RATIO_TARGET,
    FloorCache,
    Row,
    chat_request_count,
    load_line,
    machine_line,
    markdown_table,
    measure_plain_client,
    mode_arguments,
    mode_name,
    print_row,
    run_pytest,
)

from pytest_evalindex.testing import FakeOpenAI

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


def parse_modes(text: str) -> list[int]:
    """``serial,2`` -> [0, 2]: worker counts, 0 for serial."""
    modes = []
    for item in text.split(","):
        item = item.strip()
        if item in ("serial", "0"):
            modes.append(0)
        elif item.isdigit():
            modes.append(int(item))
        else:
            raise argparse.ArgumentTypeError(f"a mode is 'serial' or a worker count, not {item!r}")
    return modes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--modes", type=parse_modes, default=[0, 2], help="serial and/or worker counts (serial,2)"
    )
    parser.add_argument(
        "--cached", action=argparse.BooleanOptionalAction, default=True,
        help="also measure each mode with every answer in the cache (default on)",
    )  # fmt: skip
    parser.add_argument(
        "--floor-runs", type=int, default=1, metavar="N",
        help="bare-pytest runs per floor, the fastest counts (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "-p", dest="plugins", action="append", default=[], metavar="no:NAME",
        help="passed on to pytest and to the bare floor, e.g. -p no:hypothesispytest",
    )  # fmt: skip
    args = parser.parse_args(argv)
    extra = [item for plugin in args.plugins for item in ("-p", plugin)]
    floors = FloorCache(runs=args.floor_runs)
    ideal = args.records * args.latency / args.concurrency
    rows: list[Row] = []
    failed = False
    print(machine_line(extra))
    print(f"records {args.records}, latency {args.latency}s, concurrency {args.concurrency}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(SPEC.format(count=args.records))
        questions = [f"Repeat the word apple, case {i}." for i in range(args.records)]
        rows_text = (
            json.dumps({"id": i, "q": question, "a": "apple"})
            for i, question in enumerate(questions)
        )
        (folder / "rows.jsonl").write_text("\n".join(rows_text) + "\n")
        with FakeOpenAI(default="apple", latency=args.latency) as server:
            index = [
                "--index", "spec.yaml", "--index-base-url", server.base_url,
                "--index-model", "m", "--index-concurrency", str(args.concurrency),
                "--index-json", "out.json",
            ]  # fmt: skip
            client = measure_plain_client(server.base_url, questions, args.concurrency)
            if chat_request_count(server) != args.records or client.answered != args.records:
                print(f"the plain client's requests do not add up: {client}")
            server.clear_log()

            for workers in args.modes:
                floor = floors.get(args.records, workers, extra)
                server.clear_log()
                arguments = [*index, "--index-no-cache", *mode_arguments(workers), *extra]
                figures = run_pytest(folder, arguments)
                failed |= figures.exit_status != 0
                row = Row.of(
                    "no cache", figures, mode=mode_name(workers), records=args.records,
                    ideal_s=ideal, floor=floor, requests=chat_request_count(server),
                    expected_requests=args.records, client=client,
                )  # fmt: skip
                title(f"no cache, {mode_name(workers)}", figures.exit_status, figures.output)
                print(f"samples: {figures.outcomes()}; session {figures.session_s:.2f} s")
                print_row(row)
                rows.append(row)

            if args.cached:
                cache = ["--index-cache-dir", str(folder / "cache")]
                fill_workers = max(args.modes)
                server.clear_log()
                fill = run_pytest(folder, [*index, *cache, *mode_arguments(fill_workers), *extra])
                failed |= fill.exit_status != 0
                asked = chat_request_count(server)
                title(f"cache filled by one {mode_name(fill_workers)} run", fill.exit_status,
                      fill.output)  # fmt: skip
                print(f"{fill.wall_s:.2f} s; requests {asked} of {args.records} expected  "
                      f"{'OK' if asked == args.records else 'MISMATCH'}")  # fmt: skip
                for workers in args.modes:
                    floor = floors.get(args.records, workers, extra)
                    server.clear_log()
                    arguments = [*index, *cache, *mode_arguments(workers), *extra]
                    figures = run_pytest(folder, arguments)
                    failed |= figures.exit_status != 0
                    row = Row.of(
                        "cached", figures, mode=mode_name(workers), records=args.records,
                        ideal_s=None, floor=floor, requests=chat_request_count(server),
                        expected_requests=0,
                    )  # fmt: skip
                    title(f"every answer cached, {mode_name(workers)}", figures.exit_status,
                          figures.output)  # fmt: skip
                    print(f"samples: {figures.outcomes()}; session {figures.session_s:.2f} s")
                    print_row(row)
                    rows.append(row)

    print("\n== all rows\n")
    print(markdown_table(rows))
    print("\n== targets")
    uncached = [row for row in rows if row.name == "no cache"]
    for row in uncached:
        verdict(
            f"wall <= {RATIO_TARGET} x max(ideal, floor), {row.mode}",
            row.ratio <= RATIO_TARGET,
            f"ratio {row.ratio:.2f}",
        )
    for row in uncached:
        if row.mode == "serial":
            verdict(
                f"CPU per item <= {RATIO_TARGET} x bare pytest's, serial",
                row.cpu_ratio <= RATIO_TARGET,
                f"{row.cpu_per_item_ms:.2f} against {row.floor.cpu_per_item_ms:.2f} ms, "
                f"ratio {row.cpu_ratio:.2f}",
            )
    verdict(
        "requests == records (0 when cached), every row",
        all(row.requests_ok for row in rows),
        ", ".join(f"{row.requests}/{row.expected_requests}" for row in rows),
    )
    for row in rows:
        if row.name == "cached":
            print(f"  (cached, {row.mode}: ratio to the bare floor {row.ratio:.2f}, no target)")
    print(load_line())
    return 1 if failed else 0


def title(text: str, exit_status: int, output: str) -> None:
    print(f"\n== {text}")
    if exit_status != 0:
        print(f"pytest exit status {exit_status}:\n{output[-3000:]}")


def verdict(target: str, held: bool, detail: str) -> None:
    print(f"{'OK    ' if held else 'MISSED'} {target}: {detail}")


if __name__ == "__main__":
    sys.exit(main())
