"""Tables for people, laid out by tabulate: plain text for terminals, Markdown for reports. Torch-free.

Cells arrive as formatted strings (thousands separators, fixed decimals) and are printed as they
are: tabulate's number parsing is off, so ``14,183,334`` keeps its commas and ``0.100`` its zeros.
The columns named in ``right`` (the numbers) are right-aligned, the others left-aligned. Nothing
depends on the terminal: lines are never wrapped and carry no colour, so the output is the same on a
terminal, in a pipe and in a file.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

Row = Sequence[str]


def _align(columns: int, right: Collection[int]) -> list[str]:
    return ["right" if i in right else "left" for i in range(columns)]


def text_table(header: Row, rows: Sequence[Row], right: Collection[int] = (), total: Row | None = None) -> str:
    """Columns two spaces apart under a rule of dashes; ``total``, if given, comes last, after another rule."""
    from tabulate import SEPARATING_LINE, tabulate

    body: list[Row | str] = [*rows]
    if total is not None:
        body += [SEPARATING_LINE, total]
    return tabulate(body, header, tablefmt="simple", colalign=_align(len(header), right), disable_numparse=True)


def plain_table(header: Row, rows: Sequence[Row]) -> str:
    """Left-aligned columns two spaces apart, with no rules."""
    from tabulate import tabulate

    return tabulate(rows, header, tablefmt="plain", colalign=_align(len(header), ()), disable_numparse=True)


def markdown_table(header: Row, rows: Sequence[Row], right: Collection[int] = ()) -> str:
    """A Markdown (pipe) table; a ``|`` inside a cell is escaped so it cannot split the cell."""
    from tabulate import tabulate

    def escaped(row: Row) -> list[str]:
        return [cell.replace("|", "\\|") for cell in row]

    return tabulate(
        [escaped(row) for row in rows],
        escaped(header),
        tablefmt="pipe",
        colalign=_align(len(header), right),
        disable_numparse=True,
    )
