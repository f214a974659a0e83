"""Dead letters on the wire (`contracts.messages.DeadLetterV1`), built from what a service stored: the
runtime's `DeadLetter` (eligibility and payments) and intake's own. No identity number in clear in
the key, the headers or any field; the body masked and cut; the committed JSON Schema holds."""

from __future__ import annotations

import base64
import hashlib
import json
from types import SimpleNamespace
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError

from contracts.identifiers import mask
from contracts.messages import DEAD_LETTER_BODY_MAX_CHARS, DeadLetterV1, masked_body
from contracts.topics import AGENCY_FEEDS, DECISIONS, FACTS
from services.intake.adapters.relay import AGENCY_FEED_GROUP
from services.intake.adapters.relay import to_dead_letter as intake_dead_letter
from services.intake.aggregates import DeadLetter as IntakeDeadLetter
from services.intake.entrypoints.kafka import GROUP as INTAKE_GROUP
from services.runtime.dead_letters import DeadLetter, dead_letter_id, to_dead_letter
from services.runtime.publishing import Outgoing
from services.runtime.settings import PROJECT_ROOT

WORKER = "320213197804121019"  # an identity number (valid check character)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
SCHEMA = jsonschema_rs.validator_for(
    json.loads((PROJECT_ROOT / "contracts" / "schemas" / "dead-letter.v1.json").read_text()))


def _record(value: bytes, headers: list[tuple[str, bytes | None]], offset: int = 41) -> Any:
    """What the strict decoders hand over: an aiokafka ConsumerRecord's fields."""
    return SimpleNamespace(topic=FACTS.name, partition=3, offset=offset, key=f"main/{WORKER}".encode(),
                           value=value, headers=headers)


def _wire(message: Outgoing) -> tuple[bytes, bytes, dict[str, str]]:
    """Key, value and headers as `publishing.publish_batch` sends them."""
    return (message.key.encode(), message.body.model_dump_json().encode(), message.event.headers())


def _no_identity_number(message: Outgoing) -> None:
    key, value, headers = _wire(message)
    for where in (key, value, *(text.encode() for text in headers.values())):
        assert WORKER.encode() not in where, where
    SCHEMA.validate(json.loads(value))


def test_the_body_is_masked_text_cut_after_masking() -> None:
    assert masked_body(b'{"worker": "' + WORKER.encode() + b'"}') == f'{{"worker": "{mask(WORKER)}"}}'
    assert masked_body(b"\xff ok \xc3\x28") == "\ufffd ok \ufffd("
    # A number across the cut is masked before the cut: its first characters never show in clear.
    value = b"x" * (DEAD_LETTER_BODY_MAX_CHARS - 10) + b" " + WORKER.encode()
    cut = masked_body(value)
    assert len(cut) == DEAD_LETTER_BODY_MAX_CHARS and cut.endswith(" " + str(mask(WORKER))[:9])
    assert WORKER[:9] not in cut


def test_text_fields_are_masked_and_the_body_is_bounded() -> None:
    fields: dict[str, Any] = {
        "dead_letter_id": "d", "service": "intake", "consumer_group": "intake", "source_topic": "t",
        "source_partition": 0, "source_offset": 1, "reason": f"header 'x' {WORKER!r} is not an agency",
        "fact_id": WORKER, "agency": WORKER, "book": WORKER, "body_masked": "", "body_bytes": 0,
        "body_sha256": "0" * 64, "dead_lettered_at": "2021-06-01T01:00:00Z",
    }
    letter = DeadLetterV1(**fields)
    assert WORKER not in letter.model_dump_json() and letter.fact_id == mask(WORKER)
    with pytest.raises(ValidationError):
        DeadLetterV1(**{**fields, "body_masked": "x" * (DEAD_LETTER_BODY_MAX_CHARS + 1)})


def test_a_poison_fact_goes_out_masked_keyed_by_its_position() -> None:
    value = json.dumps({"schema_version": 2, "book": "main", "subject": WORKER}).encode()
    headers = [("traceparent", TRACEPARENT.encode()), ("x-worker", WORKER.encode()), ("empty", None)]
    reason = "not a FactMessageV1: unknown schema_version 2"
    letter = DeadLetter.keep("eligibility", _record(value, headers), reason)
    [event] = letter.collect_events()
    assert base64.b64decode(event.body_b64) == value  # the original, kept in the (encrypted) store
    message = to_dead_letter("eligibility", event)
    assert message is not None and isinstance(message.body, DeadLetterV1)
    body = message.body
    assert message.key == f"{FACTS.name}/3/41" == message.event.subject
    assert body.dead_letter_id == str(dead_letter_id("eligibility", FACTS.name, 3, 41)) == message.event.id
    assert message.event.type == "flexledger.eligibility.dead-letter.v1"
    assert message.event.traceparent == TRACEPARENT  # the producer's trace goes on
    assert (body.service, body.consumer_group, body.status, body.book) == ("eligibility", "eligibility",
                                                                            None, None)
    assert body.body_masked == masked_body(value) and str(mask(WORKER)) in body.body_masked
    assert (body.body_bytes, body.body_sha256) == (len(value), hashlib.sha256(value).hexdigest())
    assert "x-worker" not in message.event.headers()  # the source's headers are not copied
    _no_identity_number(message)


def test_one_dead_letter_per_group_and_position() -> None:
    ids = {dead_letter_id(group, topic, 0, offset)
           for group in ("payments", "payments-settlements") for topic in (DECISIONS.name, FACTS.name)
           for offset in (7, 8)}
    assert len(ids) == 8


def test_a_traceparent_that_does_not_parse_is_not_kept() -> None:
    [event] = DeadLetter.keep("eligibility", _record(b"x", [("traceparent", b"junk")]), "r").collect_events()
    assert event.traceparent is None


def test_other_events_are_not_dead_letters() -> None:
    assert to_dead_letter("payments", object()) is None


def test_intakes_dead_letters_take_the_shared_contract_masked() -> None:
    value = json.dumps({"id": WORKER, "type": "monthly_report", "worker": WORKER}).encode()
    letter = IntakeDeadLetter.record(
        source_topic=AGENCY_FEEDS[0].name, source_partition=2, source_offset=9, agency=WORKER, book="main",
        fact_id=WORKER, status=403, reason=f"fact {WORKER} may not be submitted by this agency", seq=None,
        body_b64=base64.b64encode(value).decode(), body_bytes=len(value), traceparent=None, tracestate=None,
    )
    [event] = letter.collect_events()
    message = intake_dead_letter(event)
    assert message is not None and isinstance(message.body, DeadLetterV1)
    body = message.body
    assert body.dead_letter_id == str(event.originator_id) == message.event.id  # as published before
    assert message.key == f"{AGENCY_FEEDS[0].name}/2/9"
    assert message.event.type == "flexledger.intake.dead-letter.v1"
    assert (body.service, body.consumer_group, body.status) == ("intake", INTAKE_GROUP, 403)
    assert AGENCY_FEED_GROUP == INTAKE_GROUP
    assert body.fact_id == body.agency == mask(WORKER) and str(mask(WORKER)) in body.reason
    assert body.body_sha256 == hashlib.sha256(value).hexdigest()
    _no_identity_number(message)


def test_intakes_cut_bodies_keep_their_original_length() -> None:
    kept = b"{" * 100
    letter = IntakeDeadLetter.record(
        source_topic=AGENCY_FEEDS[0].name, source_partition=0, source_offset=1, agency=None, book=None,
        fact_id=None, status=413, reason="too large", seq=None, body_b64=base64.b64encode(kept).decode(),
        body_bytes=70_000, traceparent=None, tracestate=None,
    )
    [event] = letter.collect_events()
    message = intake_dead_letter(event)
    assert message is not None and isinstance(message.body, DeadLetterV1)
    assert message.body.body_bytes == 70_000 and message.body.body_sha256 == hashlib.sha256(kept).hexdigest()


# ---- re-drive (services.runtime.redrive) ------------------------------------------------------------


def test_a_kept_record_comes_back_byte_for_byte_and_is_checked_again() -> None:
    from services.runtime.consuming import tagged_record_checker
    from services.runtime.message_auth import tag_header

    key = b"k" * 32
    value = b'{"not": "a fact"}'
    letter = DeadLetter.keep("eligibility", _record(value, [tag_header(key, FACTS.name, value),
                                                            ("empty", None)]), "not a FactMessageV1")
    record = letter.kept_record()
    assert (record.topic, record.partition, record.offset, record.value) == (FACTS.name, 3, 41, value)
    assert record.headers[1] == ("empty", b"")
    check = tagged_record_checker(DeadLetterV1, key)  # any strict model: the tag is checked first
    assert "not a DeadLetterV1" in str(check(record))
    assert "does not match" in str(tagged_record_checker(DeadLetterV1, b"o" * 32)(record))


def test_a_dead_letter_is_taken_in_once_and_every_attempt_is_recorded() -> None:
    from services.runtime.dead_letters import AlreadyRedriven

    letter = DeadLetter.keep("payments", _record(b"{}", []), "no flexledger_mac header")
    letter.redriven("operator k1", "refused", "no flexledger_mac header")
    assert not letter.accepted
    letter.redriven("operator k1", "accepted", "recorded")
    assert letter.accepted and [r.result for r in letter.redrives] == ["refused", "accepted"]
    with pytest.raises(AlreadyRedriven):
        letter.redriven("operator k2", "accepted", "recorded")
    events = letter.collect_events()
    assert [type(e).__name__ for e in events] == ["Kept", "Redriven", "Redriven"]
    assert to_dead_letter("payments", events[1]) is None  # a re-drive is not published as a dead letter


def test_a_dead_letter_kept_before_headers_were_kept_has_none() -> None:
    letter = DeadLetter.keep("payments", _record(b"{}", []), "reason")
    kept = letter.collect_events()[0]
    del kept.__dict__["headers"]  # as an event stored before the field existed decodes
    assert kept.headers is None
    rebuilt = kept.mutate(None)
    assert isinstance(rebuilt, DeadLetter) and rebuilt.kept_record().headers == ()


# ---- intake's agency-feed dead letters, re-driven ---------------------------------------------------


def _intake_letter(value: bytes, *, headers: list[list[str]] | None, kept: int | None = None,
                   seq: int | None = None) -> IntakeDeadLetter:
    return IntakeDeadLetter.record(
        source_topic=AGENCY_FEEDS[0].name, source_partition=1, source_offset=5, agency="hr_bureau",
        book="main", fact_id=None, status=400, reason="at is later", seq=seq,
        body_b64=base64.b64encode(value[:kept]).decode(), body_bytes=len(value), traceparent=None,
        tracestate=None, headers=headers,
    )


def test_intakes_dead_letter_keeps_its_headers_for_a_re_drive() -> None:
    from services.runtime.dead_letters import AlreadyRedriven, Redrivable, kept_headers

    value = b'{"id": "c1"}'
    headers = kept_headers([("flexledger-book", b"main"), ("empty", None)])
    letter = _intake_letter(value, headers=headers)
    assert isinstance(letter, Redrivable) and letter.consumer_group == INTAKE_GROUP
    assert letter.unredrivable() is None
    record = letter.kept_record()
    assert (record.topic, record.partition, record.offset) == (AGENCY_FEEDS[0].name, 1, 5)
    assert record.value == value
    assert record.headers == (("flexledger-book", b"main"), ("empty", b""))
    letter.redriven("operator k1", "refused", "at is later")
    letter.redriven("operator k1", "accepted", "recorded: seq 3 of book main, accepted")
    with pytest.raises(AlreadyRedriven):
        letter.redriven("operator k1", "accepted", "again")
    events = letter.collect_events()
    assert [type(e).__name__ for e in events] == ["Recorded", "Redriven", "Redriven"]
    assert intake_dead_letter(events[1]) is None  # a re-drive is not published as a dead letter
    rebuilt = events[0].mutate(None)
    for event in events[1:]:
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, IntakeDeadLetter) and rebuilt.accepted


def test_intakes_dead_letters_that_no_fix_can_take_in_say_why() -> None:
    value = b'{"id": "c1", "note": "' + b"x" * 100 + b'"}'
    assert "kept truncated" in str(_intake_letter(value, headers=[], kept=50).unredrivable())
    assert "recorded as rejected (seq 7" in str(_intake_letter(value, headers=[], seq=7).unredrivable())
    older = _intake_letter(value, headers=None)  # kept before the headers were
    assert "headers" in str(older.unredrivable())
    recorded = older.collect_events()[0]
    del recorded.__dict__["headers"]  # as an event stored before the field existed decodes
    assert recorded.headers is None and "headers" in str(recorded.mutate(None).unredrivable())


def test_the_console_reads_intakes_dead_letters_by_their_stored_topics() -> None:
    from eventsourcing.utils import get_topic

    from flexledger.console.dead_letter_store import INTAKE_GROUP as CONSOLE_GROUP
    from flexledger.console.dead_letter_store import INTAKE_KEPT_TOPIC, INTAKE_REDRIVEN_TOPIC

    assert get_topic(IntakeDeadLetter.Recorded) == INTAKE_KEPT_TOPIC
    assert get_topic(IntakeDeadLetter.Redriven) == INTAKE_REDRIVEN_TOPIC
    assert CONSOLE_GROUP == INTAKE_GROUP


def test_a_fenced_instance_refuses_a_re_drive_and_records_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A former active instance (its writer lock taken over) answers 503 naming why, without a trace."""
    import asyncio
    import copy

    from services.runtime.redrive import DeadLetterRedrive, Taker

    letter = DeadLetter.keep("payments", _record(b"{}", []), "no flexledger_mac header")
    letter.collect_events()

    class FencedStore:
        repository = SimpleNamespace(get=lambda _id: copy.deepcopy(letter))  # as stored: a fresh copy

        def record(self, _aggregate: Any) -> None:
            raise RuntimeError("fenced: this payments process no longer holds its writer lock")

    woken: list[bool] = []
    redrive = DeadLetterRedrive(lambda: FencedStore(), {"payments": Taker(  # type: ignore[arg-type, return-value]
        check=lambda _record: "still refused", take=lambda *_: None)}, lambda: woken.append(True))
    answer = asyncio.run(redrive(letter.id, "operator k1"))
    assert answer.status_code == 503 and b"lost its writer lock" in answer.body
    assert not letter.redrives and not woken
    assert all(r.exc_info is None for r in caplog.records)
