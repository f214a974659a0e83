"""Kafka clients every service shares: the broker and who it connects as (docs/design/kafka-trust.md).
Publishing from an outbox is `services.runtime.publishing`; consuming, `services.runtime.consuming`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, ProducerFenced, UnknownProducerId
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512

from services.runtime.settings import Settings

log = logging.getLogger(__name__)

# Record batches up to 512 KiB (aiokafka's default is 16 KiB): an outbox batch of a few hundred facts
# goes to the broker as one batch per partition, and the broker's work is mostly per batch. Below the
# broker's default message.max.bytes (1 MiB), which bounds one batch.
MAX_BATCH_BYTES = 512 * 1024


def make_broker(settings: Settings, client_id: str) -> KafkaBroker:
    """Idempotent producer with acks=all: a retried send never duplicates or reorders a partition.
    Connected as the settings' principal; subscribers never ask the broker to create a topic (topics
    are provisioned by `admin`, and a service's principal may not create any). The bootstrap may name
    several brokers (comma-separated), so that the service starts while one of them is down; FastStream
    takes one string as one address."""
    return KafkaBroker(
        [address.strip() for address in settings.kafka_bootstrap.split(",")], client_id=client_id,
        acks="all", enable_idempotence=True,
        max_batch_size=MAX_BATCH_BYTES, security=broker_security(settings), allow_auto_create_topics=False,
        logger=logging.getLogger(f"{client_id}.kafka"), log_level=logging.DEBUG,
    )


# ---- who connects (docs/design/kafka-trust.md) ---------------------------------------------------

SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "PLAIN")


def client_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that make an aiokafka producer, consumer or admin client connect as the
    settings' principal: `AIOKafkaConsumer(..., **client_security(settings))`."""
    protocol = _protocol(settings)
    if protocol == "PLAINTEXT":
        return {}
    if not settings.kafka_username:
        raise ValueError(_NO_PRINCIPAL.format(protocol=protocol))
    args: dict[str, Any] = {
        "security_protocol": protocol, "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_username, "sasl_plain_password": settings.kafka_password,
    }
    if protocol == "SASL_SSL":
        args["ssl_context"] = ssl_context(settings)
    return args


def broker_security(settings: Settings) -> BaseSecurity | None:
    """`client_security` for a FastStream broker (one broker, one principal). Without a user name it
    only warns: a broker is also built to describe the AsyncAPI document, or in tests that never
    connect; one that does connect is refused by the broker."""
    protocol = _protocol(settings)
    if protocol == "PLAINTEXT":
        return None
    if not settings.kafka_username:
        log.warning(_NO_PRINCIPAL.format(protocol=protocol))
    context = ssl_context(settings) if protocol == "SASL_SSL" else None
    scheme = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLPlaintext
    return scheme(username=settings.kafka_username, password=settings.kafka_password,
                  ssl_context=context, use_ssl=context is not None)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Checks the broker's certificate chain and host name against `kafka_ca_file` (PEM), else against
    the system's CAs."""
    return ssl.create_default_context(cafile=settings.kafka_ca_file or None)


def _protocol(settings: Settings) -> str:
    """The security protocol, refusing settings that could not connect (an unknown protocol or
    mechanism) with an error that names the setting."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(f"FLEXLEDGER_KAFKA_SECURITY_PROTOCOL {settings.kafka_security_protocol!r} is "
                         f"not one of {', '.join(SECURITY_PROTOCOLS)}")
    if protocol != "PLAINTEXT" and settings.kafka_sasl_mechanism not in SASL_MECHANISMS:
        raise ValueError(f"FLEXLEDGER_KAFKA_SASL_MECHANISM {settings.kafka_sasl_mechanism!r} is not one of "
                         f"{', '.join(SASL_MECHANISMS)}")
    return protocol


_NO_PRINCIPAL = ("Kafka wants a principal ({protocol}): set FLEXLEDGER_KAFKA_USERNAME and "
                 "FLEXLEDGER_KAFKA_PASSWORD (`flexledger dev env --principal NAME` shows them)")


def static_member(settings: Settings, group: str) -> str | None:
    """The `group_instance_id` of this process in consumer group `group`, None for dynamic membership
    (`Settings.kafka_instance_id`)."""
    return f"{settings.kafka_instance_id}/{group}" if settings.kafka_instance_id else None


# ---- a producer that outlives its fatal errors -----------------------------------------------------

# Errors a broker answers to one batch that leave the idempotent producer's sequence numbers out of
# step for good (aiokafka fails the batch but keeps the sender running): every later batch to that
# partition fails the same way until the producer is replaced.
BROKEN_PRODUCER_ERRORS: tuple[type[BaseException], ...] = (
    OutOfOrderSequenceNumber, InvalidProducerEpoch, UnknownProducerId, ProducerFenced)


class ProducerKeeper:
    """Keeps the broker's idempotent producer alive. A producer is broken for good when its sender
    stops on a fatal error, or when the broker answers a batch with `OutOfOrderSequenceNumber` (a
    restarted broker lost the tail of a partition's log) or a fenced or unknown producer id; every
    later send on it fails. The keeper replaces it with a new one (a new producer id, sequence numbers
    from zero): what was in flight failed, so its outbox follower did not advance and publishes that
    batch again, which consumers drop by event id. One keeper per service (`ServiceRuntime.start`);
    publishing reports broken sends with `producer_broken`, so no relay needs to know."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        self.renewals = 0
        self._broken = asyncio.Event()

    async def run(self) -> None:
        """Renew the producer when its sender ended on an error or a send reported it broken. A sender
        that ends without an error is a producer being closed (the service stopping): nothing to keep."""
        while True:
            _KEEPERS[started_producer(self.broker)] = self
            sender = _sender_task(self.broker)
            broken = asyncio.ensure_future(self._broken.wait())
            await asyncio.wait({sender, broken}, return_when=asyncio.FIRST_COMPLETED)
            broken.cancel()
            if sender.done() and (sender.cancelled() or sender.exception() is None):
                return
            cause = sender.exception() if sender.done() else "a send the broker refused for good"
            log.warning("Kafka producer failed (%s); replacing it", cause)
            self._broken.clear()
            await self.renew()

    async def renew(self) -> None:
        fast = self.broker.config.broker_config.producer
        old = fast._producer.producer  # type: ignore[attr-defined]
        await fast.connect(AIOKafkaProducer(**self.broker._connection_kwargs),
                           serializer=fast.serializer, codec=fast.codec)  # type: ignore[attr-defined]
        self.renewals += 1
        try:  # its batches already failed; stopping only releases its connections
            await asyncio.wait_for(old.stop(), PRODUCER_STOP_TIMEOUT_S)
        except Exception:
            log.debug("the failed Kafka producer did not stop cleanly", exc_info=True)


_KEEPERS: weakref.WeakKeyDictionary[AIOKafkaProducer, ProducerKeeper] = weakref.WeakKeyDictionary()


def producer_broken(producer: AIOKafkaProducer, error: BaseException) -> None:
    """Tell the producer's keeper (if any) that a send failed with `error`; it replaces the producer
    when the error is one of BROKEN_PRODUCER_ERRORS. The caller still fails: its batch is retried."""
    keeper = _KEEPERS.get(producer)
    if keeper is not None and isinstance(error, BROKEN_PRODUCER_ERRORS):
        keeper._broken.set()


PRODUCER_STOP_TIMEOUT_S = 5.0


def started_producer(broker: KafkaBroker) -> AIOKafkaProducer:
    """The broker's started aiokafka producer (FastStream 0.7's internals)."""
    producer = broker.config.broker_config.producer._producer.producer  # type: ignore[attr-defined]
    if not isinstance(producer, AIOKafkaProducer):
        raise RuntimeError("the Kafka producer is not started")
    return producer


async def bootstrap_probe(broker: KafkaBroker) -> None:
    """Connect to the cluster with the broker's settings and disconnect; raises what `broker.start()`
    would while the cluster is unreachable. For start-up (services.runtime.startup): a failed
    `broker.start()` leaves its producer unclosed (an error logged at each retry); this one is closed."""
    probe = AIOKafkaProducer(**broker._connection_kwargs)
    try:
        await probe.start()
    finally:
        await probe.stop()


def _sender_task(broker: KafkaBroker) -> asyncio.Task[None]:
    """The background task of the broker's started aiokafka producer that sends its batches."""
    task = started_producer(broker)._sender.sender_task
    if not isinstance(task, asyncio.Task):
        raise RuntimeError("the Kafka producer is not started")
    return task
