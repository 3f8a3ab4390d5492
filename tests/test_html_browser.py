"""The HTML report in a real headless Chromium, opened from disk.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` package; when
they are missing these tests fail (they do not skip) with the command that installs them.
Nothing is downloaded: the browser and driver paths are given explicitly and selenium-manager,
which could otherwise fetch a browser, is disabled and made to fail if it is called anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_evalindex.report.html import write_html
from pytest_evalindex.results.aggregate import build_results
from pytest_evalindex.results.compare import compare_results

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver && pip install selenium"
BROWSER_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--window-size=1400,1000",
    # no phoning home: every host name resolves to nothing, and the services that would try
    # are off (without these, Chromium still looks up accounts.google.com and others)
    "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-extensions", "--disable-default-apps",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
    "--disable-features=OptimizationHints,OptimizationGuideModelDownloading,Translate,"
    "MediaRouter",
)  # fmt: skip
PAGE_SIZE = 100

# each payload sets window.__xss if it ever runs
XSS_PAYLOADS = (
    "<script>window.__xss = 'script tag'</script>",
    "</script><script>window.__xss = 'closed the data block'</script>",
    "<img src=x onerror=\"window.__xss = 'img onerror'\">",
    "<svg onload=\"window.__xss = 'svg onload'\"></svg>",
    "<!-- <script>window.__xss = 'comment'</script> -->",
    "<iframe srcdoc=\"<script>parent.__xss = 'iframe'</script>\"></iframe>",
    "javascript:window.__xss = 'url'",
    "<script>alert('xss')</script>",
)
HOSTILE = "\n".join(XSS_PAYLOADS)
HOSTILE_ID = "alpha/<img src=x onerror=\"window.__xss = 'id'\">"

SYSTEM_PROMPT = "Be brief.\n  Keep   spacing.\n" + "Answer with the token only. " * 3
DATASETS = {
    # name: (count, weight, task_type, tags, categories)
    "alpha": (120, 0.5, "qa", ["en"], ["idx", "general"]),
    "beta": (80, 0.3, "reasoning", ["en", "zh"], ["idx", "reasoning"]),
    "gamma": (50, 0.2, "reasoning", ["zh"], ["idx", "reasoning"]),
}


def make_samples() -> list[dict[str, Any]]:
    samples = []
    n = 0
    for dataset, (count, weight, task_type, tags, categories) in DATASETS.items():
        for k in range(count):
            outcome = "error" if n % 25 == 7 else "passed" if n % 3 else "missed"
            samples.append(
                {
                    "id": f"{dataset}/{k}",
                    "dataset": dataset,
                    "subset": "default",
                    "task_type": task_type,
                    "tags": tags,
                    "categories": categories,
                    "weight": weight,
                    "outcome": outcome,
                    "score": None if outcome == "error" else float(outcome == "passed"),
                    "input": [
                        # long and on every sample: the page stores it once
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": f"What is item {k} of {dataset}?"},
                    ],
                    "response": f"It is token-{n:04d}z.\nSecond line of {dataset}/{k}.",
                    "reasoning": f"thinking about {dataset}/{k}" if k % 2 else "",
                    "target": f"token-{n:04d}z",
                    "explanation": f"compared with token-{n:04d}z",
                    "metrics": {"strict": float(n % 3 != 0), "loose": 1.0},
                    "usage": {"prompt_tokens": 20 + k, "completion_tokens": 7},
                    # distinct for every sample: 37 and 250 share no factor
                    "latency_s": round(0.1 + (n * 37 % 250) / 100, 2),
                }
            )
            n += 1
    return samples


def make_hostile_sample() -> dict[str, Any]:
    return {
        "id": HOSTILE_ID,
        "dataset": "alpha",
        "subset": "default",
        "task_type": "qa",
        "tags": ["en", "<b onmouseover=\"window.__xss = 'tag'\">tag</b>"],
        "categories": ["idx", "general"],
        "weight": 0.5,
        "outcome": "missed",
        "score": 0.0,
        "input": [{"role": "user</script>", "content": HOSTILE}],
        "response": HOSTILE,
        "reasoning": HOSTILE,
        "target": HOSTILE,
        "explanation": HOSTILE,
        "metrics": {"<script>window.__xss = 'metric'</script>": HOSTILE},
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "latency_s": 0.01,
    }


def results_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    run = {"model": "test-model", "seed": 1, "started_at": "2025-01-01T00:00:00Z"}
    return build_results(samples, index_name="idx", run=run, n_boot=200)


def base_samples_of(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same samples as an earlier run: a few answers flipped the other way."""
    base = []
    for position, sample in enumerate(samples):
        old = dict(sample, response=f"base answer {position}")
        if sample["outcome"] != "error" and position % 10 == 0:
            passed = sample["outcome"] == "missed"
            old.update(outcome="passed" if passed else "missed", score=float(passed))
        base.append(old)
    return base


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found; install the browser with: {INSTALL}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.selenium_manager import SeleniumManager
    except ImportError:
        pytest.fail(f"the selenium package is not installed; install it with: {INSTALL}")

    def no_downloads(*args: object, **kwargs: object) -> Any:
        raise AssertionError("selenium-manager was called: it could download a browser")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        patch.setattr(SeleniumManager, "binary_paths", no_downloads)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in BROWSER_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def report_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("reports")
    samples = make_samples()
    results = results_of(samples)
    base = results_of(base_samples_of(samples))
    comparison = compare_results(base, results, n_boot=200, base_label="0001_base")
    hostile = results_of([*samples[:5], make_hostile_sample()])
    hostile_page = write_html(folder / "hostile.html", hostile, title=HOSTILE)
    # the same page without its Content-Security-Policy: escaping alone must hold
    without_policy = re.sub(
        r'<meta http-equiv="Content-Security-Policy"[^>]*>\n',
        "",
        hostile_page.read_text(encoding="utf-8"),
    )
    assert without_policy != hostile_page.read_text(encoding="utf-8")
    (folder / "hostile-no-csp.html").write_text(without_policy, encoding="utf-8")
    partial_run = {"ran": len(samples), "of": 400, "why": "-k, <b>interrupted</b>"}
    partial = {**results, "run": {**results["run"], "partial": partial_run}}
    return {
        "samples": samples,
        "results": results,
        "partial": write_html(folder / "partial.html", partial),
        "comparison": comparison,
        "base": base,
        "report": write_html(folder / "report.html", results),
        "compare": write_html(folder / "compare.html", results, comparison, base_results=base),
        "hostile": hostile_page,
        "hostile-no-csp": folder / "hostile-no-csp.html",
    }


# --------------------------------------------------------------------------- helpers


def open_report(driver: Any, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready === 'true'")
    )


def wait_for(driver: Any, condition: Any, message: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 5, poll_frequency=0.05).until(lambda d: condition(), message)


def shown_count(driver: Any) -> int:
    return int(driver.find_element("id", "sample-count").get_attribute("data-shown"))


def row_ids(driver: Any) -> list[str]:
    # read in one script call: the rows may be redrawn between two WebDriver calls
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll('#samples-table tr.sample-row'),"
            " (row) => row.dataset.id)"
        )
    )


def text_of(element: Any) -> str:
    return str(element.get_property("textContent"))


def search(driver: Any, text: str) -> None:
    box = driver.find_element("id", "filter-text")
    box.clear()
    box.send_keys(text)


def select(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", element_id)).select_by_value(value)


def severe_console_messages(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def fmt(value: float) -> str:
    return f"{value:.4f}"


def signed(delta: float) -> str:
    return ("+" if delta > 0 else "") + fmt(delta)


# --------------------------------------------------------------------------- tests


def test_page_opens_from_disk_without_console_errors_or_requests(
    browser: Any, report_files: dict[str, Any]
) -> None:
    browser.get_log("browser")  # drop anything from earlier pages
    open_report(browser, report_files["report"])
    assert browser.current_url.startswith("file://")
    assert severe_console_messages(browser) == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.find_elements("id", "render-error") == []
    assert browser.execute_script("return typeof window.__evalindexReady") == "number"


def test_index_score_interval_count_and_errors_are_shown(
    browser: Any, report_files: dict[str, Any]
) -> None:
    open_report(browser, report_files["report"])
    index = report_files["results"]["index"]
    assert browser.find_element("id", "index-score").text == fmt(index["score"])
    low, high = index["ci95"]
    assert browser.find_element("id", "index-ci").text == f"[{fmt(low)}, {fmt(high)}]"
    assert browser.find_element("id", "index-count").text == str(index["count"])
    assert browser.find_element("id", "index-errors").text == str(index["errors"])
    tree = browser.find_elements("css selector", "#category-tree tbody tr")
    names = [row.get_attribute("data-name") for row in tree]
    assert names == ["idx", "idx/general", "alpha", "idx/reasoning", "beta", "gamma"]
    bins = browser.find_elements("css selector", "#histogram rect.bin")
    assert sum(int(b.get_attribute("data-count")) for b in bins) == index["count"]
    task_rows = browser.find_elements("css selector", "#table-task_type tbody tr")
    assert [row.get_attribute("data-name") for row in task_rows] == ["qa", "reasoning"]


def test_secondary_metrics_table_is_shown(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["report"])
    expected = report_files["results"]["metrics"]
    assert len(expected) == 8  # strict and loose for three datasets and for the whole index
    rows = browser.find_elements("css selector", "#table-metrics tbody tr")
    shown = [[text_of(cell) for cell in row.find_elements("tag name", "td")] for row in rows]
    assert shown == [
        ["(all)" if r["dataset"] is None else r["dataset"], r["metric"], fmt(r["mean"]),
         str(r["count"])]
        for r in expected
    ]  # fmt: skip
    # alpha: samples 0..119, strict is 1 unless n % 3 == 0; errors (n % 25 == 7) are left out
    alpha = [n for n in range(120) if n % 25 != 7]
    assert shown[0] == ["alpha", "strict", fmt(sum(n % 3 != 0 for n in alpha) / len(alpha)),
                        str(len(alpha))]  # fmt: skip


def test_the_cost_table_and_its_notes_are_shown(
    browser: Any, report_files: dict[str, Any], tmp_path: Path
) -> None:
    from pytest_evalindex.results.usage import cost_summary

    samples = [dict(s) for s in report_files["samples"]]
    for n, sample in enumerate(samples):
        sample["cached"] = n % 4 == 0  # cost nothing this run, counted as first asked
    results = results_of(samples)
    prices = {"input": 2.0, "output": 10.0, "cached_input": 1.0}
    cost = cost_summary(samples, prices=prices, budget=5.0)
    assert cost is not None
    results["usage"]["cost"] = cost
    open_report(browser, write_html(tmp_path / "cost.html", results))
    rows = browser.find_elements("css selector", "#table-cost tbody tr")
    shown = [[text_of(cell) for cell in row.find_elements("tag name", "td")] for row in rows]
    usd = "{:.6f}".format
    expected = [
        [row["name"], usd(row["model"]), "-", usd(row["total"]), usd(row["cached"])]
        for row in cost["dataset"]
    ]
    expected.append(["total", usd(cost["model"]), "-", usd(cost["total"]), usd(cost["cached"])])
    assert shown == expected and len(shown) == 4
    assert cost["total"] > 0 and cost["cached"] > 0  # both notes have something to say
    notes = [text_of(p) for p in browser.find_elements("css selector", "p.cost-note")]
    assert notes == [
        f"cached answers cost nothing this run; they cost ${usd(cost['cached'])} when first asked",
        f"budget: ${usd(cost['total'])} spent of --index-budget $5",
    ]
    # a run without prices has no cost section
    open_report(browser, report_files["report"])
    assert browser.find_elements("id", "table-cost") == []


def test_a_partial_run_shows_a_banner(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["partial"])
    banner = browser.find_element("id", "partial-banner")
    assert banner.is_displayed()
    count = len(report_files["samples"])
    assert banner.text.startswith(f"Partial run: {count} of 400 records (-k, <b>interrupted</b>).")
    assert "the whole index" in banner.text
    # the banner comes before the score cards, and a whole run has none
    assert browser.execute_script(
        "const b = document.getElementById('partial-banner');"
        "return !!(b.compareDocumentPosition(document.getElementById('summary'))"
        " & Node.DOCUMENT_POSITION_FOLLOWING);"
    )
    assert browser.find_elements("css selector", "#partial-banner b") == []
    open_report(browser, report_files["report"])
    assert browser.find_elements("id", "partial-banner") == []


def test_filters_narrow_the_table(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["report"])
    samples = report_files["samples"]
    assert shown_count(browser) == len(samples)
    assert len(row_ids(browser)) == PAGE_SIZE

    select(browser, "filter-dataset", "beta")
    assert shown_count(browser) == 80
    assert len(row_ids(browser)) == 80
    assert all(i.startswith("beta/") for i in row_ids(browser))

    select(browser, "filter-outcome", "missed")
    expected = [s["id"] for s in samples if s["dataset"] == "beta" and s["outcome"] == "missed"]
    assert row_ids(browser) == expected

    select(browser, "filter-dataset", "")
    select(browser, "filter-outcome", "")
    select(browser, "filter-tag", "zh")
    assert shown_count(browser) == sum("zh" in s["tags"] for s in samples)
    select(browser, "filter-task-type", "reasoning")
    assert shown_count(browser) == 130

    browser.find_element("id", "filter-clear").click()
    search(browser, "TOKEN-0123Z")  # case-insensitive, matches response, target, explanation
    wait_for(browser, lambda: shown_count(browser) == 1, "the search did not narrow to 1")
    assert row_ids(browser) == [samples[123]["id"]]
    search(browser, "item 7 of gamma")  # the prompt is searched too
    wait_for(browser, lambda: row_ids(browser) == ["gamma/7"], "prompt search failed")
    search(browser, "no such text anywhere")
    wait_for(browser, lambda: shown_count(browser) == 0, "an unmatched search showed rows")
    assert browser.find_elements("css selector", "#samples-table tr.no-rows")


def test_pager_moves_through_pages(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["report"])
    ids = [s["id"] for s in report_files["samples"]]
    assert browser.find_element("id", "page-info").text == "page 1 of 3"
    browser.find_element("id", "pager-next").click()
    browser.find_element("id", "pager-next").click()
    assert browser.find_element("id", "page-info").text == "page 3 of 3"
    assert row_ids(browser) == ids[200:]
    assert not browser.find_element("id", "pager-next").is_enabled()
    select(browser, "page-size", "500")
    assert row_ids(browser) == ids


def test_a_row_expands_to_the_whole_sample(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["report"])
    sample = next(s for s in report_files["samples"] if s["id"] == "beta/3")
    search(browser, sample["target"])
    wait_for(browser, lambda: row_ids(browser) == ["beta/3"], "beta/3 not found")
    row = browser.find_element("css selector", "#samples-table tr.sample-row")
    row.click()
    assert row.get_attribute("aria-expanded") == "true"
    detail = browser.find_element("css selector", "#samples-table tr.sample-detail")
    messages = detail.find_elements("css selector", ".detail-prompt .message pre")
    assert [text_of(m) for m in messages] == [m["content"] for m in sample["input"]]
    roles = detail.find_elements("css selector", ".detail-prompt .message .role")
    assert [text_of(r) for r in roles] == ["system", "user"]
    response = detail.find_element("css selector", ".detail-response pre")
    assert text_of(response) == sample["response"]
    reasoning = detail.find_element("css selector", ".detail-reasoning pre")
    assert text_of(reasoning) == sample["reasoning"]  # apart from the response
    assert text_of(detail.find_element("css selector", ".detail-target pre")) == sample["target"]
    explanation = detail.find_element("css selector", ".detail-explanation pre")
    assert text_of(explanation) == sample["explanation"]
    metrics = text_of(detail.find_element("css selector", ".detail-metrics"))
    assert "strict" in metrics and "loose" in metrics
    facts = detail.text
    assert f"prompt tokens {sample['usage']['prompt_tokens']}" in facts
    assert f"latency {sample['latency_s']:.2f} s" in facts

    row.click()  # and collapses again
    assert browser.find_elements("css selector", "#samples-table tr.sample-detail") == []
    assert row.get_attribute("aria-expanded") == "false"


def test_columns_sort_both_ways(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["report"])
    samples = report_files["samples"]
    header = browser.find_element("css selector", "#samples-table th[data-key='latency']")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    by_latency = sorted(samples, key=lambda s: s["latency_s"])
    assert row_ids(browser)[:5] == [s["id"] for s in by_latency[:5]]
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert row_ids(browser)[:5] == [s["id"] for s in by_latency[::-1][:5]]

    browser.find_element("css selector", "#samples-table th[data-key='id']").click()
    select(browser, "filter-dataset", "gamma")
    # numeric parts in numeric order: gamma/2 before gamma/10
    assert row_ids(browser)[:12] == [f"gamma/{k}" for k in range(12)]

    score = browser.find_element("css selector", "#samples-table th[data-key='score']")
    score.click()
    score.click()  # descending; errors (no score) stay last
    cells = browser.find_elements("css selector", "#samples-table td.score-cell")
    texts = [c.text for c in cells]
    gamma = [s for s in samples if s["dataset"] == "gamma"]
    passed = sum(s["outcome"] == "passed" for s in gamma)
    errors = sum(s["outcome"] == "error" for s in gamma)
    assert texts == ["1.0000"] * passed + ["0.0000"] * (50 - passed - errors) + ["–"] * errors


def test_comparison_shows_deltas_and_flips(browser: Any, report_files: dict[str, Any]) -> None:
    open_report(browser, report_files["compare"])
    assert severe_console_messages(browser) == []
    comparison = report_files["comparison"]
    index_row = comparison["rows"][0]
    assert browser.find_element("id", "index-delta").text == signed(index_row["delta"])
    low, high = index_row["ci95"]
    assert browser.find_element("id", "index-delta-ci").text == f"[{fmt(low)}, {fmt(high)}]"
    alpha_row = next(
        r for r in comparison["rows"] if r["table"] == "dataset" and r["name"] == "alpha"
    )
    cells = browser.find_elements("css selector", "#table-dataset tr[data-name='alpha'] td")
    texts = [text_of(c) for c in cells]
    assert texts[-4] == fmt(alpha_row["base"])
    assert texts[-3] == signed(alpha_row["delta"])
    assert texts[-2].startswith("[")

    flips = comparison["flips"]
    assert flips["passed_to_missed"] and flips["missed_to_passed"]
    heading = browser.find_element("css selector", "#flips-regressed h3").text
    assert heading == f"passed → missed ({len(flips['passed_to_missed'])})"
    card = browser.find_element("css selector", "#flips-regressed .flip")
    flipped_id = flips["passed_to_missed"][0]
    assert card.get_attribute("data-id") == flipped_id
    position = next(i for i, s in enumerate(report_files["samples"]) if s["id"] == flipped_id)
    base_answer = card.find_element("css selector", ".flip-base pre")
    assert text_of(base_answer) == f"base answer {position}"
    new_answer = card.find_element("css selector", ".flip-new pre")
    assert text_of(new_answer) == report_files["samples"][position]["response"]

    select(browser, "filter-change", "regressed")
    assert row_ids(browser) == flips["passed_to_missed"]
    select(browser, "filter-change", "flipped")
    assert shown_count(browser) == len(flips["passed_to_missed"]) + len(flips["missed_to_passed"])
    browser.find_element("css selector", "#samples-table tr.sample-row").click()
    base_side = browser.find_element("css selector", ".sample-detail .base-response pre")
    assert text_of(base_side).startswith("base answer ")


@pytest.mark.parametrize("page", ["hostile", "hostile-no-csp"])
def test_untrusted_text_is_shown_literally_and_never_runs(
    browser: Any, report_files: dict[str, Any], page: str
) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    browser.get_log("browser")
    open_report(browser, report_files[page])
    select(browser, "page-size", "500")
    row = browser.find_element("css selector", "tr.sample-row[data-id^='alpha/<img']")
    assert row.get_attribute("data-id") == HOSTILE_ID
    row.click()
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    detail = browser.find_element("css selector", "#samples-table tr.sample-detail")
    for part in ("response", "reasoning", "target", "explanation"):
        shown = detail.find_element("css selector", f".detail-{part} pre")
        assert text_of(shown) == HOSTILE, part
    assert text_of(detail.find_element("css selector", ".detail-prompt pre")) == HOSTILE
    assert "<script>window.__xss = 'metric'</script>" in text_of(
        detail.find_element("css selector", ".detail-metrics")
    )
    assert browser.find_element("id", "report-title").text == HOSTILE.replace("\n", " ")
    assert browser.title == HOSTILE.replace("\n", " ")
    assert browser.execute_script("return window.__xss") is None
    counts = browser.execute_script(
        "return [document.scripts.length, document.images.length,"
        " document.querySelectorAll('iframe, svg:not(#histogram) script, b').length]"
    )
    assert counts == [2, 0, 0]
    assert severe_console_messages(browser) == []


def test_screenshot_is_saved(browser: Any, report_files: dict[str, Any], tmp_path: Path) -> None:
    open_report(browser, report_files["compare"])
    browser.find_element("css selector", "#samples-table tr.sample-row").click()
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    json.dumps(report_files["comparison"])  # the comparison stays plain JSON data
