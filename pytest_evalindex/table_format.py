"""Plain-text tables for the terminal: columns padded to their widest cell, under a rule.

Every table the plugin and the command line print (results tables, metrics, usage, gate
verdicts, comparisons, the spec's weights, flaky samples) goes through :func:`format_table`,
so they all line up the same way: names on the left, numbers on the right, two spaces
between columns, no trailing spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

GAP = "  "


def format_table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    *,
    left: int = 1,
    footer: Sequence[Sequence[str]] = (),
    rule: Literal["line", "columns"] = "line",
    indent: str = "",
) -> list[str]:
    """The lines of a table: header, rule, rows (then a second rule and ``footer`` rows).

    The first ``left`` columns are padded on the right (left-aligned), the others on the
    left. ``rule="line"`` draws one run of dashes as wide as the header line;
    ``"columns"`` draws dashes under each column, with the gaps left blank. Without a
    header there is no rule. ``indent`` starts every line.
    """
    lines_in = [*([header] if header is not None else []), *rows, *footer]
    if not lines_in:
        return []
    count = max(len(cells) for cells in lines_in)
    widths = [max((len(c[i]) for c in lines_in if i < len(c)), default=0) for i in range(count)]

    def join(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(widths[i]) if i < left else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return (indent + GAP.join(padded)).rstrip()

    if header is None:
        return [join(cells) for cells in [*rows, *footer]]
    head = join(header)
    if rule == "line":
        dashes = indent + "-" * (len(head) - len(indent))
    else:
        dashes = indent + GAP.join("-" * width for width in widths)
    lines = [head, dashes, *(join(cells) for cells in rows)]
    if footer:
        lines += [dashes, *(join(cells) for cells in footer)]
    return lines
