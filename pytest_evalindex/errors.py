"""The one error type for bad user input: a spec, a data file, an option.

The plugin turns it into ``pytest.UsageError`` (exit status 4) and the CLI prints it and
exits 4; neither shows a traceback. The message names the file, line and field when known.
"""

from __future__ import annotations

from pathlib import Path


class EvalIndexError(Exception):
    """Bad input, with where it was found and what was expected."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        return f"{where}: {self.message}" if where else self.message
