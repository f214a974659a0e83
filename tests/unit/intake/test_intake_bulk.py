"""Bulk bodies into rows: JSON Lines, and CSV for monthly_report."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stand_in_intake import E1, W1, monthly_report

from contracts.facts import parse_fact
from services.intake.domain.bulk import CSV_COLUMNS, parse_bulk, parse_csv, parse_jsonl
from services.intake.domain.limits import BadInput, Limits, TooLarge, UnsupportedMediaType

LIMITS = Limits(max_bulk_rows=6, max_row_bytes=400, max_bulk_bytes=10_000, rate_burst_facts=6)
HEADER = ",".join(CSV_COLUMNS)


def _jsonl(*facts: object) -> bytes:
    return b"".join(json.dumps(f, ensure_ascii=False).encode() + b"\n" for f in facts)


# ---- JSON Lines ---------------------------------------------------------------------------------


def test_each_line_is_one_row_numbered_from_one() -> None:
    rows = parse_jsonl(_jsonl(monthly_report("f1"), monthly_report("f2", "2021-07")), LIMITS)
    assert [(r.number, r.line, r.fact_id) for r in rows] == [(1, 1, "f1"), (2, 2, "f2")]
    assert rows[0].fact == monthly_report("f1")


def test_a_bad_line_is_a_row_error_and_the_batch_goes_on() -> None:
    body = (_jsonl(monthly_report("f1")) + b"{not json\n" + b"[1,2]\n" + b"\xff\xfe\n"
            + b'{"id":"f5","n":NaN}\n' + _jsonl(monthly_report("f6")))
    rows = parse_jsonl(body, LIMITS)
    assert [r.fact_id for r in rows] == ["f1", None, None, None, "f5", "f6"]
    assert [r.reason is None for r in rows] == [True, False, False, False, False, True]
    assert rows[1].reason == ("row column 2: is not valid JSON: "
                              "Expecting property name enclosed in double quotes")
    assert rows[2].reason == "row: must be a JSON object, not an array"
    assert rows[3].reason is not None and "not valid UTF-8" in rows[3].reason
    assert rows[4].reason == "n: NaN is not a JSON number"
    assert rows[5].fact_id == "f6" and rows[5].number == 6


def test_blank_lines_and_crlf_do_not_make_rows_but_keep_line_numbers() -> None:
    first, second = (json.dumps(monthly_report(f)).encode() for f in ("f1", "f2"))
    body = b"\r\n" + first + b"\r\n   \n\n" + second
    rows = parse_jsonl(body, LIMITS)
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 5)]
    assert all(r.fact is not None for r in rows)


def test_an_overlong_line_is_a_row_error() -> None:
    rows = parse_jsonl(_jsonl({"id": "f1", "name": "x" * 500}, monthly_report("f2")), LIMITS)
    assert rows[0].reason is not None and "413" not in rows[0].reason and "bytes" in rows[0].reason
    assert rows[1].fact is not None


def test_too_many_rows_or_bytes_refuse_the_whole_body_with_413() -> None:
    with pytest.raises(TooLarge, match="7 rows; the limit is 6"):
        parse_jsonl(_jsonl(*[monthly_report(f"f{i}") for i in range(7)]), LIMITS)
    with pytest.raises(TooLarge):
        parse_jsonl(b" " * 10_001, LIMITS)


def test_an_empty_body_has_no_rows() -> None:
    assert parse_jsonl(b"", LIMITS) == []
    assert parse_jsonl(b"\n\n", LIMITS) == []


@given(st.binary(max_size=2000))
def test_any_bytes_give_rows_or_a_body_error(data: bytes) -> None:
    try:
        rows = parse_jsonl(data, LIMITS)
    except TooLarge:
        return
    assert [r.number for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert (row.fact is None) == (row.reason is not None)


# ---- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_become_monthly_reports_with_strict_numbers() -> None:
    body = (f"{HEADER}\n"
            f"f1,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,210000,168,320213\n"
            f"f2,2021-08-05T10:00:00+08:00,{E1},{W1},2021-07,0,167.5,320213\n").encode()
    rows = parse_csv(body, LIMITS)
    assert rows[0].fact == monthly_report("f1")
    assert rows[1].fact is not None and rows[1].fact["hours"] == 167.5 and rows[1].fact["income_fen"] == 0
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 3)]
    assert parse_fact(rows[0].fact).income_fen == 210000  # type: ignore[union-attr]


def test_csv_keeps_ids_months_and_dates_exactly_as_written() -> None:
    body = f"{HEADER}\n007,2021-07-05T10:00:00+08:00,{E1},{W1.lower()}, 2021-06,1,1,0320213\n".encode()
    fact = parse_csv(body, LIMITS)[0].fact
    assert fact is not None
    assert (fact["id"], fact["month"], fact["district"]) == ("007", " 2021-06", "0320213")


def test_csv_columns_may_come_in_any_order_and_quoted() -> None:
    columns = list(reversed(CSV_COLUMNS))
    values = {"id": "f1", "at": "2021-07-05T10:00:00+08:00", "enterprise": E1, "worker": W1,
              "month": "2021-06", "income_fen": "210000", "hours": "168", "district": "320213"}
    body = (",".join(columns) + "\n" + ",".join(f'"{values[c]}"' for c in columns) + "\n").encode()
    assert parse_csv(body, LIMITS)[0].fact == monthly_report("f1")


@pytest.mark.parametrize(("income", "hours", "reason"), [
    ("", "168", "income_fen (empty) is not a whole number"),
    ("210000.0", "168", "income_fen '210000.0' is not a whole number"),
    ("2e5", "168", "income_fen '2e5'"),
    ("1_000", "168", "income_fen '1_000'"),
    (" 210000", "168", "income_fen ' 210000'"),
    ("٢١٠", "168", "income_fen '٢١٠'"),
    ("+5", "168", "income_fen '+5'"),
    ("9" * 17, "168", "income_fen"),
    ("210000", "nan", "hours 'nan' is not a number"),
    ("210000", "1e3", "hours '1e3'"),
    ("210000", ".5", "hours '.5'"),
    ("210000", "", "hours (empty)"),
    ("x", "y", "income_fen 'x' is not a whole number of fen (digits only, e.g. 210000); hours 'y'"),
])
def test_a_bad_number_cell_is_a_row_error_naming_the_column(income: str, hours: str, reason: str) -> None:
    body = (f"{HEADER}\nf1,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,{income},{hours},320213\n"
            f"f2,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,1,1,320213\n").encode()
    rows = parse_csv(body, LIMITS)
    assert rows[0].fact is None and rows[0].fact_id == "f1"
    assert rows[0].reason is not None and rows[0].reason.startswith(reason), rows[0].reason
    assert rows[1].fact is not None


def test_negative_numbers_are_read_and_left_to_validation() -> None:
    body = f"{HEADER}\nf1,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,-1,-2,320213\n".encode()
    fact = parse_csv(body, LIMITS)[0].fact
    assert fact is not None and (fact["income_fen"], fact["hours"]) == (-1, -2)


@pytest.mark.parametrize(("line", "reason"), [
    (b"f1,a,b", "row has 3 cells; the header has 8 columns"),
    (b'f1,"unterminated,a,b,c,d,e,f,g', "row is not valid CSV"),
    (b"f1,2021-07-05T10:00:00+08:00,\xff\xfe,w,2021-06,1,1,320213", "enterprise is not valid UTF-8"),
    (b"f1,2021-07-05T10:00:00+08:00,e\x00,w,2021-06,1,1,320213",
     "enterprise contains the control character U+0000"),
    (b"f1,x" + b"y" * 500 + b",e,w,m,1,1,d", "row is 5"),
])
def test_a_broken_row_is_a_row_error(line: bytes, reason: str) -> None:
    rows = parse_csv(HEADER.encode() + b"\n" + line + b"\n" + b"f2,a,e,w,m,1,1,d\n", LIMITS)
    assert rows[0].reason is not None and rows[0].reason.startswith(reason), rows[0].reason
    assert rows[1].fact is not None, "the next row is unaffected"


@pytest.mark.parametrize(("header", "reason"), [
    (b"", "is missing"),
    (b"id,at,enterprise,worker,month,income_fen,hours", "lacks the column(s) district"),
    (HEADER.encode() + b",type", "has unknown column(s) 'type'"),
    (HEADER.encode() + b",id", "names the column(s) id more than once"),
    (b"\xff" + HEADER.encode(), "not printable UTF-8"),
])
def test_a_bad_header_refuses_the_body(header: bytes, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_csv(header + b"\n", LIMITS)
    assert caught.value.where == "header" and reason in caught.value.reason and caught.value.status == 400


def test_csv_tolerates_a_bom_spaces_in_header_names_and_blank_lines() -> None:
    body = ("\ufeff" + HEADER.replace(",", ", ") + "\r\n\r\n"
            + f"f1,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,210000,168,320213\r\n").encode()
    rows = parse_csv(body, LIMITS)
    assert rows[0].fact == monthly_report("f1") and (rows[0].number, rows[0].line) == (1, 3)


def test_csv_row_limit_excludes_the_header() -> None:
    line = f"f,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,1,1,320213\n"
    assert len(parse_csv((HEADER + "\n" + line * 6).encode(), LIMITS)) == 6
    with pytest.raises(TooLarge):
        parse_csv((HEADER + "\n" + line * 7).encode(), LIMITS)


# ---- dispatch -----------------------------------------------------------------------------------


def test_parse_bulk_dispatches_on_content_type() -> None:
    assert parse_bulk(_jsonl(monthly_report("f1")), "application/x-ndjson", LIMITS)[0].fact_id == "f1"
    jsonl = _jsonl(monthly_report("f1"))
    assert parse_bulk(jsonl, "application/jsonl; charset=utf-8", LIMITS)[0].fact_id == "f1"
    assert parse_bulk(f"{HEADER}\nf9,a,e,w,m,1,1,d\n".encode(), "text/csv", LIMITS)[0].fact_id == "f9"
    with pytest.raises(UnsupportedMediaType):
        parse_bulk(b"{}", "application/json", LIMITS)
