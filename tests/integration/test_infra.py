"""The infrastructure every service stands on: the Kafka broker with its topic catalogue, and PostgreSQL.

The Kafka round trips write one probe message (JSON with `"probe"`, header `flexledger-probe`) to the
statistics topic, which no service of ours consumes; readers of that topic in tests should skip it.
The probe is injected as `admin`, and read back as the Statistics Bureau's principal `statistics`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import ALL_TOPICS, STATISTICS
from flexledger.devstack.credentials import client_args
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

PROBE_HEADER = "flexledger-probe"


async def _produce_probe(settings: Settings) -> tuple[bytes, int, int]:
    value = json.dumps({"probe": uuid.uuid4().hex}).encode()
    producer = AIOKafkaProducer(**client_args(settings, "admin"), acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            STATISTICS.name, value, key=b"test/probe", headers=[(PROBE_HEADER, b"1")]
        )
    finally:
        await producer.stop()
    return value, meta.partition, meta.offset


async def test_catalogue_topics_exist_with_their_partitions(infra: Settings) -> None:
    admin = AIOKafkaAdminClient(**client_args(infra, "admin"))
    await admin.start()
    try:
        described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described if d["error_code"] == 0}
    assert partitions == {t.name: t.partitions for t in ALL_TOPICS}


async def test_produce_then_consume_one_message_at_its_offset(infra: Settings) -> None:
    value, partition, offset = await _produce_probe(infra)
    tp = TopicPartition(STATISTICS.name, partition)
    consumer = AIOKafkaConsumer(**client_args(infra, "statistics"), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (record.value, record.key, record.offset) == (value, b"test/probe", offset)
    assert (PROBE_HEADER, b"1") in list(record.headers)


async def test_consumer_group_joins_and_receives(infra: Settings) -> None:
    """A group join works quickly (one offsets partition, no initial rebalance delay)."""
    value, _, _ = await _produce_probe(infra)
    consumer = AIOKafkaConsumer(
        STATISTICS.name,
        **client_args(infra, "statistics"),
        group_id=f"statistics.test-infra-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    t0 = time.monotonic()
    await consumer.start()
    try:
        async def find() -> None:
            async for record in consumer:
                if record.value == value:
                    return

        await asyncio.wait_for(find(), timeout=60)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert time.monotonic() - t0 < 30


async def test_postgres_create_insert_select(infra: Settings) -> None:
    table = f"infra_probe_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn=infra.pg_dsn(), timeout=10)
    try:
        await conn.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, note text NOT NULL)")
        try:
            await conn.execute(f"INSERT INTO {table} (note) VALUES ($1), ($2)", "一", "two")
            rows = await conn.fetch(f"SELECT note FROM {table} ORDER BY id")
            assert [r["note"] for r in rows] == ["一", "two"]
        finally:
            await conn.execute(f"DROP TABLE {table}")
        assert await conn.fetchval("SELECT current_user") == infra.pg_user
    finally:
        await conn.close()


def test_local_stack_start_is_idempotent_and_reports_health(infra: Settings, infra_source: str) -> None:
    if infra_source != "local":
        pytest.skip("only the local dev stack is managed by flexledger.devstack")
    from flexledger import devstack

    before = {row.part: row.pid for row in devstack.status(infra)}
    devstack.start_infra(infra)  # everything already runs: nothing is started again
    rows = {row.part: row for row in devstack.status(infra)}
    assert rows["kafka"].pid == before["kafka"] and rows["postgres"].pid == before["postgres"]
    assert rows["kafka"].healthy and rows["kafka"].pid is not None
    assert rows["postgres"].healthy and rows["postgres"].pid is not None
