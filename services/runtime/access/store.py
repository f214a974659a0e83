"""The access store: the API key ring and the read audit, in their own event store (schema `access`),
shared by the three services.

- `ApiKeyRing`: every key ever issued, as one stream of changes (issued, rotated, revoked) in the form
  of `credentials.event_to_dict` — key ids, roles and secret hashes, never a secret. One stream, so that
  the database's (id, version) uniqueness orders concurrent operator commands. Written by
  `flexledger keys` (as the owner role), folded by each service (`key_ring.KeyRingFollower`).
- `DataRead`: one event per read of personal data through HTTP (who, which endpoint, which book, whose
  data as keyed pseudonyms, when), written by the service that answered it (`audit.ReadAudit`). One
  aggregate per read (a random id), so concurrent reads in three services never conflict; the services'
  runtime role may INSERT into the events table, never UPDATE or DELETE it (docs/design/audit.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from services.runtime.access.credentials import KeyEvent, KeyRing, event_from_dict, event_to_dict
from services.runtime.eventstore import ServiceApplication

SCHEMA = "access"
ACCESS_NAMESPACE = uuid.UUID("5d1c2e7a-9b3f-5a41-8e60-2f4b7c9d1e03")
KEY_RING_ID = uuid.uuid5(ACCESS_NAMESPACE, "api-key-ring")
KEY_COMMAND_RETRIES = 5


class ApiKeyRing(Aggregate):
    """Every API key ever issued, as one stream of changes; `KeyRing.from_events` folds it."""

    class Opened(Aggregate.Created):
        pass

    class Changed(Aggregate.Event):
        change: dict[str, Any]

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, ApiKeyRing)
            aggregate.changes.append(self.change)

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []

    @classmethod
    def open(cls) -> ApiKeyRing:
        return cls._create(cls.Opened, id=KEY_RING_ID)

    def change(self, change: dict[str, Any]) -> None:
        self.trigger_event(self.Changed, change=change)


class DataRead(Aggregate):
    """One read of personal data: recorded before the answer leaves the service."""

    class Recorded(Aggregate.Created):
        key_id: str
        role: str
        enterprise: str | None
        service: str
        endpoint: str  # "GET /v1/books/{book}/decisions": the route, not the URL (no identity numbers)
        book: str
        view: str  # "all", "own" or "pseudonymised": what the caller was shown
        rows: int
        subjects: list[str]  # keyed pseudonyms of the identity numbers in the answer, sorted
        trace_id: str | None

    def __init__(self, **_: Any) -> None:
        pass


class AccessApplication(ServiceApplication):
    name = SCHEMA

    # ---- the key ring -----------------------------------------------------------------------------

    def key_changes(self, after_version: int = 0) -> list[tuple[int, KeyEvent]]:
        """The key ring's changes after `after_version` of its stream, with their versions."""
        return [(stored.originator_version, event_from_dict(stored.change))
                for stored in self.events.get(KEY_RING_ID, gt=after_version or None)
                if isinstance(stored, ApiKeyRing.Changed)]

    def key_ring(self) -> KeyRing:
        return KeyRing.from_events(event for _, event in self.key_changes())

    def change_keys(self, command: Callable[[KeyRing], KeyEvent]) -> KeyEvent:
        """Run an operator command (credentials.issue_key, rotate_key, revoke_key, partially applied)
        against the stored ring and store its event; KeyRingError when the command refuses. Concurrent
        commands are ordered by the stream's version: a conflict re-reads the ring and runs again."""
        for _ in range(KEY_COMMAND_RETRIES):
            try:
                stream: Any = self.repository.get(KEY_RING_ID)
            except AggregateNotFoundError:
                stream = ApiKeyRing.open()
            assert isinstance(stream, ApiKeyRing)
            ring = KeyRing.from_events(event_from_dict(change) for change in stream.changes)
            event = command(ring)
            stream.change(event_to_dict(event))
            try:
                self.record(stream)
            except IntegrityError:
                continue
            return event
        raise RuntimeError(f"the key ring kept changing under {KEY_COMMAND_RETRIES} attempts; try again")

    # ---- the read audit ---------------------------------------------------------------------------

    def record_read(self, **fields: Any) -> uuid.UUID:
        """Store one `DataRead` (fields as its `Recorded` event); its id."""
        read = DataRead._create(DataRead.Recorded, id=uuid.uuid4(), **fields)
        self.record(read)
        return read.id

    def reads(self, after: int = 0, page: int = 1000) -> Iterator[tuple[int, DataRead.Recorded]]:
        """The recorded reads after notification id `after`, in order, read `page` events at a time
        (for `flexledger keys reads` and tests)."""
        while True:
            found = self.notifications(after, page)
            for position, event in found:
                if isinstance(event, DataRead.Recorded):
                    yield position, event
            if len(found) < page:
                return
            after = found[-1][0]
