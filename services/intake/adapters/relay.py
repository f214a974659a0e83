"""The outbox relay: intake's notification log, published in recording order — submissions to the
facts topic of their book (production books on `flexledger.intake.facts.v1`, sandbox books on its
`sandbox.` twin), dead-lettered agency messages to the dead-letter topic; other events (the key ring)
are not published.

`Outbox` follows the log (a `LogFollower` with its own pool, opened at start), woken by every commit
(`ServiceRuntime.wake_followers`); `FactRelay` publishes each batch it reads.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC
from typing import Literal

from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import DeadLetterV1, FactMessageV1
from contracts.topics import FACTS
from services.intake.adapters.store import IntakeStore
from services.intake.aggregates import AGENCY_FEED_GROUP, DeadLetter, FactSubmission
from services.runtime.dead_letters import body_fields, dead_letter_outgoing
from services.runtime.outbox import Batch, Connection, LogFollower
from services.runtime.publishing import BookTopics, Outgoing, PartitionKeys, publish_batch
from services.runtime.service import ServiceRuntime

EVENT_TYPE = "flexledger.intake.fact.v1"
SOURCE = "/flexledger/intake"
_CLOUDEVENT_ID_NAMESPACE = uuid.UUID("a4f0b7a2-52c4-5d7e-8f43-1b8e0c9d6e21")
# Events the relay publishes per step (one read of the log, one wait for the broker, one position
# write): large enough that a bulk request goes out in a few steps, as a few large record batches.
RELAY_BATCH = 2000


def to_message(stored: object, keys: PartitionKeys) -> Outgoing | None:
    """The facts-topic message for a stored submission event (None for other events)."""
    outcome: Literal["accepted", "rejected"]
    if isinstance(stored, FactSubmission.Recorded):
        outcome = "accepted" if stored.outcome == "accepted" else "rejected"
    elif isinstance(stored, FactSubmission.ReuseRejected):
        outcome = "rejected"
    else:
        return None
    recorded_at = stored.timestamp.astimezone(UTC)
    body = FactMessageV1(
        book=stored.book, seq=stored.seq, fact_id=stored.fact_id, subject=stored.subject, outcome=outcome,
        fact=stored.fact, reason=stored.reason, digest=stored.digest, recorded_at=recorded_at,
        traceparent=stored.traceparent, tracestate=stored.tracestate,
    )
    event = CloudEvent(
        # The same submission always gets the same id, so a republished message is recognisable.
        id=_uuid5_text(_CLOUDEVENT_ID_NAMESPACE, f"{stored.book}/{stored.seq}"), source=SOURCE,
        type=EVENT_TYPE, subject=f"{stored.book}/{stored.seq}", time=recorded_at,
        traceparent=stored.traceparent, tracestate=stored.tracestate,
    )
    return Outgoing(body=body, key=keys(stored.book, stored.subject), event=event, book=stored.book)


def _uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))`, without building the UUID object (a quarter of the CPU; the
    relay makes one per message): SHA-1, then the version and variant bits, as RFC 4122 says."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = digest.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def to_dead_letter(stored: object) -> Outgoing | None:
    """The dead-letter-topic message for a stored dead letter (None for other events): the shared
    contract, with the body masked; the original bytes stay in the store. Its id is the stored dead
    letter's (uuid5 of the source position: intake has one consumer group)."""
    if not isinstance(stored, DeadLetter.Recorded):
        return None
    body = DeadLetterV1(
        dead_letter_id=str(stored.originator_id), service="intake", consumer_group=AGENCY_FEED_GROUP,
        source_topic=stored.source_topic, source_partition=stored.source_partition,
        source_offset=stored.source_offset, reason=stored.reason, status=stored.status, book=stored.book,
        fact_id=stored.fact_id, seq=stored.seq, agency=stored.agency,
        dead_lettered_at=stored.timestamp.astimezone(UTC),
        **body_fields(base64.b64decode(stored.body_b64), stored.body_bytes),
    )
    return dead_letter_outgoing(body, stored.traceparent, stored.tracestate)


class FactRelay:
    """Facts to their book's facts topic, keyed by a pseudonym of the subject and tagged with the facts
    key, so eligibility believes only what intake published; dead letters to intake's dead-letter topic."""

    def __init__(
        self, facts: BookTopics, tracer: trace.Tracer, keys: PartitionKeys, mac_key: bytes,
        dead_letters: DefaultPublisher | None = None,
    ) -> None:
        self.facts = facts
        self.dead_letters = dead_letters
        self.tracer = tracer
        self.keys = keys
        self.mac_key = mac_key

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch if (m := to_message(stored, self.keys)) is not None]
        letters = [m for _, stored in batch if (m := to_dead_letter(stored)) is not None]
        await self.facts.publish(self.tracer, outgoing, mac_key=self.mac_key)
        if letters:
            assert self.dead_letters is not None, "dead letters recorded but no dead-letter publisher"
            await publish_batch(self.tracer, self.dead_letters, letters)


class Outbox:
    """The relay's follower of intake's log, registered once the store is open."""

    def __init__(self, runtime: ServiceRuntime, store: IntakeStore, relay: FactRelay) -> None:
        self.runtime = runtime
        self.store = store
        self.relay = relay
        self.follower: LogFollower | None = None

    def position(self) -> int:
        """The last notification id published."""
        return self.follower.position if self.follower is not None else 0

    async def open(self) -> None:
        self.follower = self.runtime.follow(LogFollower(
            f"kafka:{FACTS.name}", self.store.app, self.store.pool, self.relay, batch_limit=RELAY_BATCH
        ))
