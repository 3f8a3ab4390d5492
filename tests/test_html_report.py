"""The HTML report without a browser: page structure, escaping, atomic writes, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import pytest
from factories import make_results, make_sample

from pytest_evalindex.cli import main
from pytest_evalindex.report import html as report_html
from pytest_evalindex.report.html import BASE_SAMPLE_FIELDS, render_html, script_json, write_html
from pytest_evalindex.results.schema import Results, Sample

HOSTILE = (
    "</script><script>window.__xss = 1</script>"
    '<img src=x onerror="window.__xss = 2"><!-- <script> & \u2028\u2029 </SCRIPT >'
)


def page_sample(n: int, **changes: Any) -> Sample:
    """Sample ``n`` of a two-dataset index, with every field the page shows filled in;
    ``changes`` replace any key."""
    dataset = "alpha" if n % 2 else "beta"
    sample = make_sample(
        f"{dataset}/{n}",
        1.0 if n % 3 else 0.0,
        task_type="qa",
        tags=["en"],
        categories=["idx", "general"],
        weight=0.5,
        position=n,
        input=[{"role": "user", "content": f"question {n}"}],
        response=f"answer {n}",
        reasoning="",
        target=f"answer {n}",
        explanation="compared",
        metrics={"strict": 1.0},
        usage={"prompt_tokens": 10, "completion_tokens": 5},
        latency_s=0.5,
    )
    cast("dict[str, Any]", sample).update(changes)
    return sample


def page_results(samples: list[Sample] | None = None) -> Results:
    if samples is None:
        samples = [page_sample(n) for n in range(12)]
    return make_results(samples, n_boot=50)


class PageParser(HTMLParser):
    """Elements with their attributes, and the text of each script and style element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style", "title"):
            self._open = (tag, dict(attrs))
            self.raw.append((tag, dict(attrs), ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            tag, attrs, text = self.raw[-1]
            self.raw[-1] = (tag, attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and self._open[0] == tag:
            self._open = None


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def data_block(page: str) -> Any:
    parsed = parse(page)
    blocks = [text for tag, attrs, text in parsed.raw if attrs.get("id") == "evalindex-data"]
    assert len(blocks) == 1
    return json.loads(blocks[0])


# --------------------------------------------------------------------------- escaping


def test_script_json_escapes_everything_that_could_end_the_block() -> None:
    value = {"response": HOSTILE, "keys <&>": [HOSTILE], "lone": "\ud800"}
    text = script_json(value)
    for character in "<>&\u2028\u2029\ud800":
        assert character not in text
    assert "\\u003c/script\\u003e" in text
    assert json.loads(text) == value
    text.encode("utf-8")  # a lone surrogate would not encode


def test_script_json_keeps_other_text_readable_and_drops_non_finite_numbers() -> None:
    text = script_json({"zh": "你好", "nan": float("nan"), "inf": [float("inf")], "ok": 0.5})
    assert "你好" in text
    assert json.loads(text) == {"zh": "你好", "nan": None, "inf": [None], "ok": 0.5}


def test_hostile_text_stays_inside_the_data_block() -> None:
    sample = page_sample(
        1,
        id=HOSTILE,
        dataset=HOSTILE,
        tags=[HOSTILE],
        response=HOSTILE,
        reasoning=HOSTILE,
        target=HOSTILE,
        explanation=HOSTILE,
        metrics={HOSTILE: HOSTILE},
        input=[{"role": HOSTILE, "content": HOSTILE}],
    )
    results = page_results([sample, page_sample(2)])
    page = render_html(results, title=HOSTILE)
    parsed = parse(page)
    scripts = [(attrs, text) for tag, attrs, text in parsed.raw if tag == "script"]
    assert [attrs.get("type") for attrs, _ in scripts] == ["application/json", None]
    assert [tag for tag, _ in parsed.tags].count("img") == 0
    assert page.count("</script>") == 2
    assert data_block(page)["results"] == json.loads(json.dumps(results))
    titles = [text for tag, _, text in parsed.raw if tag == "title"]
    assert titles == [HOSTILE]  # the parser unescaped it: it was text, not markup


def test_page_loads_nothing_from_elsewhere() -> None:
    page = render_html(page_results())
    parsed = parse(page)
    for tag, attrs in parsed.tags:
        assert not {"src", "href", "srcset", "action"} & set(attrs), (tag, attrs)
    style = next(text for tag, _, text in parsed.raw if tag == "style")
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page


def test_content_security_policy_allows_exactly_the_inline_script_and_style() -> None:
    page = render_html(page_results())
    parsed = parse(page)
    policy = next(
        attrs["content"]
        for tag, attrs in parsed.tags
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    )
    assert policy is not None

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    script = next(text for tag, attrs, text in parsed.raw if tag == "script" and not attrs)
    style = next(text for tag, _, text in parsed.raw if tag == "style")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'sha256-{digest(script)}'"
    assert directives["style-src"] == f"'sha256-{digest(style)}'"
    assert "connect-src" not in directives  # default-src 'none' covers it


def test_the_script_builds_the_page_without_markup() -> None:
    script = report_html._asset("report.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert not re.search(r"new\s+Function", script)
    assert "textContent" in script


# --------------------------------------------------------------------------- content


def test_payload_carries_results_comparison_and_title() -> None:
    results = page_results()
    comparison = {"schema_version": 1, "rows": [], "flips": {}, "base": {"label": "b"}}
    payload = data_block(render_html(results, comparison, title="My report"))
    assert payload["title"] == "My report"
    assert payload["comparison"] == comparison
    assert payload["results"]["index"] == json.loads(json.dumps(results["index"]))
    assert payload["base"] is None


def test_default_title_names_the_index() -> None:
    parsed = parse(render_html(page_results()))
    assert [text for tag, _, text in parsed.raw if tag == "title"] == ["idx · evalindex report"]


def test_base_results_are_slimmed_to_the_shown_samples() -> None:
    results = page_results([page_sample(n) for n in range(4)])
    base_samples = [page_sample(n, response=f"old {n}") for n in range(6)]
    base = page_results(base_samples)
    payload = data_block(render_html(results, {"base": {"label": "0001_base"}}, base_results=base))
    assert payload["base"]["label"] == "0001_base"
    shown = payload["base"]["samples"]
    assert [s["id"] for s in shown] == [page_sample(n)["id"] for n in range(4)]
    assert all(set(s) <= set(BASE_SAMPLE_FIELDS) for s in shown)
    assert shown[0]["response"] == "old 0"


def test_a_document_without_samples_or_tables_still_renders() -> None:
    page = render_html({"index": {"name": "empty"}})
    assert data_block(page)["results"] == {"index": {"name": "empty"}}
    assert render_html({})  # nothing at all: still a page


SYSTEM = "You are a careful assistant. Think step by step and end with 'Answer: <x>'."


def test_repeated_prompt_messages_are_stored_once() -> None:
    parts = [{"type": "text", "text": SYSTEM}]
    samples = [
        page_sample(
            n, input=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"q{n}"}]
        )
        for n in range(3)
    ]
    samples.append(page_sample(3, input=[{"role": "user", "content": parts}]))
    results = page_results(samples)
    before = json.dumps(results)
    payload = data_block(render_html(results))
    assert json.dumps(results) == before  # the caller's document is untouched
    assert payload["shared_texts"] == [SYSTEM]
    shown = payload["results"]["samples"]
    assert [s["input"][0]["content"] for s in shown[:3]] == [{"$shared": 0}] * 3
    assert shown[0]["input"][1] == {"role": "user", "content": "q0"}
    assert shown[3]["input"] == [{"role": "user", "content": parts}]
    assert shown[0]["response"] == samples[0]["response"]


def test_short_or_unique_prompt_messages_stay_in_place() -> None:
    unique = [
        page_sample(n, input=[{"role": "user", "content": f"{n} " + "x" * 80}]) for n in range(3)
    ]
    short = [page_sample(n, input=[{"role": "user", "content": "same"}]) for n in range(3)]
    for samples in (unique, short):
        payload = data_block(render_html(page_results(samples)))
        assert payload["shared_texts"] == []
        assert payload["results"]["samples"] == json.loads(json.dumps(samples))


# --------------------------------------------------------------------------- writing


def test_write_html_creates_parents_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "report.html"
    assert write_html(target, page_results()) == target
    first = target.read_text(encoding="utf-8")
    assert first == render_html(page_results())
    write_html(target, page_results(), title="again")
    assert "<title>again</title>" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")

    def refuse(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_html(target, page_results())
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# --------------------------------------------------------------------------- the CLI


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_cli_report_prints_the_tables_and_writes_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_json(tmp_path / "last.json", page_results())
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(results), "--html", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("index idx: ")
    assert f"HTML report -> {out}" in captured.err
    payload = data_block(out.read_text(encoding="utf-8"))
    assert payload["results"]["index"]["name"] == "idx"
    assert payload["comparison"] is None


def test_cli_report_without_html_only_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_json(tmp_path / "last.json", page_results())
    assert main(["report", str(results)]) == 0
    assert "task_type" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.json"]


def test_cli_report_compare_embeds_the_comparison_and_base_answers(tmp_path: Path) -> None:
    new_samples = [page_sample(n) for n in range(12)]
    # sample 0 was missed in the new run (n % 3 == 0): passed in the base run
    base_samples = [page_sample(n, response=f"old {n}") for n in range(12)]
    base_samples[0].update(outcome="passed", score=1.0)
    base = write_json(tmp_path / "0001_base.json", page_results(base_samples))
    new = write_json(tmp_path / "last.json", page_results(new_samples))
    out = tmp_path / "report.html"
    assert main(["report", str(new), "--html", str(out), "--compare", str(base)]) == 0
    payload = data_block(out.read_text(encoding="utf-8"))
    comparison = payload["comparison"]
    assert (comparison["base"]["label"], comparison["new"]["label"]) == ("0001_base", "last")
    assert comparison["flips"]["passed_to_missed"] == [new_samples[0]["id"]]
    assert payload["base"]["samples"][0] == {
        key: base_samples[0][key] for key in BASE_SAMPLE_FIELDS
    }


def test_cli_report_bad_results_file_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert main(["report", str(broken), "--html", str(tmp_path / "r.html")]) == 4
    err = capsys.readouterr().err
    assert err.startswith("evalindex: error: ") and "broken.json" in err
    assert main(["report", str(tmp_path / "missing.json")]) == 4
    assert not (tmp_path / "r.html").exists()


def test_cli_report_compare_of_different_test_sets_needs_intersection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_json(tmp_path / "base.json", page_results([page_sample(n) for n in range(12)]))
    new = write_json(tmp_path / "new.json", page_results([page_sample(n) for n in range(10)]))
    out = tmp_path / "report.html"
    args = ["report", str(new), "--html", str(out), "--compare", str(base)]
    assert main(args) == 4
    assert "did not sample the same test set" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--intersection"]) == 0
    comparison = data_block(out.read_text(encoding="utf-8"))["comparison"]
    assert comparison["only_in_base"] == [page_sample(n)["id"] for n in (10, 11)]


def test_cli_report_unwritable_output_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_json(tmp_path / "last.json", page_results())
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert main(["report", str(results), "--html", str(blocker / "report.html")]) == 4
    assert "cannot write" in capsys.readouterr().err
