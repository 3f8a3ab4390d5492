"""Shared fixtures for the project's own tests."""

from __future__ import annotations

# Imported here so in-process pytester runs, which restore sys.modules afterwards, never
# unload them: httpx maps httpcore's exceptions by class and breaks if a second copy loads.
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest


@pytest.fixture(params=[pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")])
def run_mode(request: pytest.FixtureRequest) -> list[str]:
    """Extra pytest args: a plugin test that takes it runs once serially and once with two
    workers. Every test using ``pytester`` takes it or is listed, with the reason, in
    tests/test_run_modes.py, which checks this."""
    return list(request.param)


@pytest.fixture(autouse=True)
def _strict_inner_runs(request: pytest.FixtureRequest) -> None:
    """Inner pytester runs get the same warnings-as-errors policy as the project, the same
    fixed order (pytest-randomly is installed for tests/test_other_plugins.py, which turns it
    back on where it is the subject), and never write into the summary of the CI job that
    runs the project's own tests."""
    if "pytester" in request.fixturenames:
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        pytester: pytest.Pytester = request.getfixturevalue("pytester")
        pytester.makeini(
            "[pytest]\nfilterwarnings =\n    error\n    ignore::pytest.PytestAssertRewriteWarning\n"
        )
        # set after pytester clears PYTEST_ADDOPTS; inner runs and their xdist workers read it
        monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
