"""Hooks a conftest.py or another plugin can implement to extend what a run produces.

Both are called once per index, at the end of the run, in the process that writes the
results (the controller under pytest-xdist, never a worker), in pytest's usual order of
hook implementations. Implement them like any pytest hook, e.g. in ``conftest.py``::

    def pytest_evalindex_results(config, results):
        results["run"]["commit"] = os.environ.get("GIT_COMMIT")
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_evalindex_results(config: pytest.Config, results: dict[str, Any]) -> None:
    """Change the results of one index before anything reads them.

    ``results`` is the results document (the dict written as ``--index-json`` and
    ``.evalindex/last.json``): add keys, or post-process samples and tables in place. The
    gates, comparisons, reports and saved runs all see the changed document. It must stay
    JSON-serialisable.
    """


@pytest.hookspec
def pytest_evalindex_summary(
    config: pytest.Config, results: dict[str, Any], lines: list[str]
) -> None:
    """Change the terminal summary of one index before it is printed.

    ``lines`` are the summary's lines (the index line and its tables), printed under the
    ``evalindex: <index>`` header: append, insert or remove lines in place. ``results`` is
    the index's results document, for reading only.
    """
