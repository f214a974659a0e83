"""Forgeries past the broker's ACLs (an attacker holding an admin credential, or inside the broker):
facts and decisions that their producing service never published are never believed — not decided,
not paid, dead-lettered with the reason — and a forged high `seq` never makes eligibility skip a
worker's genuine facts. The services run as processes on the authenticated broker (`services`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.decisions import DecisionV1
from contracts.messages import BOOK_HTTP_HEADER, DeadLetterV1, FactMessageV1, fact_subject
from contracts.topics import DECISIONS, ELIGIBILITY_DEAD_LETTERS, FACTS, PAYMENTS_DEAD_LETTERS, topic_for
from flexledger.devstack.credentials import client_args
from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario
from flexledger.submit import operator_key
from services.runtime.keys import partition_key_secret
from services.runtime.message_auth import tag_header
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
ENTERPRISE = "91320213MA1XY0001L"
TIMEOUT_S = 60.0


async def _eventually(what: str, probe: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while not (result := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return result


def _book(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


def _forged_fact(book: str, seq: int, fact: dict[str, Any]) -> bytes:
    """A well-formed fact message that intake never recorded (nor tagged)."""
    digest = hashlib.sha256(json.dumps(fact, sort_keys=True).encode()).hexdigest()
    return FactMessageV1(
        book=book, seq=seq, fact_id=fact["id"], subject=fact_subject(fact), outcome="accepted", fact=fact,
        digest=digest, recorded_at=datetime.now(UTC),
    ).model_dump_json().encode()


async def _inject(
    settings: Settings, topic: str, key: str, values: list[tuple[bytes, list[Any]]]
) -> list[tuple[int, int]]:
    """Publish straight into `topic` as `admin` (a super user: past every ACL); their positions."""
    producer = AIOKafkaProducer(**client_args(settings, "admin"), acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
                for value, headers in values]
        return [(meta.partition, meta.offset) for meta in sent]
    finally:
        await producer.stop()


async def _dead_letters(
    settings: Settings, topic: str, source_topic: str, positions: set[tuple[int, int]]
) -> dict[tuple[int, int], Any]:
    """The dead letters of `source_topic`'s records at `positions` (partition, offset), read from `topic`."""
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    found: dict[tuple[int, int], Any] = {}
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()

        async def all_found() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:  # a stack kept from before the dead-letter contract holds other records too
                        letter = DeadLetterV1.model_validate_json(record.value)
                    except ValueError:
                        continue
                    position = (letter.source_partition, letter.source_offset)
                    if letter.source_topic == source_topic and position in positions:
                        found[position] = letter.model_dump()
            return set(found) == positions

        await _eventually(f"dead letters of {sorted(positions)} on {topic}", all_found)
    finally:
        await consumer.stop()
    return found


async def _get(settings: Settings, port: int, path: str) -> Any:
    auth = {"Authorization": f"Bearer {operator_key(settings)}"}  # every API wants a key
    async with httpx.AsyncClient(timeout=10, headers=auth) as client:
        response = await client.get(f"http://127.0.0.1:{port}{path}")
        response.raise_for_status()
        return response.json()


async def test_a_forged_fact_is_never_decided_and_is_dead_lettered(services: Settings) -> None:
    book = _book("forged")
    award = {"id": "t1", "type": "talent_award", "at": "2022-01-10T10:00:00+08:00", "enterprise": ENTERPRISE,
             "award": "THRC-2021-0031", "approved_amount_fen": 100_000_000}
    value = _forged_fact(book, 1, award)
    key = PartitionKeys(partition_key_secret(services))(book, ENTERPRISE)
    wrong_key = tag_header(b"x" * 32, FACTS.name, value)  # a tag, but not under intake's key
    positions = await _inject(services, FACTS.name, key, [(value, []), (value, [wrong_key])])

    letters = await _dead_letters(services, ELIGIBILITY_DEAD_LETTERS.name, FACTS.name, set(positions))
    assert "no flexledger_mac header" in letters[positions[0]]["reason"]
    assert "does not match" in letters[positions[1]]["reason"]
    decided = await _get(services, services.eligibility_port, f"/v1/books/{book}/decisions")
    progress = await _get(services, services.eligibility_port, f"/v1/books/{book}/progress")
    assert decided["decisions"] == [] and progress["last_seq"] == 0


async def test_a_forged_high_seq_does_not_make_eligibility_skip_genuine_facts(services: Settings) -> None:
    book = _book("skip")
    facts = load_scenario(VECTOR)["facts"]
    worker = next(f["worker"] for f in facts if "worker" in f)
    report = next(f for f in facts if f.get("worker") == worker)
    # Ahead of the genuine facts, on the worker's own partition: seq 1,000,000 for the same worker.
    forged = _forged_fact(book, 1_000_000, {**report, "id": "forged-1"})
    key = PartitionKeys(partition_key_secret(services))(book, worker)
    facts_topic = topic_for(FACTS, book, services.production_book_set).name  # where intake puts this book
    [position] = await _inject(services, facts_topic, key, [(forged, [])])

    headers = {BOOK_HTTP_HEADER: book, "Authorization": f"Bearer {operator_key(services)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        for fact in facts:
            answer = await client.post(f"http://127.0.0.1:{services.intake_port}/v1/facts", json=fact,
                                       headers=headers)
            assert answer.status_code == 201, answer.text

    async def all_decided() -> bool:
        progress = await _get(services, services.eligibility_port, f"/v1/books/{book}/progress")
        return bool(progress["last_seq"] >= len(facts))

    await _eventually("eligibility to decide every genuine fact", all_decided)
    decided = (await _get(services, services.eligibility_port, f"/v1/books/{book}/decisions"))["decisions"]
    expected = [d.to_dict() for d in Engine(book=book).run(facts)]
    assert sorted(d["decision_id"] for d in decided) == sorted(d["decision_id"] for d in expected)
    letters = await _dead_letters(services, ELIGIBILITY_DEAD_LETTERS.name, facts_topic, {position})
    assert "flexledger_mac" in letters[position]["reason"]


async def test_a_forged_decision_is_never_paid_and_is_dead_lettered(services: Settings) -> None:
    book = _book("unpaid")
    grant = DecisionV1(
        book=book, decision_id=f"forged-{uuid.uuid4().hex}", rule_set="wuxi-2021-26/1", after="t1",
        kind="grant", program="talent", beneficiary=ENTERPRISE, subject=ENTERPRISE, ref="THRC-2021-0031",
        amount_fen=100_000_000, recorded_at=datetime.now(UTC),
    )
    key = PartitionKeys(partition_key_secret(services))(book, ENTERPRISE)
    decisions_topic = topic_for(DECISIONS, book, services.production_book_set).name
    [position] = await _inject(services, decisions_topic, key, [(grant.model_dump_json().encode(), [])])

    letters = await _dead_letters(services, PAYMENTS_DEAD_LETTERS.name, decisions_topic, {position})
    assert "flexledger_mac" in letters[position]["reason"]
    orders = await _get(services, services.payments_port, f"/v1/books/{book}/orders")
    assert orders["orders"] == []
