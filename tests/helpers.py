"""Assertions shared by the plugin tests."""

from __future__ import annotations

import pytest


def assert_outcomes(result: pytest.RunResult, **expected: int) -> None:
    """Like ``RunResult.assert_outcomes``, but knows the plugin's own ``missed`` status."""
    __tracebackhide__ = True
    seen = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "warning")}
    assert seen == expected, result.stdout.str()
