"""Poison messages on the facts and decisions topics are kept as dead letters, and consumption goes
on: a valid message behind them on the same partition is processed.

Two kinds of poison on each topic: bytes that are not JSON (not even UTF-8), and a message of an
unknown schema version (which names a worker by identity number). They are published with the same
key as the valid messages that follow, so they sit in front of them on the same partition.

A dead letter is recorded in the consumer's event store (the original bytes, encrypted at rest) and
published from its outbox as a `DeadLetterV1` (contracts/schemas/dead-letter.v1.json): keyed by the
source position, identity numbers masked in its body and absent from its key, headers and fields.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import httpx
import jsonschema_rs
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faultkit import engine_decisions, eventually, get_json, key_headers, submit_stream, topic_messages, url

from contracts.identifiers import mask
from contracts.messages import DeadLetterV1, masked_body
from contracts.topics import (
    DECISIONS,
    ELIGIBILITY_DEAD_LETTERS,
    FACTS,
    ORDERS,
    PAYMENTS_DEAD_LETTERS,
    sandbox_twin,
)
from flexledger.devstack.credentials import client_args
from flexledger.scenario_file import load_scenario
from services.eligibility.application import EligibilityApplication
from services.runtime.consuming import DeadLetters
from services.runtime.dead_letters import DeadLetter, dead_letter_id
from services.runtime.keys import decisions_mac_key, facts_mac_key, partition_key_secret
from services.runtime.message_auth import tag_header
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import PROJECT_ROOT, Settings
from services.runtime.store import ServiceStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VECTOR = PROJECT_ROOT / "tests" / "vectors" / "01-employment-service-difficulty.yaml"
SCHEMA = jsonschema_rs.validator_for(
    json.loads((PROJECT_ROOT / "contracts" / "schemas" / "dead-letter.v1.json").read_text()))
UNDECODABLE = b"\xff\xfe\x00 not json, not even UTF-8 \xc3\x28"


def _next_version(body: dict[str, Any]) -> bytes:
    return json.dumps({**body, "schema_version": 2}).encode()


async def _dead_letters(
    settings: Settings, topic: str, since_ms: int, wanted: set[tuple[str, int, int]]
) -> dict[tuple[str, int, int], Any]:
    """The records on dead-letter topic `topic` since `since_ms` of the `wanted` source positions, once
    all of them are there (the outbox relay publishes them after they are recorded)."""
    found: dict[tuple[str, int, int], Any] = {}

    async def all_there() -> tuple[bool, Any]:
        consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            start = (await consumer.offsets_for_times({tp: since_ms})).get(tp)
            if start is None:
                return False, sorted(found)
            consumer.seek(tp, start.offset)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        letter = json.loads(record.value)
                        found[(letter["source_topic"], letter["source_partition"],
                               letter["source_offset"])] = record
        finally:
            await consumer.stop()
        return wanted <= set(found), sorted(found)

    await eventually(f"the dead letters on {topic}", all_there, 60)
    return found


async def _committed_past(
    settings: Settings, group: str, tp: TopicPartition, offset: int
) -> tuple[bool, Any]:
    admin = AIOKafkaAdminClient(**client_args(settings, "admin"))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    committed = offsets[tp].offset if tp in offsets else -1
    return committed > offset, committed


async def test_poison_goes_to_the_dead_letter_topics_and_consumption_continues(stack: Settings) -> None:
    facts = load_scenario(VECTOR)["facts"]
    book = f"poison-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    worker = next(f["worker"] for f in facts if "worker" in f)
    expected = engine_decisions(book, facts)
    grant = next(d for d in expected if d["kind"] == "grant")

    # A fact message and a decision message of a version nobody reads, otherwise well formed; the fact
    # names the worker by identity number (its subject, its fact), as facts do.
    fact_v2 = {"book": book, "seq": 1, "fact_id": "x", "subject": worker, "outcome": "accepted",
               "fact": facts[1], "digest": "0" * 64, "recorded_at": "2021-06-01T01:00:00Z"}
    decision_v2 = {**grant, "book": book}
    keys = PartitionKeys(partition_key_secret(stack))
    poison = [
        (FACTS.name, keys(book, worker), UNDECODABLE, "Invalid JSON"),
        (FACTS.name, keys(book, worker), _next_version(fact_v2), "unknown schema_version 2"),
        (DECISIONS.name, keys(book, grant["beneficiary"]), UNDECODABLE, "Invalid JSON"),
        (DECISIONS.name, keys(book, grant["beneficiary"]), _next_version(decision_v2),
         "unknown schema_version 2"),
    ]
    # Tagged as their producers tag them: they pass the tag and fail as what they are (forged and
    # untagged messages: tests/integration/test_forged_messages.py).
    tag_keys = {FACTS.name: facts_mac_key(stack), DECISIONS.name: decisions_mac_key(stack)}
    assert worker.encode() in poison[1][2]
    producer = AIOKafkaProducer(**client_args(stack, "admin"), acks="all")
    await producer.start()
    try:
        headers = [("origin", b"test_poison"), ("x-worker", worker.encode())]  # headers are not copied
        sent = [
            (topic, key, value, reason,
             await producer.send_and_wait(topic, value, key=key.encode(),
                                          headers=[*headers, tag_header(tag_keys[topic], topic, value)]))
            for topic, key, value, reason in poison
        ]
    finally:
        await producer.stop()

    # The valid messages behind the poison: the vector's facts (through intake), whose grant becomes a
    # decision (behind the decision poison) and then a payment order.
    receipts = await submit_stream(stack, book, facts, submitters=1)
    assert len({r.seq for r in receipts}) == len(facts)
    async with httpx.AsyncClient(timeout=30, headers=key_headers(stack)) as client:

        async def decided() -> tuple[bool, Any]:
            seen = await get_json(client, url(stack, "eligibility", f"/v1/books/{book}/progress"))
            return seen["last_seq"] >= len(facts), seen

        await eventually("eligibility to process the facts behind the poison", decided, 90)

    async def ordered() -> tuple[bool, Any]:
        # a test book is a sandbox book: its orders are on the sandbox twin of the orders topic
        found = await topic_messages(stack, sandbox_twin(ORDERS).name, book, since_ms,
                                     until_count=lambda n: n >= 1)
        return any(body["decision_id"] == grant["decision_id"] for _, body in found), found

    await eventually("payments to order the grant behind the poison", ordered, 90)

    for dead_letter_topic, source, service, group in (
        (ELIGIBILITY_DEAD_LETTERS.name, FACTS.name, "eligibility", "eligibility"),
        (PAYMENTS_DEAD_LETTERS.name, DECISIONS.name, "payments", "payments"),
    ):
        mine = [s for s in sent if s[0] == source]
        kept = await _dead_letters(stack, dead_letter_topic, since_ms,
                                   {(source, meta.partition, meta.offset) for *_, meta in mine})
        for _, _, value, reason, meta in mine:
            record = kept[(source, meta.partition, meta.offset)]
            SCHEMA.validate(json.loads(record.value))  # the committed JSON Schema
            letter = DeadLetterV1.model_validate_json(record.value)
            headers = dict(record.headers)
            letter_id = str(dead_letter_id(group, source, meta.partition, meta.offset))
            assert record.key == f"{source}/{meta.partition}/{meta.offset}".encode()  # no person in it
            assert (letter.dead_letter_id, headers["ce_id"]) == (letter_id, letter_id.encode())
            assert headers["ce_type"] == f"flexledger.{service}.dead-letter.v1".encode()
            assert (letter.service, letter.consumer_group, letter.status) == (service, group, None)
            assert reason in letter.reason, letter.reason
            assert letter.body_bytes == len(value) and letter.body_sha256 == hashlib.sha256(value).hexdigest()
            assert letter.body_masked == masked_body(value)
            # No identity number on the wire: not in the key, the headers or any field.
            for where in (record.key, record.value, *headers.values()):
                assert worker.encode() not in where, where
            assert "origin" not in headers and "x-worker" not in headers
            if worker.encode() in value:  # the unknown version's fact: the worker shows masked
                assert str(mask(worker)) in letter.body_masked
            tp = TopicPartition(source, meta.partition)
            await eventually(f"{group} to commit past {source}[{meta.partition}]@{meta.offset}",
                             lambda g=group, tp=tp, o=meta.offset: _committed_past(stack, g, tp, o), 30)
        print(f"{dead_letter_topic}: " + "; ".join(DeadLetterV1.model_validate_json(r.value).reason
                                                   for r in kept.values()))


async def test_a_redelivered_poison_record_is_dead_lettered_once(stack: Settings) -> None:
    """A poison fact is recorded once per source position: the same record handed over again (as after a
    crash before the offset commit) finds its dead letter recorded and records nothing; the store keeps
    the original bytes, which the published letter's body_sha256 matches."""
    worker = "320213197804121019"
    value = _next_version({"book": f"poison-{uuid.uuid4().hex[:12]}", "seq": 1, "subject": worker})
    since_ms = int(time.time() * 1000) - 1000
    producer = AIOKafkaProducer(**client_args(stack, "admin"), acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(FACTS.name, value, key=f"poison/{worker}".encode())
    finally:
        await producer.stop()
    position = (FACTS.name, meta.partition, meta.offset)
    published = (await _dead_letters(stack, ELIGIBILITY_DEAD_LETTERS.name, since_ms, {position}))[position]

    consumer = AIOKafkaConsumer(**client_args(stack, "admin"), enable_auto_commit=False)
    await consumer.start()
    try:  # the very record eligibility consumed
        tp = TopicPartition(FACTS.name, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.offset, record.value) == (meta.offset, value)

    store = ServiceStore(lambda: EligibilityApplication(stack), stack.pg_dsn(), pool_size_max=1)
    await store.open()
    try:
        woken: list[int] = []
        await DeadLetters(store, "eligibility", lambda: woken.append(1)).keep(record, "redelivered")
        assert woken == []  # nothing recorded, so nothing to publish
        letter_id = dead_letter_id("eligibility", *position)
        [kept] = store.app.events_of([letter_id])[letter_id]
    finally:
        await store.close()
    assert isinstance(kept, DeadLetter.Kept) and kept.reason != "redelivered"
    original = base64.b64decode(kept.body_b64)
    assert original == value
    sha256 = DeadLetterV1.model_validate_json(published.value).body_sha256
    assert sha256 == hashlib.sha256(original).hexdigest()
