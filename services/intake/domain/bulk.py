"""A bulk body into rows, one fact each: JSON Lines, or CSV for `monthly_report`.

A row that cannot be read becomes a row with a reason; it never stops the others. Only what concerns
the whole body stops it: an unsupported Content-Type (415), too many bytes or rows (413), a CSV
header that is not the expected columns (400).

Numbering: `Row.number` is the row's 1-based position among the body's rows, not counting blank
lines and the CSV header; `Row.line` is its 1-based line in the body. A JSON Lines body without blank
lines has number == line; a CSV body has number == line - 1.

Lines end at LF (a CR before it is dropped). Neither format lets a fact span lines: JSON strings
cannot hold a raw newline, and no `monthly_report` field can, so CSV is read line by line too, which
keeps an unbalanced quote from swallowing the rows after it.

CSV values stay strings exactly as written (ids, months, dates, district), except `income_fen`, read
strictly as an integer (ASCII digits with an optional minus sign), and `hours`, read strictly as a
decimal number (an integer when written without a point). Validation of the resulting fact is
intake's usual `parse_fact`, after this.

A text cell that begins with `=`, `+`, `-` or `@` is refused (a row error naming the column): a
spreadsheet opening an export of it would run it as a formula (`=HYPERLINK(...)`, issue 13). No valid
enterprise code, identity number, month, timestamp or division begins so; only an `id` could, and
such an id can still be sent as JSON. The two number columns are not text: a minus there is a sign
(`-5` is read as -5, which RULES.md rejects as money below zero, recorded like any invalid fact).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.intake.domain.limits import (
    BadInput,
    BadValue,
    Limits,
    TooLarge,
    check_size,
    media_type,
    parse_json_body,
    string_problem,
)

JSONL_MEDIA_TYPES = ("application/x-ndjson", "application/jsonl")
CSV_MEDIA_TYPES = ("text/csv",)
BULK_MEDIA_TYPES = JSONL_MEDIA_TYPES + CSV_MEDIA_TYPES

CSV_FACT_TYPE = "monthly_report"
CSV_COLUMNS = ("id", "at", "enterprise", "worker", "month", "income_fen", "hours", "district")

_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r"
_INTEGER = re.compile(r"-?[0-9]{1,16}")
_DECIMAL = re.compile(r"-?[0-9]{1,16}(\.[0-9]{1,16})?")
_INVALID_UTF8 = re.compile(r"[\udc80-\udcff]")  # what surrogateescape makes of bytes that are not UTF-8
FORMULA_STARTS = ("=", "+", "-", "@")  # what makes a spreadsheet read a cell as a formula
_NUMBER_COLUMNS = ("income_fen", "hours")


@dataclass(frozen=True, slots=True)
class Row:
    number: int
    line: int
    fact: dict[str, Any] | None  # the raw fact to validate; None when the row could not be read
    fact_id: str | None = None  # as far as it could be read
    reason: str | None = None  # why the row could not be read
    # A readable JSON object whose only problem is a hostile value (limits.BadValue): its storable
    # stand-in, for intake to record as a rejected fact with `reason`. None for unreadable rows.
    stand_in: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        assert (self.fact is None) == (self.reason is not None), self


def parse_bulk(data: bytes, content_type: str | None, limits: Limits) -> list[Row]:
    """Rows of a bulk body by its Content-Type; raises BadInput (415, 413 or 400) for the whole body."""
    kind = media_type(content_type, BULK_MEDIA_TYPES)
    return parse_csv(data, limits) if kind in CSV_MEDIA_TYPES else parse_jsonl(data, limits)


def _lines(data: bytes, limits: Limits) -> list[tuple[int, bytes]]:
    """(line number, content) of the non-blank lines; TooLarge above the byte or row limits."""
    check_size(len(data), limits.max_bulk_bytes)
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    lines = [(number, line.removesuffix(b"\r"))
             for number, line in enumerate(data.split(b"\n"), start=1) if line.strip(_BLANK)]
    return lines


def _check_rows(count: int, limits: Limits) -> None:
    if count > limits.max_bulk_rows:
        raise TooLarge("body", f"has {count} rows; the limit is {limits.max_bulk_rows} rows per request")


def parse_jsonl(data: bytes, limits: Limits) -> list[Row]:
    """One fact per non-blank line; a line that is not a JSON object is a row with its reason."""
    lines = _lines(data, limits)
    _check_rows(len(lines), limits)
    rows = []
    for number, (line_number, line) in enumerate(lines, start=1):
        try:
            fact = parse_json_body(line, limits.max_row_bytes, limits.max_json_depth, where="row",
                                   max_abs_number=limits.max_abs_number)
        except BadValue as exc:
            rows.append(Row(number, line_number, None, exc.fact_id, reason=str(exc), stand_in=exc.stand_in))
            continue
        except BadInput as exc:
            rows.append(Row(number, line_number, None, exc.fact_id, reason=str(exc)))
            continue
        fact_id = fact.get("id")
        rows.append(Row(number, line_number, fact, fact_id if isinstance(fact_id, str) else None))
    return rows


def parse_csv(data: bytes, limits: Limits) -> list[Row]:
    """`monthly_report` facts from CSV with a header row naming the columns of CSV_COLUMNS (any order)."""
    lines = _lines(data, limits)
    if not lines:
        raise BadInput("header", f"is missing; the first line names the columns {','.join(CSV_COLUMNS)}")
    (_, header_line), body = lines[0], lines[1:]
    _check_rows(len(body), limits)
    columns = _header(header_line)
    return [_csv_row(number, line_number, line, columns, limits)
            for number, (line_number, line) in enumerate(body, start=1)]


def _cells(line: bytes) -> list[str]:
    """The cells of one CSV line (invalid UTF-8 kept as escapes, reported per cell); csv.Error."""
    text = line.decode("utf-8", errors="surrogateescape")
    reader: Iterator[list[str]] = csv.reader([text], strict=True)
    return next(reader, [])


def _header(line: bytes) -> tuple[str, ...]:
    try:
        names = [name.strip() for name in _cells(line)]
    except csv.Error as exc:
        raise BadInput("header", f"is not valid CSV: {exc}") from None
    expected = ", ".join(CSV_COLUMNS)
    if unreadable := [name for name in names if _INVALID_UTF8.search(name) or string_problem(name)]:
        raise BadInput("header", f"has {len(unreadable)} column name(s) that are not printable UTF-8")
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise BadInput("header", f"names the column(s) {', '.join(duplicated)} more than once")
    if unknown := [name for name in names if name not in CSV_COLUMNS]:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise BadInput("header", f"has unknown column(s) {shown}; "
                                 f"the columns of {CSV_FACT_TYPE} are {expected}")
    if missing := [name for name in CSV_COLUMNS if name not in names]:
        raise BadInput("header", f"lacks the column(s) {', '.join(missing)}; the columns are {expected}")
    return tuple(names)


def _csv_row(number: int, line_number: int, line: bytes, columns: tuple[str, ...], limits: Limits) -> Row:
    if len(line) > limits.max_row_bytes:
        return Row(number, line_number, None,
                   reason=f"row is {len(line)} bytes; the limit is {limits.max_row_bytes} bytes")
    try:
        cells = _cells(line)
    except csv.Error as exc:
        return Row(number, line_number, None, reason=f"row is not valid CSV: {exc}")
    if len(cells) != len(columns):
        return Row(number, line_number, None,
                   reason=f"row has {len(cells)} cells; the header has {len(columns)} columns")
    values = dict(zip(columns, cells, strict=True))
    problems: list[str] = []
    fact: dict[str, Any] = {"type": CSV_FACT_TYPE}
    for column in columns:
        cell = values[column]
        if _INVALID_UTF8.search(cell):
            problems.append(f"{column} is not valid UTF-8")
        elif problem := string_problem(cell):
            problems.append(f"{column} {problem}")
        elif column not in _NUMBER_COLUMNS and cell.startswith(FORMULA_STARTS):
            problems.append(f"{column} {_shown(cell)} begins with {cell[0]!r}: a CSV cell may not begin with "
                            "= + - or @ (a spreadsheet would run it as a formula); send it as JSON Lines")
        elif column == "income_fen":
            if _INTEGER.fullmatch(cell):
                fact[column] = int(cell)
            else:
                problems.append(f"income_fen {_shown(cell)} is not a whole number of fen "
                                "(digits only, e.g. 210000)")
        elif column == "hours":
            if _DECIMAL.fullmatch(cell):
                fact[column] = float(cell) if "." in cell else int(cell)
            else:
                problems.append(f"hours {_shown(cell)} is not a number "
                                "(digits with an optional point, e.g. 167.5)")
        else:
            fact[column] = cell
    fact_id = values["id"] if "id" in fact else None
    if problems:
        return Row(number, line_number, None, fact_id, reason="; ".join(problems))
    return Row(number, line_number, fact, fact_id)


def _shown(cell: str) -> str:
    return repr(cell if len(cell) <= 24 else cell[:24] + "…") if cell else "(empty)"
