"""No identity number on the wire outside the message bodies meant for their recipient: after the demo
runs through the services (and an agency sends a fact it may not, which is dead-lettered), every
record of every topic is read back and no resident identity number appears in any key, any header or
any field of a dead letter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import ALL_TOPICS, DEAD_LETTERS, FACTS, agency_feed
from flexledger.devstack.credentials import client_args
from services.runtime.settings import PROJECT_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# A resident identity number: 17 digits and a check character, standing alone.
IDENTITY_NUMBER = re.compile(rb"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])")
WORKER = "320213199001011234"
DEAD_LETTER_TOPICS = {topic.name for topic in ALL_TOPICS if "dead-letters" in topic.name}


async def _agency_sends_what_it_may_not(settings: Settings) -> None:
    """The HR bureau sends a contribution (the social insurance agency's to send), naming a worker."""
    fact = {"id": "wire-c1", "type": "contribution_paid", "at": "2024-06-05T10:00:00+08:00",
            "worker": WORKER, "month": "2024-05", "amount_fen": 90000}
    producer = AIOKafkaProducer(**client_args(settings, "hr_bureau"), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(agency_feed("hr_bureau").name, json.dumps(fact).encode(),
                                     key=b"main/wire", headers=[("flexledger-book", b"main")])
    finally:
        await producer.stop()


async def _records_since(settings: Settings, since_ms: int) -> dict[str, list[Any]]:
    """Every record of every catalogue topic written since `since_ms`, by topic."""
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    found: dict[str, list[Any]] = {t.name: [] for t in ALL_TOPICS}
    try:
        partitions = [TopicPartition(t.name, p) for t in ALL_TOPICS for p in range(t.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        behind = set(partitions)
        while behind:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                found[tp.topic] += [r for r in records if r.timestamp >= since_ms]
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return found


async def test_no_identity_number_in_any_key_header_or_dead_letter_after_the_demo(services: Settings) -> None:
    since_ms = int(time.time() * 1000) - 1000
    env = {**os.environ, **services.as_env()}
    demo = subprocess.run([sys.executable, "-m", "flexledger", "demo", "--workers", "5"], env=env,
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    await _agency_sends_what_it_may_not(services)

    records = await _records_since(services, since_ms)
    assert records[DEAD_LETTERS.name], "the agency's refused fact is dead-lettered"
    assert any(IDENTITY_NUMBER.search(r.value or b"") for r in records[FACTS.name]), (
        "the demo's facts carry identity numbers in their bodies (meant for eligibility): the scan must "
        "see them there, or it proves nothing"
    )
    leaks = []
    for topic, found in records.items():
        for record in found:
            where = f"{topic}[{record.partition}]@{record.offset}"
            if IDENTITY_NUMBER.search(record.key or b""):
                leaks.append(f"{where} key")
            leaks += [f"{where} header {name}" for name, value in record.headers
                      if IDENTITY_NUMBER.search(value or b"")]
            if topic in DEAD_LETTER_TOPICS and IDENTITY_NUMBER.search(record.value or b""):
                leaks.append(f"{where} dead letter")
    assert leaks == []
