"""What an index run adds to pytest's JUnit XML (``--junitxml``), for CI test-report pages.

* Every index item carries the properties ``score``, ``outcome``, ``dataset``, ``subset``,
  ``task_type``, ``tags`` (comma-separated) and ``explanation`` (shortened), as testcase
  ``<property>`` elements. They travel as ``user_properties`` on the reports, plain strings,
  so they reach the XML writer of an xdist controller too.
* The run adds suite properties, once per index: ``evalindex_index``, ``evalindex_score``,
  ``evalindex_ci95``, ``evalindex_count``, ``evalindex_errors``, ``evalindex_model``,
  ``evalindex_base_url``, ``evalindex_spec_sha256`` and ``evalindex_testset_sha256``. With
  several indexes in one run each name ends in ``.<index name>``, so every name is unique.
* A missed answer passes in pytest's eyes (it is not a failure unless ``--index-strict``),
  and CI pages show only passed, failed and skipped. So that a missed answer does not look
  like a right one there, its testcase gets ``<skipped type="evalindex.missed"
  message="missed: score 0.00 — reason"/>`` and the suite's ``skipped`` count includes it.
  The terminal counts and the exit status stay pytest's own: the mark is added to the file
  after pytest's writer has written it.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from pytest_evalindex.report.terminal import shorten
from pytest_evalindex.results.schema import Results, Sample

MISSED_TYPE = "evalindex.missed"
EXPLANATION_CHARS = 200
RUN_KEYS = ("index", "score", "ci95", "count", "errors", "model", "base_url",
            "spec_sha256", "testset_sha256")  # fmt: skip


def _score_text(score: Any) -> str:
    return "" if score is None else f"{float(score):.4f}"


def sample_properties(sample: Sample) -> list[tuple[str, str]]:
    """The testcase properties of one sample; strings only (they cross the xdist wire)."""
    return [
        ("score", _score_text(sample.get("score"))),
        ("outcome", str(sample.get("outcome") or "")),
        ("dataset", str(sample.get("dataset") or "")),
        ("subset", str(sample.get("subset") or "")),
        ("task_type", str(sample.get("task_type") or "")),
        ("tags", ",".join(str(t) for t in sample.get("tags") or ())),
        ("explanation", shorten(str(sample.get("explanation") or ""), EXPLANATION_CHARS)),
    ]


def public_url(url: Any) -> str:
    """A base URL without user, password or query: those may hold a credential."""
    if not url:
        return ""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def run_properties(results: Results, *, suffix: str = "") -> list[tuple[str, str]]:
    """The suite properties of one index's results, each name followed by ``suffix``."""
    index = results.get("index") or {}
    run = results.get("run") or {}
    ci95 = index.get("ci95")
    values = {
        "index": str(index.get("name") or ""),
        "score": _score_text(index.get("score")),
        "ci95": json.dumps([round(float(x), 4) for x in ci95]) if ci95 else "",
        "count": str(index.get("count", 0)),
        "errors": str(index.get("errors", 0)),
        "model": str(run.get("model") or ""),
        "base_url": public_url(run.get("base_url")),
        "spec_sha256": str(run.get("spec_sha256") or ""),
        "testset_sha256": str(run.get("testset_sha256") or ""),
    }
    return [(f"evalindex_{key}{suffix}", values[key]) for key in RUN_KEYS]


def all_run_properties(results: Sequence[Results]) -> list[tuple[str, str]]:
    """Suite properties for every index of a run: plain names for one index, names ending
    in ``.<index name>`` for several."""
    if len(results) == 1:
        return run_properties(results[0])
    return [
        prop
        for doc in results
        for prop in run_properties(doc, suffix=f".{(doc.get('index') or {}).get('name')}")
    ]


def junit_writer(config: pytest.Config) -> Any | None:
    """pytest's JUnit XML writer of this process, if ``--junitxml`` is on (xdist workers
    have none: the controller writes the file)."""
    for plugin in config.pluginmanager.get_plugins():
        if callable(getattr(plugin, "add_global_property", None)) and hasattr(plugin, "logfile"):
            return plugin
    return None


def add_run_properties(config: pytest.Config, results: Sequence[Results]) -> None:
    """Hand the run properties to pytest's writer. Called from a ``tryfirst``
    ``pytest_sessionfinish``: the writer writes the file in its own, later one."""
    writer = junit_writer(config)
    if writer is None or not results:
        return
    for name, value in all_run_properties(results):
        writer.add_global_property(name, value)


def _properties_of(testcase: ET.Element) -> dict[str, str]:
    return {
        prop.get("name", ""): prop.get("value", "")
        for prop in testcase.iterfind("properties/property")
    }


def missed_message(props: Mapping[str, str]) -> str:
    try:
        score = f"{float(props.get('score') or ''):.2f}"
    except ValueError:
        score = "-"
    reason = props.get("explanation") or "no explanation"
    return f"missed: score {score} — {reason}"


def mark_missed(root: ET.Element) -> int:
    """Give every missed testcase that has no result element yet a ``<skipped>`` one;
    returns how many. ``root`` is a ``<testsuites>`` or ``<testsuite>`` element."""
    suites: Iterable[ET.Element] = [root] if root.tag == "testsuite" else root.iter("testsuite")
    marked_total = 0
    for suite in suites:
        marked = 0
        for testcase in suite.iterfind("testcase"):
            props = _properties_of(testcase)
            if props.get("outcome") != "missed":
                continue
            if any(child.tag in ("failure", "error", "skipped") for child in testcase):
                continue  # --index-strict made it a failure already
            skipped = ET.Element("skipped", type=MISSED_TYPE, message=missed_message(props))
            properties = testcase.find("properties")
            # after the properties, where pytest puts result elements
            position = list(testcase).index(properties) + 1 if properties is not None else 0
            testcase.insert(position, skipped)
            marked += 1
        if marked:
            suite.set("skipped", str(int(suite.get("skipped", "0")) + marked))
        marked_total += marked
    return marked_total


def mark_missed_file(path: str | os.PathLike[str]) -> int:
    """Rewrite a JUnit XML file with :func:`mark_missed`; returns how many were marked."""
    target = Path(path)
    tree = ET.parse(target)
    marked = mark_missed(tree.getroot())
    if marked:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tree.write(temporary, encoding="utf-8", xml_declaration=True)
        os.replace(temporary, target)
    return marked


class MissedInJUnit:
    """Marks missed answers in the JUnit XML file once pytest's writer has written it."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self) -> Any:
        # everything after the yield runs after every other implementation, the writer's too
        result = yield
        writer = junit_writer(self.config)
        if writer is not None and os.path.exists(writer.logfile):
            mark_missed_file(writer.logfile)
        return result
