"""Benchmark: the HTML case-analysis report at scale, measured in headless Chromium.

    python benchmarks/html_report.py [--samples 20000] [--repeat 3] [--keep DIR]

Builds a results document of ``--samples`` synthetic samples (eight datasets under a category
tree, answers of about 500 characters, a system and a user message each), writes the report
and opens it from disk in headless Chromium (Debian's ``chromium`` and ``chromedriver``
driven by Selenium). Reported: file size, the time from navigation start to the sample table
being drawn (the page's ``window.__evalindexReady``), and the time the page's own filter
function takes for a text search (the first one builds the lowercase search strings), a
second text search and a dataset filter, each measured in JavaScript around the filter call.
Each figure is the median of ``--repeat`` page loads. Targets: under 1 s each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_evalindex.report.html import write_html
from pytest_evalindex.results.aggregate import build_results

TARGET_MS = 1000.0
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DATASETS = [
    # name, weight, task_type, tags, categories
    ("gsm8k", 0.20, "reasoning", ["en", "math"], ["bench_index", "reasoning", "math"]),
    ("math500", 0.10, "reasoning", ["en", "math"], ["bench_index", "reasoning", "math"]),
    ("ifeval", 0.15, "instruction", ["en"], ["bench_index", "instruction"]),
    ("mmlu", 0.15, "knowledge", ["en"], ["bench_index", "knowledge"]),
    ("cmmlu", 0.10, "knowledge", ["zh"], ["bench_index", "knowledge"]),
    ("simpleqa", 0.10, "knowledge", ["en", "factual"], ["bench_index", "knowledge"]),
    ("rag_support", 0.15, "rag", ["en", "long"], ["bench_index", "rag"]),
    ("humaneval", 0.05, "code", ["en", "code"], ["bench_index", "code"]),
]  # fmt: skip
WORDS = [
    "the", "answer", "is", "therefore", "because", "first", "we", "compute", "total", "value",
    "each", "step", "gives", "result", "check", "units", "remaining", "number", "customer",
    "order", "policy", "refund", "document", "paragraph", "states", "function", "returns",
    "list", "string", "integer", "loop", "condition", "final",
]  # fmt: skip
SYSTEM_PROMPT = "You are a careful assistant. Answer the question; end with 'Answer: <answer>'."


def _words(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def make_samples(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` samples shaped like the results JSON's, spread over DATASETS."""
    rng = random.Random(seed)
    samples = []
    for n in range(count):
        name, weight, task_type, tags, categories = DATASETS[n % len(DATASETS)]
        roll = rng.random()
        outcome = "error" if roll < 0.01 else "passed" if roll < 0.62 else "missed"
        answer = str(rng.randrange(1000))
        samples.append(
            {
                "id": f"{name}/{n // len(DATASETS)}",
                "dataset": name,
                "subset": "default",
                "task_type": task_type,
                "tags": tags,
                "categories": categories,
                "weight": weight,
                "outcome": outcome,
                "score": None if outcome == "error" else float(outcome == "passed"),
                "input": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": _words(rng, 300) + "?"},
                ],
                "response": "" if outcome == "error" else f"{_words(rng, 480)}. Answer: {answer}",
                "reasoning": "",
                "target": answer if outcome == "passed" else str(rng.randrange(1000)),
                "explanation": "request failed after 3 retries"
                if outcome == "error"
                else f"extracted {answer!r}; {'matches' if outcome == 'passed' else 'differs'}",
                "metrics": {"extracted": answer},
                "usage": {"prompt_tokens": rng.randrange(80, 200), "completion_tokens": 120},
                "latency_s": round(rng.uniform(0.3, 4.0), 3),
            }
        )
    return samples


def make_results(count: int, seed: int = 0) -> dict[str, Any]:
    run = {"model": "bench-model", "seed": seed, "started_at": "2025-01-01T00:00:00Z"}
    return build_results(make_samples(count, seed), index_name="bench_index", run=run)


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Headless Chromium from the system packages; nothing downloaded, no network use."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium-manager must never fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
        # no phoning home: every host name resolves to nothing, and the services that would
        "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-extensions",
        "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
        "--disable-client-side-phishing-detection",
        "--disable-features=OptimizationHints,OptimizationGuideModelDownloading,Translate,"
        "MediaRouter",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def measure(driver: Any, url: str) -> dict[str, float]:
    driver.get(url)
    deadline = time.monotonic() + 60
    while driver.execute_script("return window.__evalindexReady === undefined"):
        if time.monotonic() > deadline:
            raise RuntimeError("the report never signalled that it was drawn")
        time.sleep(0.05)
    figures: dict[str, float] = {
        "first_render_ms": driver.execute_script("return window.__evalindexReady"),
        "script_start_ms": driver.execute_script("return window.__evalindex.scriptStartMs"),
        "data_parsed_ms": driver.execute_script("return window.__evalindex.dataParsedMs"),
        "dom_content_loaded_ms": driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
        ),
    }
    api = "return window.__evalindex.setFilters(arguments[0])"
    figures["text_filter_first_ms"] = driver.execute_script(api, {"text": "refund 42"})
    figures["text_filter_ms"] = driver.execute_script(api, {"text": "answer: 7"})
    figures["dataset_filter_ms"] = driver.execute_script(api, {"text": "", "dataset": "mmlu"})
    figures["dataset_shown"] = driver.execute_script("return window.__evalindex.visibleCount()")
    figures["sort_ms"] = driver.execute_script(
        "const t = performance.now(); window.__evalindex.sortBy('score');"
        "return performance.now() - t"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the report into DIR and keep it")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        started = time.perf_counter()
        results = make_results(args.samples)
        built = time.perf_counter()
        path = write_html(folder / "report.html", results)
        written = time.perf_counter()
        size_mb = path.stat().st_size / 1e6
        print(f"samples:               {args.samples}")
        print(f"results document:      {built - started:.2f} s to build")
        print(f"report file:           {size_mb:.1f} MB, {written - built:.2f} s to render+write")
        runs = []
        with chromium(Path(scratch) / "profile") as driver:
            for _ in range(args.repeat):
                runs.append(measure(driver, path.resolve().as_uri()))
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(f"first render:          {median['first_render_ms']:.0f} ms (navigation start to table)")
    print(
        f"  of which:            HTML parsed by {median['script_start_ms']:.0f} ms, "
        f"JSON parsed by {median['data_parsed_ms']:.0f} ms"
    )
    print(f"text filter, first:    {median['text_filter_first_ms']:.0f} ms (builds search text)")
    print(f"text filter, again:    {median['text_filter_ms']:.0f} ms")
    print(
        f"dataset filter:        {median['dataset_filter_ms']:.0f} ms "
        f"({median['dataset_shown']:.0f} rows match)"
    )
    print(f"sort by score:         {median['sort_ms']:.0f} ms")
    timed = ("first_render_ms", "text_filter_first_ms", "text_filter_ms", "dataset_filter_ms")
    slow = [key for key in timed if median[key] >= TARGET_MS]
    verdict = "missed: " + ", ".join(slow) if slow else "met"
    print(f"target under {TARGET_MS:.0f} ms each: {verdict}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
