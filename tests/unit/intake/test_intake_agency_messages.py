"""Reading an agency message from Kafka (services.intake.domain.feed) and hostile values recorded as
rejected facts (limits.BadValue, IntakeBook.check's `problem`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stand_in_intake import E1, W1, monthly_report, worker_registered

from services.intake.domain.feed import AgencyFact, NotTaken, read_agency_message
from services.intake.domain.limits import BadInput, BadValue, Limits, parse_json_body, stand_in
from services.intake.domain.submission import IntakeBook

LIMITS = Limits()
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONTRIBUTION = {
    "id": "c1",
    "type": "contribution_paid",
    "at": "2021-07-05T10:00:00+08:00",
    "worker": W1,
    "month": "2021-06",
    "amount_fen": 90000,
}


def _headers(**values: str | bytes) -> list[tuple[str, bytes]]:
    return [(name.replace("_", "-"), v if isinstance(v, bytes) else v.encode()) for name, v in values.items()]


def _read(body: Any, feed: str = "hr_bureau", **headers: str | bytes) -> AgencyFact | NotTaken:
    """Read `body` as it came on `feed`'s topic (the agency whose principal alone may write it)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_agency_message(feed, _headers(**headers), data, LIMITS, NOW)


def test_an_agencys_fact_is_read_with_its_book_and_principal() -> None:
    read = _read(
        CONTRIBUTION,
        "social_insurance_agency",
        flexledger_book="sandbox-1",
        content_type="application/json",
    )
    assert isinstance(read, AgencyFact)
    assert (read.book, read.principal.role, read.raw, read.problem) == (
        "sandbox-1",
        "social_insurance_agency",
        CONTRIBUTION,
        None,
    )
    assert _read(CONTRIBUTION, "social_insurance_agency").book == "main"  # type: ignore[union-attr]
    # A header naming the feed's own agency changes nothing (older clients still send it).
    named = _read(CONTRIBUTION, "social_insurance_agency", flexledger_agency="social_insurance_agency")
    assert isinstance(named, AgencyFact)


def test_the_feed_names_the_agency_and_a_header_cannot_claim_another() -> None:
    """The agency is the feed the broker let the message onto, never a header: a message on the HR
    bureau's feed claiming to be the social insurance agency's is refused, and nothing on its feed
    makes an agency's fact one that only another agency may submit."""
    claimed = _read(CONTRIBUTION, "hr_bureau", flexledger_agency="social_insurance_agency")
    assert isinstance(claimed, NotTaken) and claimed.status == 403 and "feed of hr_bureau" in claimed.reason
    assert claimed.agency == "hr_bureau"
    plain = _read(CONTRIBUTION, "hr_bureau")  # contribution_paid is the social insurance agency's to send
    assert isinstance(plain, NotTaken) and plain.status == 403 and "contribution_paid" in plain.reason
    with pytest.raises(ValueError, match="not an agency"):
        _read(CONTRIBUTION, "platform")


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (CONTRIBUTION, {"flexledger_agency": "platform"}, 403, "came on the feed of hr_bureau"),
        (CONTRIBUTION, {"flexledger_agency": b"\xff"}, 400, "not valid UTF-8"),
        (CONTRIBUTION, {"flexledger_agency": "hr_bureau\x00"}, 400, "control characters"),
        (CONTRIBUTION, {"flexledger_book": "Main"}, 400, "flexledger-book"),
        (CONTRIBUTION, {"content_type": "text/csv"}, 415, "not JSON"),
        (b"\xff", {}, 400, "not valid UTF-8"),
        (b"[]", {}, 400, "JSON object"),
        (b'{"a":' + b"[" * 20 + b"]" * 20 + b"}", {}, 400, "deeper"),
        (b"{" + b" " * 70_000 + b"}", {}, 413, "limit"),
        (CONTRIBUTION, {}, 403, "may not submit contribution_paid"),
        (monthly_report("m1"), {"feed": "social_insurance_agency"}, 403, "monthly_report"),
    ],
)
def test_what_cannot_be_taken_in_says_why(
    body: Any, headers: dict[str, Any], status: int, reason: str
) -> None:
    read = _read(body, **headers)
    assert isinstance(read, NotTaken) and read.status == status and reason in read.reason, read


def test_a_repeated_header_is_refused() -> None:
    headers = _headers(flexledger_book="main") * 2
    read = read_agency_message("hr_bureau", headers, json.dumps(worker_registered("w1")).encode(), LIMITS,
                               NOW)
    assert isinstance(read, NotTaken) and "2 times" in read.reason


def test_a_hostile_value_is_a_fact_to_reject_with_its_stand_in() -> None:
    body = b'{"id":"c9","type":"contribution_paid","worker":"' + W1.encode() + b'","amount_fen":1e999}'
    read = _read(body, "social_insurance_agency")
    assert isinstance(read, AgencyFact) and read.problem and "amount_fen" in read.problem
    assert read.raw["amount_fen"] == "inf" and read.raw["id"] == "c9"


# ---- hostile values -----------------------------------------------------------------------------


def test_bad_values_carry_a_storable_stand_in() -> None:
    with pytest.raises(BadValue) as caught:
        parse_json_body(
            b'{"id":"f\\u0000","n":' + b"9" * 100 + b',"x":["\\ud800",NaN],"\\u001bk":1}', 10_000, 8
        )
    value = caught.value.stand_in
    assert value == {"id": "f\ufffd", "n": "9" * 40 + "…", "x": ["\ufffd", "NaN"], "\ufffdk": 1}
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")  # storable
    assert caught.value.status == 400 and caught.value.fact_id is None


def test_unreadable_bodies_have_no_stand_in() -> None:
    for data in (b"{", b"\xff{}", b'{"a":1,"a":2}', b"[1]"):
        with pytest.raises(BadInput) as caught:
            parse_json_body(data, 100, 8)
        assert not isinstance(caught.value, BadValue)


def test_a_problem_rejects_a_new_fact_but_not_a_resubmission() -> None:
    book = IntakeBook()
    fact = {**monthly_report("f1"), "income_fen": "1e999"}
    first = book.check(fact, "income_fen: beyond the limit")
    assert (first.outcome, first.reason) == ("rejected", "income_fen: beyond the limit")
    book.record(first)
    assert book.check(fact, "income_fen: beyond the limit").outcome == "duplicate"
    other = book.check({**fact, "hours": 1}, "income_fen: beyond the limit")
    assert other.outcome == "rejected" and "already used" in (other.reason or "")
    assert book.check({**enterprise(), "id": "e1"}).outcome == "accepted"


def enterprise() -> dict[str, Any]:
    return {
        "id": "e1",
        "type": "enterprise_registered",
        "at": "2021-06-01T09:00:00+08:00",
        "enterprise": E1,
        "name": "x",
    }


@settings(max_examples=300)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(st.characters(exclude_categories=())),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(st.characters(exclude_categories=()), max_size=5), children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_every_stand_in_is_storable_json_that_the_guard_then_reads_back(value: Any) -> None:
    made = stand_in({"v": value})
    text = json.dumps(made, ensure_ascii=False, allow_nan=False)
    assert parse_json_body(text.encode("utf-8"), 1 << 20, 64) == made


def test_a_re_driven_agency_message_is_read_again_by_the_feeds_own_checks() -> None:
    """services.intake.entrypoints.kafka.agency_taker: the kept bytes and headers, read at the re-drive's
    time under the limits intake has now; never written by an intake that is not the books' writer."""
    from datetime import timedelta

    from contracts.topics import agency_feed
    from services.intake.entrypoints.kafka import NotWriting, agency_taker
    from services.runtime.dead_letters import KeptRecord

    fact = {**CONTRIBUTION, "at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    record = KeptRecord(agency_feed("social_insurance_agency").name, 0, 3, json.dumps(fact).encode(),
                        (("flexledger-book", b"b1"), ("content-type", b"application/json")), 0)
    assert "later than intake received" in str(agency_taker(None, LIMITS, lambda: True).check(record))
    wider = Limits(max_clock_skew_s=7200)  # the fix: a clock skew the sender needs
    checked = agency_taker(None, wider, lambda: True).check(record)
    assert isinstance(checked, AgencyFact) and (checked.book, checked.principal.role) == (
        "b1", "social_insurance_agency")
    standby = agency_taker(None, wider, lambda: False)
    with pytest.raises(NotWriting):
        standby.take(checked, record, lambda result, detail: None)
