"""Plain-text tables that fit a terminal: aligned columns, wrapped into blocks by width.

``ganlab compare`` and ``ganlab runs`` print one. A table wider than `WIDTH` is split into
blocks of columns, one under the other, each repeating the first column(s) that say which
row is which, so every line fits and every row can still be read across the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

#: The widest line a table prints: a terminal of 120 columns shows it without wrapping.
WIDTH = 120
#: The widest cell; a longer one (a data path, a deep run folder) keeps its end, which is
#: where paths and folder names differ.
CELL = 40
#: Between two columns.
GAP = "  "


def clip(cell: str, width: int = CELL) -> str:
    """``cell``, or ``…`` and its last ``width - 1`` characters when it is longer."""
    return cell if len(cell) <= width else "…" + cell[-(width - 1) :]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Aligned plain-text columns: a header, a rule, the rows; columns in ``right`` are
    right-aligned (numbers). No wrapping: see `format_blocks`."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return GAP.join(padded).rstrip()

    rule = GAP.join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def format_blocks(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: set[int],
    keep: int = 1,
    width: int = WIDTH,
) -> str:
    """The table of `format_table`, split into blocks of whole columns that each fit
    ``width``; every block starts with the first ``keep`` columns (the row's name), and
    blocks are separated by a blank line. Cells are clipped to `CELL` characters first,
    those of the kept columns to twice that (they name the row: a run folder's path).
    """

    def clipped(cells: Sequence[str]) -> list[str]:
        return [clip(cell, CELL * 2 if i < keep else CELL) for i, cell in enumerate(cells)]

    header = clipped(header)
    rows = [clipped(row) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    kept = list(range(min(keep, len(header))))

    def span(columns: Sequence[int]) -> int:
        return sum(widths[i] for i in columns) + len(GAP) * max(len(columns) - 1, 0)

    blocks: list[list[int]] = [[]]
    for i in range(len(kept), len(header)):
        if blocks[-1] and span([*kept, *blocks[-1], i]) > width:
            blocks.append([])  # a column wider than a block alone still gets a block
        blocks[-1].append(i)
    texts = []
    for block in blocks:
        columns = kept + block
        texts.append(
            format_table(
                [header[i] for i in columns],
                [[row[i] for i in columns] for row in rows],
                {n for n, i in enumerate(columns) if i in right},
            )
        )
    return "\n\n".join(texts)
