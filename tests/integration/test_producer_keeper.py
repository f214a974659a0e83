"""A service's Kafka producer outlives a fatal error (`services.runtime.kafka.ProducerKeeper`).

aiokafka's idempotent producer stops sending for good when its sender fails (e.g. with
`OutOfOrderSequenceNumber` after a broker restart lost the tail of a log). The broker restart itself is
the fault tests' business; here the sender fails on purpose with that error, and the service must
publish again without being restarted.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber
from opentelemetry import trace
from pydantic import BaseModel

from contracts.cloudevents import CloudEvent
from contracts.topics import STATISTICS
from flexledger.devstack.credentials import as_principal, client_args
from services.runtime.kafka import make_broker
from services.runtime.publishing import Outgoing, publish_batch
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration


def _fail_sender(runtime: ServiceRuntime) -> None:
    """Make the running producer's sender end as aiokafka's does on a fatal error: its routine raises,
    and every pending and later batch fails."""
    producer = runtime.broker.config.broker_config.producer._producer.producer  # type: ignore[attr-defined]
    sender = producer._sender

    async def fatal() -> None:
        raise OutOfOrderSequenceNumber()

    sender._sender_task.cancel()
    sender._sender_task = asyncio.ensure_future(fatal())
    sender._sender_task.add_done_callback(sender._fail_all)


async def _publish(runtime: ServiceRuntime, marker: str) -> None:
    await runtime.broker.publish(json.dumps({"probe": marker}).encode(), STATISTICS.name, key=b"test/probe",
                                 headers={"flexledger-probe": "1"})


class _Probe(BaseModel):
    probe: str


async def _publish_batch(runtime: ServiceRuntime, publisher: Any, marker: str) -> None:
    """As the outbox relays publish (`publish_batch`), one message."""
    event = CloudEvent(id=uuid.uuid4().hex, source="keeper-test", type="flexledger.test.probe")
    await publish_batch(trace.get_tracer("keeper-test"), publisher,
                        [Outgoing(_Probe(probe=marker), "test/probe", event)])


def _put_sequences_out_of_step(runtime: ServiceRuntime) -> None:
    """What a broker restart that lost the tail of a log does to the producer: the next batch's
    sequence number is not the one the broker expects, so the broker answers OutOfOrderSequenceNumber
    (and aiokafka fails the batch while its sender keeps running)."""
    producer = runtime.broker.config.broker_config.producer._producer.producer  # type: ignore[attr-defined]
    numbers = producer._txn_manager._sequence_numbers
    assert numbers, "nothing was sent yet"
    for partition in numbers:
        numbers[partition] += 7


async def _read_back(settings: Settings, marker: str) -> bool:
    consumer = AIOKafkaConsumer(STATISTICS.name, **client_args(settings, "statistics"),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        for _ in range(20):
            batches = await consumer.getmany(timeout_ms=500)
            if any(marker.encode() in record.value for records in batches.values() for record in records):
                return True
        return False
    finally:
        await consumer.stop()


async def test_a_failed_producer_is_replaced_and_publishing_resumes(infra: Settings) -> None:
    settings = as_principal(infra, "admin")  # may write the statistics topic, which no service reads
    runtime = ServiceRuntime("keeper-test", make_broker(settings, "keeper-test"))
    await runtime.start()
    try:
        _fail_sender(runtime)
        with pytest.raises(KafkaError):  # the dead producer refuses, as it did in the fault tests
            await _publish(runtime, "lost")
        for _ in range(50):  # the keeper replaces it as soon as it sees the sender end
            if runtime.producer.renewals:
                break
            await asyncio.sleep(0.1)
        assert runtime.producer.renewals == 1
        marker = uuid.uuid4().hex
        await _publish(runtime, marker)
        assert await _read_back(infra, marker)
        assert runtime.health()["tasks"]["kafka producer"] is True  # it keeps watching the new one
    finally:
        await runtime.stop()
    assert all(task.done() for task in runtime.tasks)


async def test_a_producer_the_broker_refuses_for_good_is_replaced(infra: Settings) -> None:
    settings = as_principal(infra, "admin")
    runtime = ServiceRuntime("keeper-test", make_broker(settings, "keeper-test"))
    publisher = runtime.broker.publisher(STATISTICS.name)
    await runtime.start()
    try:
        await _publish_batch(runtime, publisher, "before")
        _put_sequences_out_of_step(runtime)
        with pytest.raises(OutOfOrderSequenceNumber):  # refused by the broker, not by aiokafka
            await _publish_batch(runtime, publisher, "lost")
        for _ in range(50):
            if runtime.producer.renewals:
                break
            await asyncio.sleep(0.1)
        assert runtime.producer.renewals == 1
        marker = uuid.uuid4().hex
        await _publish_batch(runtime, publisher, marker)
        assert await _read_back(infra, marker)
    finally:
        await runtime.stop()
