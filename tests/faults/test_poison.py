"""Poison messages on the facts and decisions topics go to the consumer's dead-letter topic with the
reason, and consumption goes on: a valid message behind them on the same partition is processed.

Two kinds of poison on each topic: bytes that are not JSON (not even UTF-8), and a message of an
unknown schema version. They are published with the same key as the valid messages that follow, so
they sit in front of them on the same partition.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faultkit import engine_decisions, eventually, get_json, submit_stream, topic_messages, url

from contracts.messages import partition_key
from contracts.topics import DECISIONS, ELIGIBILITY_DEAD_LETTERS, FACTS, ORDERS, PAYMENTS_DEAD_LETTERS
from flexledger.devstack.credentials import client_args
from flexledger.scenario_file import load_scenario
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
UNDECODABLE = b"\xff\xfe\x00 not json, not even UTF-8 \xc3\x28"


def _next_version(body: dict[str, Any]) -> bytes:
    return json.dumps({**body, "schema_version": 2}).encode()


async def _dead_letters(settings: Settings, topic: str, since_ms: int, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        start = (await consumer.offsets_for_times({tp: since_ms})).get(tp)
        if start is None:
            return []
        consumer.seek(tp, start.offset)
        end = (await consumer.end_offsets([tp]))[tp]
        found = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(records)
        return found
    finally:
        await consumer.stop()


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

    # A fact message and a decision message of a version nobody reads, otherwise well formed.
    fact_v2 = {"book": book, "seq": 1, "fact_id": "x", "subject": worker, "outcome": "accepted",
               "fact": facts[1], "digest": "0" * 64, "recorded_at": "2021-06-01T01:00:00Z"}
    decision_v2 = {**grant, "book": book}
    poison = [
        (FACTS.name, partition_key(book, worker), UNDECODABLE, "Invalid JSON"),
        (FACTS.name, partition_key(book, worker), _next_version(fact_v2), "unknown schema_version 2"),
        (DECISIONS.name, partition_key(book, grant["beneficiary"]), UNDECODABLE, "Invalid JSON"),
        (DECISIONS.name, partition_key(book, grant["beneficiary"]), _next_version(decision_v2),
         "unknown schema_version 2"),
    ]
    producer = AIOKafkaProducer(**client_args(stack, "admin"), acks="all")
    await producer.start()
    try:
        headers = [("origin", b"test_poison")]
        sent = [
            (topic, key, value, reason,
             await producer.send_and_wait(topic, value, key=key.encode(), headers=headers))
            for topic, key, value, reason in poison
        ]
    finally:
        await producer.stop()

    # The valid messages behind the poison: the vector's facts (through intake), whose grant becomes a
    # decision (behind the decision poison) and then a payment order.
    receipts = await submit_stream(stack, book, facts, submitters=1)
    assert len({r.seq for r in receipts}) == len(facts)
    async with httpx.AsyncClient(timeout=30) as client:

        async def decided() -> tuple[bool, Any]:
            seen = await get_json(client, url(stack, "eligibility", f"/v1/books/{book}/progress"))
            return seen["last_seq"] >= len(facts), seen

        await eventually("eligibility to process the facts behind the poison", decided, 90)

    async def ordered() -> tuple[bool, Any]:
        found = await topic_messages(stack, ORDERS.name, book, since_ms, until_count=lambda n: n >= 1)
        return any(body["decision_id"] == grant["decision_id"] for _, body in found), found

    await eventually("payments to order the grant behind the poison", ordered, 90)

    for dead_letter_topic, source, group in ((ELIGIBILITY_DEAD_LETTERS.name, FACTS.name, "eligibility"),
                                             (PAYMENTS_DEAD_LETTERS.name, DECISIONS.name, "payments")):
        mine = [s for s in sent if s[0] == source]
        kept = await _dead_letters(stack, dead_letter_topic, since_ms, len(mine))
        by_source = {}
        for record in kept:
            headers = {k: v.decode() for k, v in record.headers}
            if headers.get("dlq_source_topic") == source:
                by_source[(int(headers["dlq_source_partition"]), int(headers["dlq_source_offset"]))] = (
                    record, headers)
        for _, key, value, reason, meta in mine:
            where = (meta.partition, meta.offset)
            assert where in by_source, f"{source}[{meta.partition}]@{meta.offset} not on {dead_letter_topic}"
            record, headers = by_source[where]
            assert record.value == value and record.key == key.encode()
            assert reason in headers["dlq_reason"], headers["dlq_reason"]
            assert worker not in headers["dlq_reason"]  # the reason never quotes the message
            assert headers["dlq_consumer_group"] == group and headers["origin"] == "test_poison"
            tp = TopicPartition(source, meta.partition)
            await eventually(f"{group} to commit past {source}[{meta.partition}]@{meta.offset}",
                             lambda g=group, tp=tp, o=meta.offset: _committed_past(stack, g, tp, o), 30)
        print(f"{dead_letter_topic}: " + "; ".join(h["dlq_reason"] for _, h in by_source.values()))
