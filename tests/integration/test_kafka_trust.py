"""The trust boundary on Kafka (docs/design/kafka-trust.md), against the real broker of `infra`: who
cannot connect, what each principal may not do, that what the access table grants works, and the
`flexledger kafka` commands that manage credentials and ACLs.

Messages are written only where no service of ours reads them (the statistics topic, an agency's own
feed, in a sandbox book), and consumers join only groups of their own, never a service's."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from typer.testing import CliRunner

from contracts.topics import (
    CHECKPOINTS,
    DECISIONS,
    FACTS,
    ORDER_EVENTS,
    ORDERS,
    SANDBOX_DECISIONS,
    SANDBOX_DISBURSEMENTS,
    SANDBOX_ORDERS,
    SANDBOX_SETTLEMENTS,
    SANDBOX_STATISTICS,
    SETTLEMENTS,
    STATISTICS,
    agency_feed,
    sandbox_twin,
)
from flexledger.devstack import credentials, kafka_admin
from flexledger.devstack.credentials import client_args
from flexledger.kafka_access import Acl, acls
from services.runtime.kafka import client_security
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def broker(infra: Settings, infra_source: str) -> Settings:
    if infra_source != "local":
        pytest.skip(f"the broker from {infra_source} does not authenticate (only the local stack's does)")
    return infra


def _connect(settings: Settings) -> dict[str, Any]:
    """aiokafka arguments connecting with exactly these settings (a forged or stale identity)."""
    return {"bootstrap_servers": settings.kafka_bootstrap, **client_security(settings)}


async def _produce(client: dict[str, Any], topic: str, value: bytes = b"{}", key: bytes = b"trust/-") -> None:
    producer = AIOKafkaProducer(**client, acks="all", enable_idempotence=True, request_timeout_ms=TIMEOUT_MS)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _consume(client: dict[str, Any], topic: str, group: str | None) -> None:
    """Join `group` (None: no group) on `topic`, fetch, and commit when in a group."""
    consumer = AIOKafkaConsumer(topic, **client, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="latest", request_timeout_ms=TIMEOUT_MS)
    try:
        await consumer.start()
        for _ in range(3):
            await consumer.getmany(timeout_ms=500)
        if group is not None:
            await consumer.commit()
    finally:
        await consumer.stop()


def _group(principal: str) -> str:
    return f"{principal}.trust-test-{uuid.uuid4().hex[:8]}"


# ---- who cannot connect ---------------------------------------------------------------------------


async def test_a_client_without_credentials_is_refused(broker: Settings) -> None:
    anonymous = replace(broker, kafka_security_protocol="PLAINTEXT")
    with pytest.raises(KafkaConnectionError):
        await _produce(_connect(anonymous),
                       STATISTICS.name)


async def test_a_wrong_password_is_refused_as_an_authentication_failure(
    broker: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    impostor = broker.as_kafka_principal("intake", "not-" + credentials.stored_password(broker, "intake"))
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await _produce(_connect(impostor), FACTS.name)
    assert "SaslAuthenticationFailed" in caplog.text  # not a broker that is down


async def test_an_unknown_user_is_refused(broker: Settings) -> None:
    mallory = broker.as_kafka_principal("mallory", "guess")
    with pytest.raises(KafkaConnectionError):
        await _produce(_connect(mallory), FACTS.name)


# ---- what a principal may not do ------------------------------------------------------------------


@pytest.mark.parametrize(("principal", "topic"), [
    ("payments", FACTS.name),  # a forged fact: only intake writes the facts topic
    ("eligibility", FACTS.name),
    ("intake", DECISIONS.name),  # a forged decision
    ("hr_bureau", agency_feed("social_insurance_agency").name),  # another agency's feed
    ("finance", DECISIONS.name),
    ("payments", SETTLEMENTS.name),  # a forged bank settlement: only finance writes them
    ("finance", SANDBOX_SETTLEMENTS.name),  # each bank settles its own side's books only
    ("sandbox_finance", SETTLEMENTS.name),
])
async def test_a_principal_cannot_write_a_topic_the_table_does_not_give_it(
    broker: Settings, principal: str, topic: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(client_args(broker, principal), topic)


@pytest.mark.parametrize(("principal", "topic"), [
    ("statistics", STATISTICS.name),
    ("subscriber", ORDER_EVENTS.name),  # `flexledger subscribe` cannot forge an order's life
])
async def test_a_principal_that_writes_nothing_cannot_even_start_a_producer(
    broker: Settings, principal: str, topic: str
) -> None:
    with pytest.raises(ClusterAuthorizationFailedError):  # InitProducerId: no WRITE on any topic
        await _produce(client_args(broker, principal), topic)


@pytest.mark.parametrize(("principal", "topic"), [
    ("statistics", DECISIONS.name),  # the statistics bureau sees pseudonyms, never decisions
    ("tax", FACTS.name),
    ("hr_bureau", FACTS.name),
    ("auditor", DECISIONS.name),
    ("finance", SANDBOX_ORDERS.name),  # no outside subscriber sees a sandbox book
    ("statistics", SANDBOX_STATISTICS.name),
    ("tax", SANDBOX_DECISIONS.name),
    ("sandbox_finance", ORDERS.name),  # nor the sandbox bank a production book
    ("statistics", ORDER_EVENTS.name),  # an order's life is the paying side's business
    ("subscriber", FACTS.name),  # the reference subscriber reads published results, never facts
    ("subscriber", sandbox_twin(ORDER_EVENTS).name),
])
async def test_a_principal_cannot_read_a_topic_the_table_does_not_give_it(
    broker: Settings, principal: str, topic: str
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await _consume(client_args(broker, principal), topic, _group(principal))


@pytest.mark.parametrize(("principal", "topic", "group"), [
    ("tax", DECISIONS.name, "payments"),  # a service's group: it would take the service's partitions
    ("statistics", STATISTICS.name, "tax.reports"),  # another subscriber's groups
    ("eligibility", FACTS.name, "intake"),
])
async def test_a_principal_cannot_consume_in_a_group_the_table_does_not_give_it(
    broker: Settings, principal: str, topic: str, group: str
) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        await _consume(client_args(broker, principal), topic, group)


# ---- what the table grants works ------------------------------------------------------------------


async def test_a_subscriber_reads_its_topic_in_a_group_of_its_own(broker: Settings) -> None:
    probe = json.dumps({"probe": uuid.uuid4().hex}).encode()
    group = _group("statistics")
    reader = AIOKafkaConsumer(STATISTICS.name, **client_args(broker, "statistics"), group_id=group,
                              enable_auto_commit=False, auto_offset_reset="latest")
    await reader.start()
    try:
        while not reader.assignment():  # joined, positioned at the end: then the probe is written
            await reader.getmany(timeout_ms=200)
        for tp in reader.assignment():
            await reader.position(tp)
        await _produce(client_args(broker, "admin"), STATISTICS.name, probe)

        async def find() -> None:
            while True:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    if any(r.value == probe for r in records):
                        return

        await asyncio.wait_for(find(), timeout=30)
        await reader.commit()
    finally:
        await reader.stop()
    await _consume(client_args(broker, "tax"), DECISIONS.name, _group("tax"))
    await _consume(client_args(broker, "auditor"), CHECKPOINTS.name, None)
    sandbox_bank = client_args(broker, "sandbox_finance")
    await _consume(sandbox_bank, SANDBOX_DISBURSEMENTS.name, _group("sandbox_finance"))


async def test_an_agency_writes_its_own_feed(broker: Settings) -> None:
    fact = {"id": f"trust-{uuid.uuid4().hex[:8]}", "type": "worker_registered"}
    for agency in ("hr_bureau", "talent_office"):
        await _produce(client_args(broker, agency), agency_feed(agency).name, json.dumps(fact).encode(),
                       key=f"trust-{uuid.uuid4().hex[:8]}/-".encode())


# ---- flexledger kafka principals / acls ---------------------------------------------------------


def _kafka_cli(settings: Settings, *args: str) -> str:
    from flexledger.kafka_cli import app

    result = CliRunner().invoke(app, list(args), env=settings.as_env())
    assert result.exit_code == 0, result.output
    return result.output


async def test_rotate_refuses_the_old_password_and_remove_then_add_restores(broker: Settings) -> None:
    old = broker.as_kafka_principal("tax", credentials.stored_password(broker, "tax"))
    try:
        _kafka_cli(broker, "principals", "rotate", "tax")
        assert credentials.stored_password(broker, "tax") != old.kafka_password
        with pytest.raises(KafkaConnectionError):
            await _consume(_connect(old), DECISIONS.name, None)
        await _consume(client_args(broker, "tax"), DECISIONS.name, None)  # the new one works

        out = _kafka_cli(broker, "principals", "remove", "tax")
        assert "ACLs stay" in out
        assert not credentials.password_file(broker, "tax").exists()
        assert "tax" not in kafka_admin.ensure_users(broker)  # a removed principal stays removed
        with pytest.raises(KafkaConnectionError):
            await _consume(_connect(old), DECISIONS.name, None)
    finally:
        _kafka_cli(broker, "principals", "add", "tax")
    await _consume(client_args(broker, "tax"), DECISIONS.name, _group("tax"))


async def test_acls_apply_makes_the_broker_s_acls_exactly_the_table(broker: Settings) -> None:
    stray = Acl("tax", "TOPIC", "LITERAL", FACTS.name, "READ")
    kafka_admin.run_tool(broker, kafka_admin.ACL_COMMAND, "--add", "--allow-principal", "User:tax",
                         "--operation", "READ", "--topic", FACTS.name)
    assert stray in {listed.acl for listed in kafka_admin.list_acls(broker)}
    out = _kafka_cli(broker, "acls", "apply")
    assert "remove tax READ TOPIC flexledger.intake.facts.v1" in out and "0 added, 1 removed" in out
    listed = {entry.acl for entry in kafka_admin.list_acls(broker) if entry.managed}
    assert listed == set(acls())
    assert "0 to add, 0 to remove" in _kafka_cli(broker, "acls", "apply", "--dry-run")
