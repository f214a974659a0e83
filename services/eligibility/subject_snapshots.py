"""Subject snapshots (issue 15.1, docs/design/scale.md): a subject's state as it stood after version v
of its decision chain, so that loading a subject that is not in memory reads one snapshot and the
chain's events after v (a short tail) instead of the whole chain.

A snapshot is a cache of what the chain says, never a source of it:
- it is written only after the events it covers are committed, and a newer one replaces an older one
  (two instances may both write; any snapshot at version v is the state after events 1..v);
- it is ignored when other code wrote it: `FORMAT` is a digest of the source files that decide what a
  state holds, so a changed rule or class invalidates every snapshot, and the subject is rebuilt from
  its chain as before (also when a snapshot cannot be read for any other reason);
- it is pickled (the rule set by its id, so every state shares the one in force), compressed and
  sealed with the event store's cipher (AES-GCM): a row changed by anyone without the key fails to
  open, so only what this service sealed is ever unpickled.

The table is not an event table (its rows are replaced) and ends in neither `_events` nor `_snapshots`
(deploy/postgres/roles.sql): the runtime role creates and maintains it, like the read models.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import uuid
import zlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Cipher, InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from services.eligibility.domain.ruleset import RuleSet, RuleSets

log = logging.getLogger(__name__)
TABLE = "eligibility_subject_states"
_ROOT = Path(__file__).resolve().parents[2]
# The code whose objects a snapshot holds: the eligibility domain, its aggregates, the fact models.
_SOURCES = sorted([*(_ROOT / "services" / "eligibility" / "domain").rglob("*.py"),
                   _ROOT / "services" / "eligibility" / "aggregates.py", _ROOT / "contracts" / "facts.py"])
FORMAT = hashlib.sha256(b"".join(path.read_bytes() for path in _SOURCES)).hexdigest()[:32]


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> Any:
        return ("rule_set", obj.id) if isinstance(obj, RuleSet) else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, rule_sets: RuleSets) -> None:
        super().__init__(io.BytesIO(data))
        self.rule_sets = rule_sets

    def persistent_load(self, pid: Any) -> Any:
        kind, rule_set_id = pid
        assert kind == "rule_set"
        return self.rule_sets.by_id(rule_set_id)


def pack(state: Any) -> bytes:
    """A state as a snapshot's bytes before sealing: pickled, the rule set by its id, and compressed.
    Also the compact form the subject cache keeps in memory (`subject_cache`)."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=5).dump(state)
    return zlib.compress(buffer.getvalue(), 1)


def unpack(packed: bytes, rule_sets: RuleSets) -> Any:
    return _Unpickler(zlib.decompress(packed), rule_sets).load()


class SnapshotStore:
    """The latest snapshot of each subject, by chain id, in eligibility's schema."""

    def __init__(self, datastore: PostgresDatastore, cipher: Cipher, rule_sets: RuleSets) -> None:
        self.datastore = datastore
        self.cipher = cipher
        self.rule_sets = rule_sets
        table = Identifier(datastore.schema, TABLE)
        self._create = SQL(
            "CREATE TABLE IF NOT EXISTS {t} (chain_id uuid PRIMARY KEY, version bigint NOT NULL, "
            "format text NOT NULL, state bytea NOT NULL)"
        ).format(t=table)
        self._select = SQL("SELECT chain_id, version, state FROM {t} WHERE chain_id = ANY(%s) AND format = %s"
                           ).format(t=table)
        self._upsert = SQL(
            "INSERT INTO {t} AS s (chain_id, version, format, state) "
            "SELECT id, v, %s, st FROM unnest(%s::uuid[], %s::bigint[], %s::bytea[]) AS x(id, v, st) "
            "ON CONFLICT (chain_id) DO UPDATE SET version = excluded.version, format = excluded.format, "
            "state = excluded.state WHERE s.version < excluded.version OR s.format <> excluded.format"
        ).format(t=table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def create_table(self) -> None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(self._create)

    def load(self, chain_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, Any]]:
        """The snapshots of these chains that this code can read: chain id -> (version, state)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select, (list(chain_ids), FORMAT))
            rows = curs.fetchall()
        found: dict[uuid.UUID, tuple[int, Any]] = {}
        for row in rows:
            try:
                state = unpack(self.cipher.decrypt(bytes(row["state"])), self.rule_sets)
            except Exception:  # unreadable: the chain's events say the same, read them all
                log.warning("subject snapshot %s unreadable; rebuilding the subject from its chain",
                            row["chain_id"], exc_info=True)
                continue
            found[row["chain_id"]] = (row["version"], state)
        return found

    def save(self, snapshots: Sequence[tuple[uuid.UUID, int, bytes]]) -> None:
        """Keep these (chain id, version, packed state: `pack`), each unless a newer one is kept. Only
        states whose events up to `version` are committed may be given."""
        sealed = [self.cipher.encrypt(packed) for _, _, packed in snapshots]
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(self._upsert, (FORMAT, [chain_id for chain_id, _, _ in snapshots],
                                        [version for _, version, _ in snapshots], sealed))
