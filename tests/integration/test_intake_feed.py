"""The agency feed: facts published on flexledger.intake.agency-facts.v1 are taken in exactly like
HTTP facts (same book, same seq, same outbox, on to eligibility), and what cannot be taken in goes to
flexledger.intake.dead-letters.v1 with the reason (a `DeadLetterV1`: the body with identity numbers
masked, the original bytes kept in intake's store), never blocking its partition."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import asyncpg
import httpx
import jsonschema_rs
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from intake_support import (
    W1,
    book,
    contribution_paid,
    eventually,
    headers,
    log_position,
    monthly_report,
    operator_token,
    recorded,
    url,
    worker_registered,
)

from contracts.messages import DeadLetterV1, masked_body
from contracts.topics import DEAD_LETTERS, agency_feed
from flexledger.devstack.credentials import client_args
from services.intake.aggregates import DeadLetter, dead_letter_id
from services.intake.application import Incoming, IntakeApplication, Source
from services.runtime.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

INSURANCE = "social_insurance_agency"
FEED = agency_feed(INSURANCE).name  # only the social insurance agency's principal may write it
DEAD_LETTER_SCHEMA = PROJECT_ROOT / "contracts" / "schemas" / "dead-letter.v1.json"


async def _publish(
    settings: Settings, messages: list[tuple[bytes, dict[str, str | bytes]]], key: bytes
) -> list[tuple[int, int]]:
    """Publish (value, headers) in order with one key (so one partition) on the social insurance
    agency's feed, as that agency's principal; their (partition, offset)."""
    producer = AIOKafkaProducer(**client_args(settings, INSURANCE), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        out = []
        for value, hdrs in messages:
            encoded = [(name, v if isinstance(v, bytes) else v.encode()) for name, v in hdrs.items()]
            meta = await producer.send_and_wait(FEED, value, key=key, headers=encoded)
            out.append((meta.partition, meta.offset))
        return out
    finally:
        await producer.stop()


async def _dead_letters(settings: Settings, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], Any]:
    """The dead letters of the given source positions, read from the dead-letter topic."""
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    found: dict[tuple[int, int], Any] = {}
    try:
        tp = TopicPartition(DEAD_LETTERS.name, 0)
        consumer.assign([tp])

        async def all_found() -> bool:
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    letter = DeadLetterV1.model_validate_json(record.value)
                    position = (letter.source_partition, letter.source_offset)
                    if letter.source_topic == FEED and position in wanted:
                        found[position] = (letter, record)
            return wanted <= set(found)

        await eventually("the dead letters", all_found, timeout_s=60)
    finally:
        await consumer.stop()
    return found


async def _last_seq(settings: Settings, service: str, name: str) -> int:
    port = getattr(settings, f"{service}_port")
    auth = {"Authorization": f"Bearer {operator_token(settings)}"}  # every API wants a key
    async with httpx.AsyncClient(timeout=10, headers=auth) as client:
        response = await client.get(f"http://127.0.0.1:{port}/v1/books/{name}/progress")
    return int(response.json()["last_seq"])


def _agency(agency: str, name: str) -> dict[str, str | bytes]:
    return {"flexledger-agency": agency, "flexledger-book": name, "content-type": "application/json"}


async def test_an_agency_fact_is_taken_in_like_an_http_fact_and_reaches_eligibility(
    services: Settings,
) -> None:
    name = book()
    since = log_position(services)
    async with httpx.AsyncClient(timeout=30) as client:
        registered = await client.post(
            url(services, "/v1/facts"),
            json=worker_registered("w1"),
            headers=headers(operator_token(services), name),
        )
    assert registered.status_code == 201
    fact = contribution_paid("c1")
    [position] = await _publish(
        services, [(json.dumps(fact).encode(), _agency(INSURANCE, name))], name.encode()
    )

    async def decided() -> bool:
        return await _last_seq(services, "eligibility", name) == 2

    await eventually("eligibility to decide on the agency fact", decided)
    stored = recorded(services, name, since)
    # the agency's id in its scope (issue 13); the operator's in the book's plain namespace
    assert [(e.seq, e.fact_id, e.outcome) for e in stored] == [
        (1, "w1", "accepted"), (2, f"{INSURANCE}/c1", "accepted")
    ]
    assert stored[1].fact == {**fact, "id": f"{INSURANCE}/c1"} and stored[1].submitter == INSURANCE
    conn = await asyncpg.connect(services.pg_dsn())
    try:  # the position is recorded (in the same transaction as the submission)
        tracked = await conn.fetchval(
            "SELECT max(notification_id) FROM intake.intake_tracking WHERE application_name = $1",
            f"kafka:{FEED}:{position[0]}",
        )
    finally:
        await conn.close()
    assert tracked is not None and tracked >= position[1]


async def test_what_cannot_be_taken_in_is_dead_lettered_and_the_partition_goes_on(services: Settings) -> None:
    name = book()
    since = log_position(services)
    operator = operator_token(services)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            url(services, "/v1/facts"), json=worker_registered("w1"), headers=headers(operator, name)
        )
        assert response.status_code == 201
    valid = json.dumps(contribution_paid("ok")).encode()
    poison: list[tuple[bytes, dict[str, str | bytes], int, str]] = [
        (b"\xff\xfe not json", _agency(INSURANCE, name), 400, "not valid UTF-8"),
        (b'{"id": "x1", "a": [[[[[[[[[[1]]]]]]]]]]}', _agency(INSURANCE, name), 400, "deeper"),
        (valid, _agency("hr_bureau", name), 403, f"came on the feed of {INSURANCE}"),  # speaking for another
        (valid, _agency("tax_bureau", name), 403, f"came on the feed of {INSURANCE}"),
        (valid, _agency(INSURANCE, "Bad/Book"), 400, "flexledger-book"),
        (valid, {**_agency(INSURANCE, name), "content-type": "text/csv"}, 415, "not JSON"),
        (json.dumps(monthly_report("m1")).encode(), _agency(INSURANCE, name), 403, "may not submit"),
        (
            json.dumps({**contribution_paid("bad"), "month": "2021-13"}).encode(),
            _agency(INSURANCE, name),
            400,
            "month",
        ),
        (
            json.dumps({**contribution_paid("big"), "amount_fen": 10**30}).encode(),
            _agency(INSURANCE, name),
            400,
            "amount_fen",
        ),
    ]
    messages = [(value, hdrs) for value, hdrs, _, _ in poison] + [(valid, _agency(INSURANCE, name))]
    positions = await _publish(services, messages, f"{name}/{W1}".encode())
    assert len({p for p, _ in positions}) == 1  # one partition: the poison is ahead of the valid fact

    letters = await _dead_letters(services, set(positions[:-1]))
    schema = jsonschema_rs.validator_for(json.loads(DEAD_LETTER_SCHEMA.read_text()))
    for (value, _, status, reason), position in zip(poison, positions, strict=False):
        letter, record = letters[position]
        schema.validate(json.loads(record.value))
        assert letter.status == status and reason in letter.reason, (status, letter)
        assert (letter.service, letter.consumer_group) == ("intake", "intake")
        assert letter.body_masked == masked_body(value) and letter.body_bytes == len(value)
        assert letter.body_sha256 == hashlib.sha256(value).hexdigest()  # the original, kept in the store
        kafka_headers = dict(record.headers)
        assert kafka_headers["ce_type"] == b"flexledger.intake.dead-letter.v1"
        assert letter.dead_letter_id == str(dead_letter_id(FEED, *position))
        assert record.key == f"{FEED}/{position[0]}/{position[1]}".encode()
        for where in (record.key, record.value, *kafka_headers.values()):  # the worker, masked or absent
            assert W1.encode() not in where, where
    # The two invalid facts were recorded as rejections (as over HTTP), with their seq on the letter.
    recorded_letters = [letters[p][0] for p in positions[7:9]]
    assert [letter.seq for letter in recorded_letters] == [2, 3]
    assert letters[positions[6]][0].seq is None  # 403: nothing recorded

    async def valid_taken() -> bool:
        return await _last_seq(services, "intake", name) == 4

    await eventually("the valid fact behind the poison", valid_taken)
    assert [(e.fact_id, e.outcome) for e in recorded(services, name, since)] == [
        ("w1", "accepted"),
        (f"{INSURANCE}/bad", "rejected"),
        (f"{INSURANCE}/big", "rejected"),
        (f"{INSURANCE}/ok", "accepted"),
    ]


async def test_a_republished_agency_fact_records_nothing(services: Settings) -> None:
    name = book()
    since = log_position(services)
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            url(services, "/v1/facts"),
            json=worker_registered("w1"),
            headers=headers(operator_token(services), name),
        )
        assert response.status_code == 201
    message = (json.dumps(contribution_paid("c1")).encode(), _agency(INSURANCE, name))
    await _publish(services, [message], name.encode())

    async def taken() -> bool:
        return await _last_seq(services, "intake", name) == 2

    await eventually("the first copy", taken)
    # The same message at a new offset (a producer retry): the fact id makes it a no-op; a marker fact
    # behind it on the same partition shows that the copy has been consumed.
    marker = (json.dumps(contribution_paid("c2", month="2021-05")).encode(), _agency(INSURANCE, name))
    await _publish(services, [message, marker], name.encode())

    async def marker_taken() -> bool:
        return await _last_seq(services, "intake", name) >= 3

    await eventually("the marker", marker_taken)
    stored = [e.fact_id for e in recorded(services, name, since)]
    assert stored == ["w1", f"{INSURANCE}/c1", f"{INSURANCE}/c2"]


async def test_a_redelivered_position_changes_nothing(infra: Settings) -> None:
    """Exactly once at the application: the position is recorded with the submission, so the same
    position again (a redelivery after a crash before the offset commit) is recognised and skipped;
    a dead letter's position likewise. (Its own book and topic name: no running intake writes them.)"""
    name = book()
    topic = f"test-agency-{uuid.uuid4().hex}"
    app = IntakeApplication(infra)
    try:
        since = int(app.recorder.max_notification_id() or 0)
        body = json.dumps(worker_registered("w1")).encode()
        source = Source(topic, 0, 7, body, INSURANCE)
        assert not app.already_consumed(source)
        [result] = app.submit_many(
            name, [Incoming(json.loads(body))], {}, tracking=source.tracking, source=source
        )
        assert result.outcome == "accepted" and app.already_consumed(source)
        poison = Source(topic, 0, 8, b"\x00", INSURANCE)
        assert app.dead_letter(poison, book=name, fact_id=None, status=400, reason="r", trace_carrier={})
        assert not app.dead_letter(poison, book=name, fact_id=None, status=400, reason="r", trace_carrier={})
        letters = [
            e
            for _, e in app.notifications(since, 10_000)
            if isinstance(e, DeadLetter.Recorded) and e.source_topic == topic
        ]
        assert [(e.source_offset, e.status) for e in letters] == [(8, 400)]
    finally:
        app.close()
