"""Where payments' books spill their idle lines: a table in payments' schema.

A spill is a book object's swap space (services/payments/domain/spill.py), not a store of record, so:
- each book object writes under its own `epoch` (a new UUID) and reads only its own rows: nothing it
  reads was written by anyone else, or by an earlier life of the book. A book thrown away (reloaded
  after a failed save, or its process closing) deletes its rows; what processes that died left is
  deleted when the service starts (`clear`, once it is the one writer, before it rebuilds its books),
  never by a running book — so a process that lost the writer lock and has not stopped yet cannot
  delete what the active one spilled, and a tool that rebuilds a book beside the service cannot either;
- the table is an ordinary (logged) one: a spilled part must outlive a PostgreSQL crash and restart,
  or a promotion of its standby, while the process that spilled it goes on (an UNLOGGED table is
  emptied by both). Should an epoch's rows be gone all the same, its first row (`MARKER`, written
  with the first save) is gone too, and `load` raises `SpillLost` rather than answer "never spilled":
  the application then reloads the book from its stream;
- rows are sealed with the event store's cipher (AES-GCM: a changed row fails to open and is never
  unpickled), and the names in keys (lines, which name beneficiaries) are keyed hashes, as in every
  other table that holds identity numbers at rest.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import uuid
from collections.abc import Collection
from typing import Any

import zstandard
from eventsourcing.persistence import Cipher, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

TABLE = "payments_spill"
MARKER = "epoch"  # a key no keyed hash can be (40 hex digits): present once the epoch has saved


class SpillLost(RuntimeError):
    """A book's spilled parts are no longer in the table: the book must be reloaded from its stream."""


class SpillFactory:
    """Makes each book object its spill (`PgSpill`), after creating the table if it is missing."""

    def __init__(self, recorder: Any, cipher: Cipher | None, key: bytes) -> None:
        assert isinstance(recorder, PostgresAggregateRecorder)
        assert cipher is not None, "event state is encrypted at rest (eventstore.CIPHER_TOPIC)"
        self._datastore = recorder.datastore
        self._cipher = cipher
        self._key = key
        self._create_table()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _create_table(self) -> None:
        statement = SQL(
            "CREATE TABLE IF NOT EXISTS {t} (scope text NOT NULL, epoch uuid NOT NULL, "
            "key text NOT NULL, state bytea NOT NULL, PRIMARY KEY (scope, epoch, key))"
        ).format(t=Identifier(self._datastore.schema, TABLE))
        with self._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(statement)

    def clear(self) -> None:
        """Delete every spilled row: only when the service starts as the one writer, before it makes
        any book."""
        with self._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(SQL("DELETE FROM {t}").format(t=Identifier(self._datastore.schema, TABLE)))

    def __call__(self, scope: str) -> PgSpill:
        return PgSpill(self._datastore, self._cipher, self._key, scope)


class PgSpill:
    """One book object's spill (the `Spill` of services/payments/domain/spill.py)."""

    def __init__(self, datastore: PostgresDatastore, cipher: Cipher, key: bytes, scope: str) -> None:
        self._datastore = datastore
        self._cipher = cipher
        self._key = key
        self.scope = scope
        self.epoch = uuid.uuid4()
        self._saved = False
        table = Identifier(datastore.schema, TABLE)
        self._select = SQL("SELECT key, state FROM {t} WHERE scope = %s AND epoch = %s AND key = ANY(%s)"
                           ).format(t=table)
        self._discard = SQL("DELETE FROM {t} WHERE scope = %s AND epoch = %s").format(t=table)
        self._upsert = SQL(
            "INSERT INTO {t} (scope, epoch, key, state) SELECT %s, %s, k, st "
            "FROM unnest(%s::text[], %s::bytea[]) AS x(k, st) "
            "ON CONFLICT (scope, epoch, key) DO UPDATE SET state = excluded.state"
        ).format(t=table)

    def _stored_key(self, kind: str, name: str) -> str:
        return hmac.new(self._key, f"spill\x1f{kind}\x1f{name}".encode(), hashlib.sha256).hexdigest()[:40]

    def load(self, kind: str, names: Collection[str]) -> dict[str, Any]:
        by_key = {self._stored_key(kind, name): name for name in names}
        with self._datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select, (self.scope, self.epoch, [*by_key, MARKER]))
            rows = curs.fetchall()
        if self._saved and not any(row["key"] == MARKER for row in rows):
            raise SpillLost(f"the spilled parts of {self.scope} (epoch {self.epoch}) are gone")
        return {by_key[row["key"]]: self._open(bytes(row["state"])) for row in rows if row["key"] != MARKER}

    def _open(self, sealed: bytes) -> Any:
        return pickle.loads(zstandard.decompress(self._cipher.decrypt(sealed)))  # authenticated first

    def save(self, items: list[tuple[str, str, Any]]) -> None:
        keys = [self._stored_key(kind, name) for kind, name, _ in items]
        states = [self._cipher.encrypt(zstandard.compress(pickle.dumps(value, pickle.HIGHEST_PROTOCOL), 1))
                  for _, _, value in items]
        if not self._saved:
            keys.append(MARKER)
            states.append(b"")
        with self._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(self._upsert, (self.scope, self.epoch, keys, states))
        self._saved = True

    def discard(self) -> None:
        with self._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(self._discard, (self.scope, self.epoch))
