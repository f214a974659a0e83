"""Reading a service's event table itself, row by row, and decrypting it the way eventsourcing does.

The auditor reads the rows as stored (not through the services, not through the read tables), so
that what it checks is what PostgreSQL holds: a row whose bytes were changed either fails to decrypt
(AES-GCM authenticates the ciphertext) or decodes to content the hash chain refutes; either way it is
reported as tampering (`Undecodable`), never a crash.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from eventsourcing.utils import Environment, get_topic

from contracts.eventstore import CIPHER_TOPIC, cipher_key, keyed_uuid, pseudonym_key
from contracts.identifiers import mask
from contracts.settings import Settings
from services.eligibility.aggregates import LedgerCheckpoints, SubjectLedger

SERVICE_SCHEMAS = ("intake", "eligibility", "payments")
OPENED = get_topic(SubjectLedger.Opened)
PROCESSED = get_topic(SubjectLedger.FactProcessed)
CHECKPOINT_STARTED = get_topic(LedgerCheckpoints.Started)
CHECKPOINT_SIGNED = get_topic(LedgerCheckpoints.Signed)
READ_BATCH = 5000
assert CIPHER_TOPIC.endswith("AESCipher")


@dataclass(frozen=True, slots=True)
class Row:
    """One stored event, as the events table holds it."""

    notification_id: int
    originator_id: str
    version: int
    topic: str
    state: bytes


class Undecodable(ValueError):
    """A stored row that cannot be decrypted or decoded: its bytes were altered."""


class Decoder:
    """Decrypts and decodes stored event state (AES-GCM, then eventsourcing's JSON transcoding)."""

    def __init__(self, settings: Settings) -> None:
        self.cipher = AESCipher(Environment("audit", {AESCipher.CIPHER_KEY: cipher_key(settings)}))
        self.transcoder = JSONTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self.transcoder.register(transcoding)

    def decode(self, row: Row) -> dict[str, Any]:
        try:
            state = self.transcoder.decode(self.cipher.decrypt(row.state))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Undecodable(f"cannot be decrypted or decoded ({exc})") from None
        if not isinstance(state, dict):
            raise Undecodable("does not decode to an event")
        return state


class EventTable:
    """The events table of one service schema, read in notification-id order."""

    def __init__(self, settings: Settings, schema: str) -> None:
        if schema not in SERVICE_SCHEMAS:
            raise ValueError(f"unknown service schema {schema!r}")
        self.settings = settings
        self.schema = schema
        self.table = f'"{schema}"."{schema}_events"'

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.settings.pg_dsn(), connect_timeout=10)

    def exists(self) -> bool:
        with self._connect() as conn:
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,)).fetchone()
        return bool(found and found[0])

    def rows(self, after: int = 0, topic: str | None = None) -> Iterator[Row]:
        """Every row after notification id `after` (optionally of one topic), in notification order."""
        where = " AND topic = %s" if topic else ""
        with self._connect() as conn:
            while True:
                params: tuple[Any, ...] = (after, topic, READ_BATCH) if topic else (after, READ_BATCH)
                batch = conn.execute(
                    "SELECT notification_id, originator_id, originator_version, topic, state "
                    f"FROM {self.table} WHERE notification_id > %s{where} ORDER BY notification_id LIMIT %s",
                    params,
                ).fetchall()
                for n, oid, version, t, state in batch:
                    yield Row(int(n), str(oid), int(version), str(t), bytes(state))
                if len(batch) < READ_BATCH:
                    return
                after = int(batch[-1][0])

    def stream(self, originator_id: uuid.UUID | str) -> list[Row]:
        """Every row of one aggregate, in version order."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                f"FROM {self.table} WHERE originator_id = %s ORDER BY originator_version",
                (str(originator_id),),
            ).fetchall()
        return [Row(int(n), str(oid), int(v), str(t), bytes(s)) for n, oid, v, t, s in found]


def stream_id(settings: Settings, book: str, subject: str) -> uuid.UUID:
    """The id of a subject's ledger stream (as services.eligibility.application.ledger_id)."""
    return keyed_uuid(pseudonym_key(settings), "subject-ledger", book, subject)


def masked(subject: str | None) -> str:
    """A subject as operators see it: identity numbers masked."""
    return str(mask(subject)) if subject else "-"


def where(row: Row, state: dict[str, Any] | None = None) -> str:
    """How a report names a stored event: notification id, stream (book/masked subject), version."""
    stream = f"stream {row.originator_id}"
    if state and state.get("book") is not None:
        stream += f" ({state['book']}/{masked(state.get('subject'))})"
    return f"notification {row.notification_id}, {stream}, version {row.version}"
