"""Writing the run's output files without losing the run when one of them fails.

Every answer has been paid for by the time results are written: a file that cannot be
written becomes one clear error line (the summary is still printed and the exit status is
non-zero), never a traceback that hides the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_evalindex.errors import EvalIndexError


@contextmanager
def writing(errors: list[str], what: str | Path) -> Iterator[None]:
    """Run the block that writes ``what``; a failure is appended to ``errors``."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(what) else ""
        errors.append(f"could not write {what}: {exc.strerror or exc}{where}")
    except EvalIndexError as exc:
        errors.append(f"could not write {what}: {exc}")
