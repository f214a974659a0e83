"""The event-store plumbing every service shares: eventsourcing on PostgreSQL, configured from
`Settings` only, with event state encrypted at rest and Kafka positions recorded with the events.

- One PostgreSQL schema per service (created here before the application starts).
- `POSTGRES_ENABLE_DB_FUNCTIONS` is never set: in 9.5.6 it drops tracking records (see
  shared/notes/infrastructure.md). The process environment is not read at all, so it cannot leak in.
- AES-GCM (the `cryptography` package; `eventsourcing.cipher` would need pycryptodome) with the key
  from `Settings.cipher_key`, or in development a key generated once into `<state_dir>/cipher.key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProcessRecorder,
    Recording,
    StoredEvent,
    Tracking,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, retry
from opentelemetry import trace
from psycopg.sql import SQL, Identifier, Literal

from services.runtime.keys import state_key
from services.runtime.settings import Settings
from services.runtime.telemetry import get_tracer

# Events as committed: (notification id, event), in notification id order.
Committed = Sequence[tuple[int, DomainEventProtocol[uuid.UUID]]]

PERSISTENCE_TOPIC = "services.runtime.eventstore:ReadWritePostgresFactory"
CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"
PROCESS_RECORDER_TOPIC = "services.runtime.eventstore:ColumnArraysProcessRecorder"
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def cipher_key(settings: Settings) -> str:
    """The AES key: from settings, else `<state_dir>/cipher.key`, created once (race-free) if absent."""
    return state_key(settings, settings.cipher_key, "cipher.key")


def pseudonym_key(settings: Settings) -> bytes:
    """A key for keyed ids, derived from the cipher key, so ids of people cannot be brute-forced."""
    return hmac.new(base64.b64decode(cipher_key(settings)), b"flexledger/aggregate-ids", "sha256").digest()


def keyed_uuid(key: bytes, *parts: str) -> uuid.UUID:
    """A UUID (version 8, RFC 9562) from HMAC-SHA256 over the parts: stable, and opaque without the key."""
    digest = hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    value = (value & ~(0xF << 76)) | (0x8 << 76)  # version 8
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


class ReadWritePostgresFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory, whose connections accept writes. Its datastore passes host
    and port to libpq as they are, so several servers ("h1,h2" and "p1,p2") are tried in turn; it has no
    setting for `target_session_attrs`, which makes libpq skip a standby (read-only) and so follow a
    promoted one. The pool connects lazily: the parameter is in place before its first connection."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # eventsourcing gives its pool the connection's parameters
        kwargs["target_session_attrs"] = "read-write"


def eventsourcing_env(settings: Settings, schema: str) -> dict[str, str]:
    servers = settings.pg_servers
    return {
        "PERSISTENCE_MODULE": PERSISTENCE_TOPIC,
        "POSTGRES_DBNAME": settings.pg_database,
        "POSTGRES_HOST": ",".join(host for host, _ in servers),
        "POSTGRES_PORT": ",".join(str(port) for _, port in servers),
        "POSTGRES_USER": settings.pg_user,
        "POSTGRES_PASSWORD": settings.pg_password,
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_PRE_PING": "y",  # a restarted database must not hand us dead pooled connections
        "CIPHER_TOPIC": CIPHER_TOPIC,
        "PROCESS_RECORDER_TOPIC": PROCESS_RECORDER_TOPIC,
        "CIPHER_KEY": cipher_key(settings),
    }


def ensure_schema(settings: Settings, schema: str, tables: tuple[str, ...] = ("events", "tracking")) -> bool:
    """Create the schema if it is missing; return whether its event tables exist already.

    The schema is looked up first: the services' runtime role may not create schemas (nor event
    tables; see docs/design/audit.md), and `CREATE SCHEMA IF NOT EXISTS` checks that right first."""
    if not _SCHEMA.fullmatch(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    with psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is None:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        found = [
            conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{schema}_{table}"',)).fetchone()
            for table in tables
        ]
    return all(row and row[0] for row in found)


# Inserts into an events table are serialised (so that commit order is notification-id order, which
# the log followers rely on) by a transaction-scoped advisory lock on the table's name, in place of
# eventsourcing's `LOCK TABLE ... IN EXCLUSIVE MODE`: that statement needs UPDATE, DELETE or TRUNCATE
# on the table (PostgreSQL < 17), which the services' runtime role must not have. Every writer runs
# this code, so every writer takes the same lock. The two-key form never meets a one-key advisory lock
# (intake's writer lock).
INSERT_LOCK_CLASS = 0x466C_5845  # "FlXE"


def _serialise_inserts_with_advisory_lock(recorder: Any) -> None:
    statements = getattr(recorder, "lock_table_statements", None)
    if not statements:
        return
    table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
    recorder.lock_table_statements = [
        *statements[:-1],  # SET LOCAL lock_timeout
        SQL("SELECT pg_advisory_xact_lock({0}, hashtext({1}))").format(
            Literal(INSERT_LOCK_CLASS), Literal(table)
        ),
    ]


class ColumnArraysProcessRecorder(PostgresProcessRecorder):
    """eventsourcing's process recorder (9.5) with its `insert_events` done differently in two ways;
    the rows, the tracking record, the lock, the NOTIFY and RETURNING are unchanged:

    - the events go as four column arrays (`unnest(uuid[], bigint[], text[], bytea[])`, in binary)
      instead of one array of a composite type, which psycopg dumps in Python as text: a sixth of
      eligibility's CPU, and 1.3-1.6 s instead of 0.2 s for a 10,000-event bulk request in intake;
    - not in psycopg's pipeline mode: there, psycopg 3.3 (Python and C alike) may stop sending a query
      of a few megabytes half-way and wait for results that cannot come (psycopg issue #685; the
      server sits in ClientRead). Out of pipeline mode each statement is sent whole before its result
      is awaited: a few round trips more per transaction, nothing per row."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events",
                 tracking_table_name: str = "notification_tracking") -> None:
        super().__init__(datastore, events_table_name=events_table_name,
                         tracking_table_name=tracking_table_name)
        self.insert_events_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(events_table_name),
                 id_type=Identifier(datastore.originator_id_type))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the tracking record, if any
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self.insert_events_statement, (
            [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events],
        ))


# An optimistic write retries this often when another writer got to the stream first.
CONFLICT_RETRIES_MAX = 5


class ConcurrentWriters(RuntimeError):
    """A stream kept changing under us: another process writes to it."""


class ServiceApplication(Application[uuid.UUID]):
    """An eventsourcing application of one service, in its own schema.

    It records with a process recorder, so a Kafka position (`Tracking`) commits in the same
    transaction as the events it caused, and spans every commit made inside a trace (the commit-span
    rule: `services.runtime.batch_spans`)."""

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.tracer = get_tracer(tracer_provider, self.name)
        snapshots = type(self).is_snapshotting_enabled or bool(type(self).snapshotting_intervals)
        tables = ("events", "tracking", "snapshots") if snapshots else ("events", "tracking")
        provisioned = ensure_schema(settings, self.name, tables)
        if not provisioned and settings.is_app_role:
            # The runtime role must never create (and so own) event tables: it could then alter them.
            raise RuntimeError(
                f"the event tables of schema {self.name!r} do not exist; the owner role creates them: "
                "`flexledger admin db-roles` (docs/design/audit.md)"
            )
        env = eventsourcing_env(settings, self.name)
        # Tables are created only when missing: creating (even IF NOT EXISTS) needs their owner's rights.
        env["CREATE_TABLE"] = "n" if provisioned else "y"
        self._recorded_listeners: list[Callable[[Committed], None]] = []
        super().__init__(env=env)

    def construct_env(self, name: str, env: Any = None) -> Environment:
        # Settings are the only source of configuration: the process environment is ignored.
        return Environment(name, dict(env or {}))

    def construct_recorder(self) -> ProcessRecorder:
        recorder = self.factory.process_recorder()
        _serialise_inserts_with_advisory_lock(recorder)
        return recorder

    @property
    def process_recorder(self) -> ProcessRecorder:
        assert isinstance(self.recorder, ProcessRecorder)
        return self.recorder

    def _record(self, processing_event: ProcessingEvent[uuid.UUID]) -> list[Recording[uuid.UUID]]:
        """Commit, spanned `<name> db commit` as a child of the current span. Every commit passes here,
        so work done inside one trace needs nothing more; a consumed batch runs with no span current
        (its commit is for many traces) and spans its commit in each (`batch_spans.ConsumedBatch`).
        Once committed, the events and their notification ids go to `on_recorded`'s listeners."""
        if not trace.get_current_span().is_recording():
            recordings = super()._record(processing_event)
        else:
            with self.tracer.start_as_current_span(
                f"{self.name} db commit",
                attributes={"db.system": "postgresql", "db.namespace": self.name,
                            "flexledger.events": len(processing_event.events)},
            ):
                recordings = super()._record(processing_event)
        if recordings and self._recorded_listeners:
            committed = [(r.notification.id, r.domain_event) for r in recordings]
            for listener in self._recorded_listeners:
                listener(committed)
        return recordings

    def on_recorded(self, listener: Callable[[Committed], None]) -> None:
        """Call `listener` with (notification id, event) of every commit of this process, in the
        committing thread, after the commit: the notification log's readers take them from memory
        instead of reading back and decrypting what was just written (`outbox.NotificationReader`)."""
        self._recorded_listeners.append(listener)

    def record(
        self, *objs: MutableOrImmutableAggregate[uuid.UUID] | DomainEventProtocol[uuid.UUID] | None,
        tracking: Tracking | None = None,
    ) -> list[Recording[uuid.UUID]]:
        """Save the pending events of `objs` and the consumed position `tracking` in one transaction."""
        processing_event: ProcessingEvent[uuid.UUID] = ProcessingEvent(tracking)
        for obj in objs:
            # Aggregates directly: `collect_events` tells them from events by runtime-checked Protocols,
            # an isinstance that cost a tenth of eligibility's CPU (one per stream of a batch).
            if isinstance(obj, BaseAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        return self._record(processing_event)

    def already_tracked(self, tracking: Tracking) -> bool:
        """After an IntegrityError: True if it was this position that was already recorded (a
        redelivery), False if it was something else (an aggregate version conflict)."""
        return self.process_recorder.has_tracking_id(tracking.application_name, tracking.notification_id)

    def events_of(
        self, ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[DomainEventProtocol[uuid.UUID]]]:
        """The stored events of many aggregates, in version order, in one query (`self.events.get`
        costs a query per aggregate). Aggregates with no events are absent."""
        return self.events_after(dict.fromkeys(ids, 0))

    def events_after(
        self, versions: Mapping[uuid.UUID, int]
    ) -> dict[uuid.UUID, list[DomainEventProtocol[uuid.UUID]]]:
        """The stored events of each aggregate after its given version, in version order, in one
        query. Aggregates with no such events are absent."""
        recorder = self.recorder
        assert isinstance(recorder, PostgresAggregateRecorder)
        statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, after) JOIN {schema}.{table} e "
            "ON e.originator_id = w.id AND e.originator_version > w.after "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
        found: dict[uuid.UUID, list[DomainEventProtocol[uuid.UUID]]] = {}
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(versions), list(versions.values())))
            for row in curs.fetchall():
                stored = StoredEvent(originator_id=row["originator_id"],
                                     originator_version=row["originator_version"],
                                     topic=row["topic"], state=bytes(row["state"]))
                found.setdefault(row["originator_id"], []).append(self.mapper.to_domain_event(stored))
        return found

    def notifications(self, after: int, limit: int) -> Sequence[tuple[int, DomainEventProtocol[uuid.UUID]]]:
        """Up to `limit` (notification id, decrypted event) pairs after notification id `after`."""
        found = self.recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)
        return [(n.id, self.mapper.to_domain_event(n)) for n in found]


def kafka_tracking(topic: str, partition: int, offset: int) -> Tracking:
    return Tracking(application_name=f"kafka:{topic}:{partition}", notification_id=offset)


__all__ = [
    "IntegrityError",
    "ServiceApplication",
    "cipher_key",
    "ensure_schema",
    "eventsourcing_env",
    "kafka_tracking",
    "keyed_uuid",
    "pseudonym_key",
]
