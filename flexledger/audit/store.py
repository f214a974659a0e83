"""Reading a service's event table itself, row by row, and decrypting it the way eventsourcing does.

The auditor reads the rows as stored (not through the services, not through the read tables), so
that what it checks is what PostgreSQL holds: a row whose bytes were changed either fails to decrypt
(AES-GCM authenticates the ciphertext) or decodes to content the hash chain refutes; either way it is
reported as tampering (`Undecodable`), never a crash.

`audit verify` reads every row of the ledger, so this is its hot path: rows are fetched in large pages
with asyncpg (its C row decoding is ~10x cheaper than psycopg's pure-Python one installed here), and
state is decrypted and decoded without eventsourcing's per-event objects (same format, same result).
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import asyncpg
import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex
from eventsourcing.utils import get_topic
from pydantic_core import from_json

from contracts.identifiers import mask
from services.eligibility.aggregates import DecisionChain, LedgerCheckpoints
from services.runtime.eventstore import CIPHER_TOPIC, cipher_key, keyed_uuid, pseudonym_key
from services.runtime.settings import Settings

SERVICE_SCHEMAS = ("intake", "eligibility", "payments")
OPENED = get_topic(DecisionChain.Opened)
PROCESSED = get_topic(DecisionChain.FactProcessed)
CHECKPOINT_STARTED = get_topic(LedgerCheckpoints.Started)
CHECKPOINT_SIGNED = get_topic(LedgerCheckpoints.Signed)
READ_BATCH = 10_000
assert CIPHER_TOPIC.endswith("AESCipher")
_JSON = json.JSONDecoder()
_TYPED = b'"_type_"'  # how eventsourcing's JSONTranscoder marks a transcoded value (ensure_ascii=False)


class Row(NamedTuple):
    """One stored event, as the events table holds it."""

    notification_id: int
    originator_id: str
    version: int
    topic: str
    state: bytes


class Undecodable(ValueError):
    """A stored row that cannot be decrypted or decoded: its bytes were altered."""


def loads(text: bytes) -> Any:
    """What `json.loads` returns, parsed by pydantic_core's Rust parser (~1.7x faster on events).
    What it refuses and json accepts (a lone surrogate escape) is left to json, which also raises
    json's own errors."""
    try:
        return from_json(text)
    except ValueError:
        return _JSON.decode(text.decode("utf-8"))


class Decoder:
    """Decrypts and decodes stored event state: AES-GCM as eventsourcing's `AESCipher` stores it
    (nonce 12 bytes | tag 16 bytes | ciphertext), then eventsourcing's JSON transcoding."""

    def __init__(self, settings: Settings) -> None:
        self.aesgcm = AESGCM(base64.b64decode(cipher_key(settings)))  # raises on a bad key size
        self.transcoder = JSONTranscoder()
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self.transcoder.register(transcoding)

    def decrypt(self, stored: bytes) -> bytes:
        if len(stored) < 28:
            raise ValueError("Damaged cipher text: too short for nonce and tag")
        try:
            return self.aesgcm.decrypt(stored[:12], stored[28:] + stored[12:28], None)
        except InvalidTag:
            raise ValueError("Invalid cipher tag") from None

    def transcoded(self, plaintext: bytes) -> Any:
        """What `JSONTranscoder.decode` returns, without its object hook (a Python call per dict): the
        transcoded values at the top level (an event's timestamp, first) are converted afterwards; a
        state with transcoded values deeper down is decoded the library's way."""
        state = loads(plaintext)
        marks = plaintext.count(_TYPED)
        if marks and isinstance(state, dict):
            for name, value in state.items():  # the timestamp comes first: usually one step
                if isinstance(value, dict) and len(value) == 2 and "_type_" in value and "_data_" in value:
                    transcoding = self.transcoder.names.get(value["_type_"])
                    if transcoding is None:
                        break
                    state[name] = transcoding.decode(value["_data_"])
                    marks -= 1
                    if not marks:
                        break
        return state if not marks else self.transcoder.decode(plaintext)

    def decode(self, row: Row) -> dict[str, Any]:
        try:
            state = self.transcoded(self.decrypt(row.state))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise Undecodable(f"cannot be decrypted or decoded ({exc})") from None
        if not isinstance(state, dict):
            raise Undecodable("does not decode to an event")
        return state


_COLUMNS = "notification_id, originator_id::text, originator_version, topic"


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

    def rows(
        self, after: int = 0, topic: str | None = None, *, up_to: int | None = None,
        part: tuple[int, int] | None = None, hashed: bool = False,
    ) -> Iterator[Row]:
        """Every row after notification id `after` (and up to `up_to`), in notification order, fetched a
        page at a time. `topic`: only rows of that topic. `part` = (k, n): only the rows of the streams
        in part k of n (the k-th of n equal ranges of stream ids: keyed ids are uniform), so that n
        processes can share a table's streams. `hashed`: each row's state is the SHA-256 of the stored
        state, as PostgreSQL computes it. Runs its own event loop: call it from synchronous code."""
        conditions = ["notification_id > $1"]
        args: list[Any] = [after, READ_BATCH]
        if topic is not None:
            args.append(topic)
            conditions.append(f"topic = ${len(args)}")
        if up_to is not None:
            args.append(up_to)
            conditions.append(f"notification_id <= ${len(args)}")
        if part is not None:
            conditions += _part_conditions(part, args)
        query = (
            f"SELECT {_COLUMNS}{', sha256(state)' if hashed else ', state'} FROM {self.table} e "
            f"WHERE {' AND '.join(conditions)} "
            "ORDER BY notification_id LIMIT $2"
        )

        def next_page(last: Row) -> None:
            args[0] = last.notification_id

        return self._pages(query, args, next_page)

    def rows_by_stream(self, part: tuple[int, int] | None = None) -> Iterator[Row]:
        """Every row, stream after stream (in stream-id order), each stream's rows in version order (the
        primary key's order): a reader holds one stream's state at a time, however many streams the
        log has. `part` as in `rows`. Runs its own event loop: call it from synchronous code."""
        conditions = ["(e.originator_id, e.originator_version) > ($1::text::uuid, $2)"]
        args: list[Any] = [str(_part_range(*part)[0] if part else uuid.UUID(int=0)), 0, READ_BATCH]
        if part is not None:
            conditions += _part_conditions(part, args)
        # Each page an index range scan of the primary key: ordered by the table's columns (a bare
        # `originator_id` would be the selected text, which no index holds: every page then sorted the
        # rest of the table), its part a range of ids (the planner estimates a range, not a hash).
        query = (
            f"SELECT {_COLUMNS}, state FROM {self.table} e WHERE {' AND '.join(conditions)} "
            "ORDER BY e.originator_id, e.originator_version LIMIT $3"
        )

        def next_page(last: Row) -> None:
            args[0], args[1] = last.originator_id, last.version

        return self._pages(query, args, next_page)

    def _pages(self, query: str, args: list[Any], next_page: Callable[[Row], None]) -> Iterator[Row]:
        """The rows of `query`, a page of READ_BATCH at a time; `next_page(last row)` moves `args` on."""
        loop = asyncio.new_event_loop()
        try:
            conn = loop.run_until_complete(_connect(self.settings))
            try:
                while True:
                    batch = [Row._make(r) for r in loop.run_until_complete(_fetch(conn, query, *args))]
                    yield from batch
                    if len(batch) < READ_BATCH:
                        return
                    next_page(batch[-1])
            finally:
                loop.run_until_complete(conn.close())
        finally:
            loop.close()

    def stream(self, originator_id: uuid.UUID | str) -> list[Row]:
        """Every row of one aggregate, in version order."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                f"FROM {self.table} WHERE originator_id = %s ORDER BY originator_version",
                (str(originator_id),),
            ).fetchall()
        return [Row(int(n), str(oid), int(v), str(t), bytes(s)) for n, oid, v, t, s in found]


def _part_range(k: int, n: int) -> tuple[uuid.UUID, uuid.UUID | None]:
    """The stream ids of part k of n: from the first id (inclusive) to the next part's (None: the end)."""
    if not 0 <= k < n:
        raise ValueError(f"no part {k} of {n}")
    ids = 1 << 128
    return uuid.UUID(int=k * ids // n), (uuid.UUID(int=(k + 1) * ids // n) if k + 1 < n else None)


def _part_conditions(part: tuple[int, int], args: list[Any]) -> list[str]:
    """The conditions (on the table's `e.originator_id`) that select part k of n, their ids added to
    `args`."""
    low, high = _part_range(*part)
    args.append(str(low))
    conditions = [f"e.originator_id >= ${len(args)}::text::uuid"]
    if high is not None:
        args.append(str(high))
        conditions.append(f"e.originator_id < ${len(args)}::text::uuid")
    return conditions


# asyncpg's errors are raised as psycopg's, which every audit command already reports ("cannot read
# the ledger"), so that the driver used for bulk reads stays this module's business.
_READ_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def _connect(settings: Settings) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(settings.pg_dsn(), timeout=10)
    except _READ_ERRORS as exc:
        raise psycopg.OperationalError(f"cannot connect: {exc}") from exc


async def _fetch(conn: asyncpg.Connection, query: str, *args: Any) -> list[Any]:
    try:
        return await conn.fetch(query, *args)
    except _READ_ERRORS as exc:
        raise psycopg.OperationalError(str(exc)) from exc


class StreamIds:
    """Keyed stream ids, the key derived once (it is read from the key file)."""

    def __init__(self, settings: Settings) -> None:
        self.key = pseudonym_key(settings)

    def __call__(self, book: str, subject: str) -> uuid.UUID:
        return keyed_uuid(self.key, "subject-ledger", book, subject)


def stream_id(settings: Settings, book: str, subject: str) -> uuid.UUID:
    """The id of a subject's decision chain (as services.eligibility.application's chain_id)."""
    return StreamIds(settings)(book, subject)


def masked(subject: str | None) -> str:
    """A subject as operators see it: identity numbers masked."""
    return str(mask(subject)) if subject else "-"


def where(row: Row, state: dict[str, Any] | None = None) -> str:
    """How a report names a stored event: notification id, stream (book/masked subject), version."""
    stream = f"stream {row.originator_id}"
    if state and state.get("book") is not None:
        stream += f" ({state['book']}/{masked(state.get('subject'))})"
    return f"notification {row.notification_id}, {stream}, version {row.version}"
