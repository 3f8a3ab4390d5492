"""What a not-passed index item says in pytest-html's report.

pytest-html shows a missed item as Passed (pytest's own outcome) with nothing to read, and a
failed one with the error alone. With pytest-html writing a report (``--html``), each index
item that did not pass carries one HTML extra: outcome, score, prompt, response, target and
the scorer's reason, escaped, since model output is untrusted. The plugin's own
``--index-html`` page remains the place to read every sample.
"""

from __future__ import annotations

import html
from typing import Any

import pytest


def pytest_html_writes_report(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("html") and bool(config.getoption("htmlpath", None))


def add_details(report: pytest.TestReport, text: str) -> None:
    """Append the details as an HTML extra, after any extras already on the report."""
    extra: dict[str, Any] = {
        "name": "evalindex",
        "format_type": "html",
        "content": f'<pre class="evalindex">{html.escape(text)}</pre>',
        "mime_type": None,
        "extension": None,
    }
    report.extras = [*getattr(report, "extras", []), extra]  # type: ignore[attr-defined]
