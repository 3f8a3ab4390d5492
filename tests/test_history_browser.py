"""The history page in a real headless Chromium, opened from disk.

Uses the browser of tests/test_html_browser.py (Debian's chromium and chromium-driver,
selenium with nothing downloaded); like those tests these fail, never skip, without them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import test_html_browser
from factories import make_results, make_sample

from pytest_evalindex.report.history import write_history
from pytest_evalindex.results.baselines import save_run
from pytest_evalindex.results.history import list_runs

browser = test_html_browser.browser
open_page = test_html_browser.open_report
severe_console_messages = test_html_browser.severe_console_messages
text_of = test_html_browser.text_of

HOSTILE_MODEL = "<script>window.__xss = 'model'</script><img src=x onerror=\"window.__xss = 1\">"
# model, samples answered right of 80, test set
RUNS = (
    ("alpha", 60, "a" * 64),
    ("beta", 40, "a" * 64),
    ("alpha", 70, "a" * 64),
    (HOSTILE_MODEL, 66, "b" * 64),
)


def results_of(model: str, right: int, testset: str) -> Any:
    samples = [
        make_sample(f"qa/{i}", float(i < right), task_type="qa" if i % 2 else "math", position=i)
        for i in range(80)
    ]
    return make_results(samples, index_name="idx", model=model, testset_sha256=testset)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("history")
    root = folder / ".evalindex"
    saved = [save_run(results_of(*run), root=root, name=f"r{k}") for k, run in enumerate(RUNS)]
    # a case-analysis page beside one saved run is linked from its row
    case_page = saved[2].with_suffix(".html")
    case_page.write_text("<!DOCTYPE html><title>case page</title>", encoding="utf-8")
    listing = list_runs(root)
    page = folder / "site" / "history.html"
    written = write_history(page, listing, n_boot=300)
    without_policy = re.sub(
        r'<meta http-equiv="Content-Security-Policy"[^>]*>\n', "", page.read_text("utf-8")
    )
    assert without_policy != page.read_text("utf-8")
    bare = folder / "site" / "history-no-csp.html"
    bare.write_text(without_policy, encoding="utf-8")
    return {
        "page": page,
        "no-csp": bare,
        "saved": saved,
        "case_page": case_page,
        "listing": listing,
        "standings": written.leaderboards["idx"],
    }


def file_of(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def test_page_opens_without_console_errors_or_requests(browser: Any, pages: dict[str, Any]) -> None:
    browser.get_log("browser")
    open_page(browser, pages["page"])
    assert severe_console_messages(browser) == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert browser.find_element("id", "page-title").text == "idx · evalindex history"


def test_chart_draws_a_point_per_run_and_a_line_per_model(
    browser: Any, pages: dict[str, Any]
) -> None:
    open_page(browser, pages["page"])
    chart = browser.find_element("id", "chart-0")
    points = chart.find_elements("css selector", "circle.point")
    assert sorted(p.get_attribute("data-key") for p in points) == [
        "idx/0001", "idx/0002", "idx/0003", "idx/0004",
    ]  # fmt: skip
    scores = {p.get_attribute("data-key"): float(p.get_attribute("data-score")) for p in points}
    assert scores["idx/0003"] == pytest.approx(70 / 80)
    series = chart.find_elements("css selector", "g.series")
    assert sorted(s.get_attribute("data-model") for s in series) == sorted(
        ["alpha", "beta", HOSTILE_MODEL]
    )
    alpha = next(s for s in series if s.get_attribute("data-model") == "alpha")
    line = alpha.find_element("css selector", "polyline").get_attribute("points").split()
    assert len(line) == 2
    # the later, better run is to the right and higher (SVG y grows downwards)
    (x1, y1), (x2, y2) = (tuple(map(float, point.split(","))) for point in line)
    assert x2 > x1 and y2 < y1
    assert len(chart.find_elements("css selector", "line.whisker")) == 4
    box = chart.rect
    assert box["width"] > 300 and box["height"] > 100
    legend = [text_of(e) for e in browser.find_elements("css selector", ".legend-model")]
    assert sorted(legend) == sorted(["alpha", "beta", HOSTILE_MODEL])


def test_leaderboard_rows_and_verdicts(browser: Any, pages: dict[str, Any]) -> None:
    open_page(browser, pages["page"])
    rows = browser.find_elements("css selector", "#leaderboard-0 tbody tr")
    standings = pages["standings"]
    assert [r.get_attribute("data-key") for r in rows] == [s.run.key for s in standings]
    assert [r.get_attribute("data-key") for r in rows] == ["idx/0003", "idx/0004", "idx/0002"]
    cells = [[text_of(c) for c in row.find_elements("tag name", "td")] for row in rows]
    assert cells[0][:2] == ["1", "alpha"] and cells[0][-1] == "best"
    assert cells[1][1] == HOSTILE_MODEL
    # beta answered 40 of 80 against alpha's 70: far below; the paired delta is exact
    assert cells[2][1] == "beta"
    assert cells[2][4] == f"{40 / 80:.4f}"
    assert cells[2][6] == f"{40 / 80 - 70 / 80:+.4f}"
    assert cells[2][9] == "80"
    assert cells[2][-1] == "significantly below the best"
    assert rows[2].get_attribute("data-verdict") == "below"
    expected_p = standings[1].p_value
    verdict = "significantly below the best" if expected_p < 0.05 else "not significantly"
    assert cells[1][-1].startswith(verdict)


def test_links_resolve_to_the_saved_files_and_to_runs_on_the_page(
    browser: Any, pages: dict[str, Any]
) -> None:
    open_page(browser, pages["page"])
    json_links = browser.find_elements("css selector", "#runs-0 a.json-link")
    targets = [file_of(a.get_property("href")) for a in json_links]
    # newest first
    assert targets == [path.resolve() for path in reversed(pages["saved"])]
    assert all(target.is_file() for target in targets)
    html_links = browser.find_elements("css selector", "#runs-0 a.html-link")
    assert [file_of(a.get_property("href")) for a in html_links] == [pages["case_page"].resolve()]
    # the links are relative: the folder can move and they still resolve
    raw = browser.execute_script(
        "return Array.from(document.querySelectorAll('a.json-link'), a => a.getAttribute('href'))"
    )
    assert raw[0] == "../.evalindex/runs/idx/0004_r3.json"
    # in-page links (leaderboard, chart points, previous run of a test set) land on a run row
    anchors = browser.execute_script(
        "return Array.from(document.querySelectorAll('a.run-link, a.point-link'),"
        " a => a.getAttribute('href'))"
    )
    assert len(anchors) >= 4 + 3
    for href in anchors:
        assert browser.execute_script("return !!document.getElementById(arguments[0])", href[1:]), (
            href
        )
    previous = browser.find_elements("css selector", "#runs-0 tr.run-row td.previous")
    assert [text_of(cell) for cell in previous] == ["-", "idx/0002", "idx/0001", "-"]
    browser.find_element("css selector", "#leaderboard-0 a.run-link").click()
    assert browser.current_url.endswith("#run-idx-0003")
    html_links = browser.find_elements("css selector", "#runs-0 a.html-link")
    html_links[0].click()
    assert browser.title == "case page"


def test_runs_table_shows_each_run(browser: Any, pages: dict[str, Any]) -> None:
    open_page(browser, pages["page"])
    rows = browser.find_elements("css selector", "#runs-0 tbody tr")
    cells = [[text_of(c) for c in row.find_elements("tag name", "td")] for row in rows]
    assert [row[0] for row in cells] == ["idx/0004_r3", "idx/0003_r2", "idx/0002_r1", "idx/0001_r0"]
    headers = [text_of(h) for h in browser.find_elements("css selector", "#runs-0 th")]
    assert headers[8:10] == ["math", "qa"]
    # run, saved, model, commit, test set, cmp, index, CI, math, qa, cost, previous, files
    assert [row[5] for row in cells] == ["-", "A", "A", "A"]
    assert cells[0][4] == "b" * 12
    assert cells[1][6] == f"{70 / 80:.4f}"
    assert cells[1][10] == "-"  # no cost recorded


@pytest.mark.parametrize("page", ["page", "no-csp"])
def test_a_hostile_model_name_stays_text(browser: Any, pages: dict[str, Any], page: str) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    browser.get_log("browser")
    open_page(browser, pages[page])
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert browser.execute_script("return window.__xss") is None
    shown = browser.find_elements("css selector", "td.model")
    assert sum(text_of(cell) == HOSTILE_MODEL for cell in shown) == 2  # leaderboard and runs
    counts = browser.execute_script(
        "return [document.scripts.length, document.images.length,"
        " document.querySelectorAll('main script, main img').length]"
    )
    assert counts == [2, 0, 0]
    assert severe_console_messages(browser) == []


def test_screenshot_is_saved(browser: Any, pages: dict[str, Any], tmp_path: Path) -> None:
    open_page(browser, pages["page"])
    shot = tmp_path / "history.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
