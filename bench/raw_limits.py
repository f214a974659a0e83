"""What this machine's Kafka broker and PostgreSQL can do at all, for messages and rows the size of
the pipeline's facts: the ceilings the end-to-end benchmark (bench/e2e_bench.py) is read against.

- Kafka (aiokafka 0.14, as the services use it: acks=all, idempotent producer, one broker, each client
  authenticated as its principal under the broker's ACLs): N messages of the size of a FactMessageV1 on
  a scratch topic of 6 partitions, keyed like the facts topic. The scratch topics are created and
  deleted by `admin`; the messages are written and read by `bench`, which may touch only
  `flexledger.bench.*` (docs/design/kafka-trust.md). Produce (all sends issued, then all
  acknowledgements awaited), consume (one consumer, all 6 partitions, from the start), and both at
  once (a consumer reading while the producer writes: the pipelined produce+consume rate, first send
  to last message read).
- PostgreSQL (asyncpg): N rows of the size of a stored event (id, originator uuid, version, topic,
  state bytea) into a scratch table: `executemany` in one transaction, `COPY`
  (`copy_records_to_table`), and single-row INSERTs each in its own transaction (a commit, so an
  fsync, per row: the rate of a service that commits one fact at a time; capped at --single-rows).

The scratch topic and table are deleted afterwards.

    python bench/raw_limits.py                     # against the stack of `flexledger dev env`
    python bench/raw_limits.py --messages 100000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.runtime.settings import Settings  # noqa: E402

PARTITIONS = 6
DEFAULT_MESSAGE_BYTES = 700  # a FactMessageV1 of a monthly report, JSON: measured by fact_message_bytes()


@dataclass
class RawLimits:
    messages: int
    message_bytes: int
    kafka_produce_per_s: float
    kafka_consume_per_s: float
    kafka_produce_consume_per_s: float
    pg_rows: int
    pg_executemany_per_s: float
    pg_copy_per_s: float
    pg_single_rows: int
    pg_single_commit_per_s: float


def fact_message_bytes() -> int:
    """The size of a typical FactMessageV1 (a monthly report from the generator), as JSON."""
    sys.path.insert(0, str(ROOT / "bench"))
    from datetime import UTC, datetime

    from generate import generate_facts

    from contracts.messages import FactMessageV1

    sizes = []
    for n, fact in enumerate(generate_facts(workers=200, platforms=3, months=12, seed=1)):
        if fact.get("type") == "monthly_report":
            message = FactMessageV1(
                book="main", seq=n + 1, fact_id=fact["id"], subject=fact["worker"], outcome="accepted",
                fact=fact, digest="0" * 64, recorded_at=datetime.now(UTC),
                traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            )
            sizes.append(len(message.model_dump_json()))
        if len(sizes) >= 200:
            break
    return sum(sizes) // len(sizes) if sizes else DEFAULT_MESSAGE_BYTES


# ---- Kafka --------------------------------------------------------------------------------------


def _client(settings: Settings, principal: str) -> dict[str, Any]:
    from flexledger.devstack.credentials import client_args

    return client_args(settings, principal)


async def _create_topic(settings: Settings, name: str) -> None:
    """Create the scratch topic and wait until every partition has its leader: one message is sent
    to each partition (the readers count these PARTITIONS messages too)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**_client(settings, "admin"))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    producer = _producer(settings)
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            await producer.send_and_wait(name, b"warm-up", partition=partition)
    finally:
        await producer.stop()


async def _delete_topic(settings: Settings, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**_client(settings, "admin"))
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


def _producer(settings: Settings) -> Any:
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(**_client(settings, "bench"), acks="all", enable_idempotence=True)


async def _produce(settings: Settings, topic: str, payloads: list[tuple[bytes, bytes]]) -> float:
    producer = _producer(settings)
    await producer.start()
    try:
        t0 = time.perf_counter()
        pending = [await producer.send(topic, value, key=key) for key, value in payloads]
        await asyncio.gather(*pending)
        return time.perf_counter() - t0
    finally:
        await producer.stop()


async def _consume(settings: Settings, topic: str, count: int) -> float:
    """Seconds from start until `count` messages were read."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(**_client(settings, "bench"), enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=5000)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        seen = 0
        t0 = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - t0
    finally:
        await consumer.stop()


async def kafka_limits(settings: Settings, messages: int, message_bytes: int) -> tuple[float, float, float]:
    value = (b'{"x":"' + b"a" * max(0, message_bytes - 8) + b'"}')[:message_bytes]
    payloads = [(f"main/3202{n % 100_000:014d}".encode(), value) for n in range(messages)]
    topic = f"flexledger.bench.raw-{uuid.uuid4().hex[:8]}"
    await _create_topic(settings, topic)
    try:
        produce_s = await _produce(settings, topic, payloads)
        consume_s = await _consume(settings, topic, messages + PARTITIONS)
    finally:
        await _delete_topic(settings, topic)
    # Both at once, on a fresh topic: the consumer reads while the producer writes.
    topic = f"flexledger.bench.raw-{uuid.uuid4().hex[:8]}"
    await _create_topic(settings, topic)
    try:
        t0 = time.perf_counter()
        reader = asyncio.create_task(_consume(settings, topic, messages + PARTITIONS))
        await _produce(settings, topic, payloads)
        await reader
        both_s = time.perf_counter() - t0
    finally:
        await _delete_topic(settings, topic)
    return messages / produce_s, messages / consume_s, messages / both_s


# ---- PostgreSQL ---------------------------------------------------------------------------------


async def pg_limits(dsn: str, rows: int, row_bytes: int, single_rows: int) -> tuple[float, float, float, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    table = f"bench_raw_{uuid.uuid4().hex[:8]}"
    state = os.urandom(row_bytes)  # event state is AES-GCM ciphertext: incompressible
    records = [(uuid.uuid4(), 1, "services.eligibility.aggregates:SubjectLedger.FactProcessed", state)
               for _ in range(rows)]
    ddl = (f"CREATE TABLE {table} (id bigserial PRIMARY KEY, originator_id uuid NOT NULL, "
           "originator_version integer NOT NULL, topic text NOT NULL, state bytea NOT NULL, "
           "UNIQUE (originator_id, originator_version))")
    insert = f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES ($1, $2, $3, $4)"
    try:
        await conn.execute(ddl)
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(insert, records)
        executemany_s = time.perf_counter() - t0
        await conn.execute(f"TRUNCATE {table}")
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                table, records=records, columns=["originator_id", "originator_version", "topic", "state"]
            )
        copy_s = time.perf_counter() - t0
        await conn.execute(f"TRUNCATE {table}")
        single = min(rows, single_rows)
        t0 = time.perf_counter()
        for record in records[:single]:
            await conn.execute(insert, *record)  # autocommit: one transaction, one WAL flush, per row
        single_s = time.perf_counter() - t0
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
    return rows / executemany_s, rows / copy_s, single / single_s, single


def measure(settings: Settings, messages: int, single_rows: int = 5_000) -> RawLimits:
    size = fact_message_bytes()

    async def both() -> RawLimits:
        produce, consume, produce_consume = await kafka_limits(settings, messages, size)
        many, copy, single, single_n = await pg_limits(settings.pg_dsn(), messages, size, single_rows)
        return RawLimits(
            messages, size, produce, consume, produce_consume, messages, many, copy, single_n, single
        )

    return asyncio.run(both())


def describe(limits: RawLimits) -> list[str]:
    return [
        f"raw limits for {limits.messages:,} messages/rows of {limits.message_bytes} bytes:",
        f"  kafka produce            {limits.kafka_produce_per_s:>12,.0f} msg/s  (acks=all, idempotent)",
        f"  kafka consume            {limits.kafka_consume_per_s:>12,.0f} msg/s",
        f"  kafka produce+consume    {limits.kafka_produce_consume_per_s:>12,.0f} msg/s  (pipelined)",
        f"  pg executemany, 1 tx     {limits.pg_executemany_per_s:>12,.0f} rows/s",
        f"  pg COPY, 1 tx            {limits.pg_copy_per_s:>12,.0f} rows/s",
        f"  pg 1 row per commit      {limits.pg_single_commit_per_s:>12,.0f} rows/s"
        f"  ({limits.pg_single_rows:,} rows)",
    ]


def main() -> None:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries while a scratch topic gets leaders
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages (and rows) to write")
    parser.add_argument("--single-rows", type=int, default=5_000, help="rows for the one-commit-per-row run")
    parser.add_argument("--json", action="store_true", help="one line of JSON instead of the table")
    args = parser.parse_args()
    limits = measure(Settings.from_env(), args.messages, args.single_rows)
    print(json.dumps(asdict(limits)) if args.json else "\n".join(describe(limits)))


if __name__ == "__main__":
    main()
