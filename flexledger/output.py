"""How commands print data: a Rich table on a terminal; tab-separated lines, every cell whole, when
stdout is a pipe or a file (Rich would cut them at 80 columns); `--json` prints the data as JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console()


def _plain(cell: Any) -> str:
    text = cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain
    return text.replace("\t", " ").replace("\n", "; ")


def print_table(table: Table) -> None:
    """The table for a reader on a terminal, else as TSV: a header line, then one line a row."""
    if sys.stdout.isatty():
        console.print(table)
        return
    columns = [list(column.cells) for column in table.columns]
    if table.title:
        print(f"# {_plain(table.title)}")
    print("\t".join(_plain(column.header) for column in table.columns))
    for row in zip(*columns, strict=True):
        print("\t".join(_plain(cell) for cell in row))


def print_json(data: Any) -> None:
    """`data` as indented JSON (non-ASCII as is), for `--json`."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
