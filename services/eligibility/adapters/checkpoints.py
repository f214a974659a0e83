"""Signed checkpoints of eligibility's ledger (docs/design/audit.md), published through the outbox.

`Checkpointer` folds the stored rows of the notification log it has not seen (every second) into the
Merkle tree (`services.eligibility.domain.checkpoint.LogTree`, over the rows as stored, ciphertext
included), and every `checkpoint_interval_s`, when the ledger grew since the last checkpoint, signs one
and records it as a `LedgerCheckpoints.Signed` event in the same event store (INSERT only, like every
event). `CheckpointRelay` follows the notification log and publishes each signed checkpoint to
flexledger.audit.checkpoints.v1: at least once, in order, and never from a request handler.

Commit order is notification-id order (inserts are serialised), so once a row with id N is read no
row with a smaller id can appear later: a checkpoint up to N is final.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic
from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import CheckpointV1
from services.eligibility.aggregates import LedgerCheckpoints, checkpoints_id
from services.eligibility.domain.checkpoint import (
    DIGEST_ALGORITHM,
    LogTree,
    checkpoint_content,
    key_id,
    public_key_b64,
    sign,
)
from services.eligibility.domain.merkle import Frontier
from services.runtime.eventstore import ServiceApplication
from services.runtime.keys import signing_key
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import Outgoing, publish_batch
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

LEDGER = "eligibility"
EVENT_TYPE = "flexledger.audit.checkpoint.v1"
SOURCE = "/flexledger/eligibility"
READ_BATCH = 1000
FOLD_INTERVAL_S = 1.0
CHECKPOINT_TOPICS = frozenset({get_topic(LedgerCheckpoints.Started), get_topic(LedgerCheckpoints.Signed)})


class Checkpointer:
    """Signs a checkpoint of the ledger when it grew; one `step` at a time (synchronous: run it in a
    thread)."""

    def __init__(self, app: ServiceApplication, settings: Settings, ledger: str = LEDGER) -> None:
        self.app = app
        self.ledger = ledger
        self.interval_s = max(1, settings.checkpoint_interval_s)
        self._seed = signing_key(settings)
        self.public_key = public_key_b64(self._seed)
        self.key_id = key_id(self.public_key)
        self._log: LogTree | None = None
        self._checkpoints: LedgerCheckpoints | None = None
        self._grew = False  # rows other than checkpoints were folded in since the last checkpoint
        self.started_at = time.time()  # epoch seconds
        self.last_signed_at: float | None = None  # epoch seconds of the last checkpoint, once known

    def _restart(self) -> None:
        """Resume from the last recorded checkpoint's tree (its frontier); after a checkpoint signed
        before the tree, build the tree again from the first row (once)."""
        found: LedgerCheckpoints | None
        try:
            stored: Any = self.app.repository.get(checkpoints_id(self.ledger))
        except AggregateNotFoundError:
            found = None
        else:
            assert isinstance(stored, LedgerCheckpoints)
            found = stored
        self._checkpoints = found
        self._log = LogTree()
        if found is not None:
            self.last_signed_at = found.modified_on.timestamp()
            if found.digest_algorithm == DIGEST_ALGORITHM and found.frontier is not None:
                self._log = LogTree(Frontier.from_hex(found.event_count, found.frontier), found.up_to)
        self._grew = False

    def _fold_new_rows(self) -> LogTree:
        if self._log is None:
            self._restart()
        assert self._log is not None
        while True:
            rows = self.app.recorder.select_notifications(
                start=self._log.up_to, limit=READ_BATCH, inclusive_of_start=False
            )
            for row in rows:
                self._log.add(row.id, str(row.originator_id), row.originator_version, row.topic, row.state)
                self._grew = self._grew or row.topic not in CHECKPOINT_TOPICS
            if len(rows) < READ_BATCH:
                return self._log

    def step(self, now: datetime | None = None) -> dict[str, Any] | None:
        """Sign and record a checkpoint if the ledger grew since the last one; return its content."""
        digest = self._fold_new_rows()
        if not self._grew or digest.count == 0:
            return None
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        content = checkpoint_content(
            ledger=self.ledger,
            up_to_notification_id=digest.up_to,
            event_count=digest.count,
            digest=digest.digest,
            signed_at=moment.isoformat(),
            key=self.key_id,
        )
        checkpoints = self._checkpoints or LedgerCheckpoints.start(self.ledger)
        signature = sign(self._seed, content)
        checkpoints.sign(**{k: v for k, v in content.items() if k != "ledger"}, signature=signature,
                         frontier=digest.frontier.hex_nodes())
        try:
            self.app.record(checkpoints)
        except IntegrityError:
            # Another instance signed meanwhile: start again from its checkpoint next time.
            self._log = None
            return None
        except BaseException:
            self._log = None
            raise
        self._checkpoints = checkpoints
        self._grew = False
        self.last_signed_at = moment.timestamp()
        return {**content, "signature": signature}

    def age_s(self) -> float:
        """Seconds since the last checkpoint (since the start while none is known)."""
        return time.time() - (self.last_signed_at or self.started_at)

    def overdue(self, limit_s: float) -> str | None:
        """A health reason when the ledger grew and no checkpoint was signed for `limit_s` seconds (counted
        from this process's start at the earliest: a restart is not overdue for the downtime)."""
        age_s = time.time() - max(self.started_at, self.last_signed_at or 0.0)
        if self._grew and age_s > limit_s:
            return f"checkpoint overdue: none signed for {age_s:.0f} s while the ledger grew"
        return None

    async def run(self, on_signed: Callable[[], None] | None = None) -> None:
        """Fold new rows every second, sign every interval (errors are logged; the next interval tries
        again). Folding as the rows come spreads the hashing evenly: folded once a minute, a busy
        minute's rows held the interpreter for seconds and stalled the consumer behind it."""
        loop = asyncio.get_running_loop()
        sign_at = loop.time() + self.interval_s
        while True:
            await asyncio.sleep(FOLD_INTERVAL_S)
            signing = loop.time() >= sign_at
            try:
                if not signing:
                    await asyncio.to_thread(self._fold_new_rows)
                    continue
                sign_at = loop.time() + self.interval_s
                signed = await asyncio.to_thread(self.step)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checkpointing failed; trying again in %ds", FOLD_INTERVAL_S)
                self._log = None
                continue
            if signed is not None:
                log.info(
                    "checkpoint signed: %d events up to notification %d (key %s)",
                    signed["event_count"],
                    signed["up_to_notification_id"],
                    signed["key_id"],
                )
                if on_signed is not None:
                    on_signed()


def to_message(stored: object) -> Outgoing | None:
    """The checkpoints-topic message of a stored checkpoint (None for other events)."""
    if not isinstance(stored, LedgerCheckpoints.Signed):
        return None
    body = CheckpointV1(
        ledger=stored.ledger, book=None,
        up_to_notification_id=stored.up_to_notification_id,
        event_count=stored.event_count,
        digest=stored.digest,
        digest_algorithm=stored.digest_algorithm,
        signed_at=stored.signed_at,
        key_id=stored.key_id,
        signature=stored.signature,
    )
    event = CloudEvent(
        id=f"{stored.ledger}-{stored.up_to_notification_id}",
        source=SOURCE,
        type=EVENT_TYPE,
        subject=f"{stored.ledger}/{stored.up_to_notification_id}",
        time=datetime.fromisoformat(stored.signed_at),
    )
    return Outgoing(body=body, key=stored.ledger, event=event)


class CheckpointRelay:
    def __init__(self, publisher: DefaultPublisher, tracer: trace.Tracer) -> None:
        self.publisher = publisher
        self.tracer = tracer

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch if (m := to_message(stored)) is not None]
        if outgoing:
            await publish_batch(self.tracer, self.publisher, outgoing)
