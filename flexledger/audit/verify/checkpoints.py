"""Step 4 of `audit verify`: the signed checkpoints. Each one's signature verifies with the public key
(`checkpoint.check`), and the digest of the stored rows up to it still equals the signed one (count
and digest): any row altered, deleted or inserted up to it is caught, and named by the range since the
last checkpoint that still matches.

The digest is eligibility's own (`services/eligibility/domain/checkpoint.py`): the Merkle tree head
(`merkle.py`; checkpoints signed before the tree: the running digest, `next_digest`), folded from each
row's entry hash, itself from the row's state hash as PostgreSQL computes it (`sha256(state)`): the
pass fetches 32 bytes a row instead of the row. The checkpoints held to the ledger are those it
recorded and those given as published (the topic's copy): deleting recorded checkpoints then hides
nothing. Every checkpoint's tree head is recomputed from the one sequence of stored rows, so a
checkpoint that matches is a prefix of every later one that matches: each is consistent with its
predecessor (a consistency proof between them would show the same thing, from fewer hashes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flexledger.audit.store import CHECKPOINT_SIGNED, Decoder, EventTable, Row, Undecodable, where
from flexledger.audit.verify.report import CHECKPOINTS, Problem, Report
from services.eligibility.domain.checkpoint import (
    GENESIS,
    RUNNING_DIGEST,
    check,
    entry_hash,
    next_digest,
)
from services.eligibility.domain.merkle import Frontier, leaf_hash

_NO_MORE_MARKS = 2**63
_UUID_TEXT_LENGTH = 36


@dataclass
class _Checkpoint:
    label: str  # how a report names it
    content: dict[str, Any]

    @property
    def up_to(self) -> int:
        return int(self.content["up_to_notification_id"])


class Digests:
    """The digests of the stored rows, fed in notification order each row with its state's SHA-256 as
    `row.state`, remembered at each checkpoint's notification id (`at`: tree root, count; `running_at`:
    the running digest, folded only as far as a checkpoint signed with it needs)."""

    def __init__(self, marks: Sequence[int], running_marks: Sequence[int] = ()) -> None:
        self.tree = Frontier()
        self.value = bytes.fromhex(GENESIS)
        self.marks = sorted(set(marks))
        self.running_until = max(running_marks, default=0)
        self.at: dict[int, tuple[str, int]] = {}
        self.running_at: dict[int, str] = {}
        self._next = 0
        self._next_mark = self.marks[0] if self.marks else _NO_MORE_MARKS
        self._topics: dict[str, str] = {}  # topic -> its JSON string

    @property
    def count(self) -> int:
        return self.tree.size

    def _settle(self, before: int) -> None:
        """Remember the digests at every mark before notification id `before`."""
        while self._next < len(self.marks) and self.marks[self._next] < before:
            mark = self.marks[self._next]
            self.at[mark] = (self.tree.root().hex(), self.tree.size)
            if mark <= self.running_until:
                self.running_at[mark] = self.value.hex()
            self._next += 1
        self._next_mark = self.marks[self._next] if self._next < len(self.marks) else _NO_MORE_MARKS

    def add(self, row: Row) -> None:
        if row.notification_id > self._next_mark:
            self._settle(row.notification_id)
        entry = self._entry(row)
        self.tree.append(leaf_hash(entry))
        if row.notification_id <= self.running_until:
            self.value = next_digest(self.value, entry)

    def _entry(self, row: Row) -> bytes:
        """`checkpoint.entry_hash` of the row, its canonical JSON written directly (2-3x cheaper than the
        encoder, once a row over the whole log): the integers and the stream id's text (a UUID as
        PostgreSQL writes it) need no escaping, and each topic is encoded once. A unit test holds the two
        equal."""
        topic = self._topics.get(row.topic)
        if topic is None:
            topic = self._topics[row.topic] = json.dumps(row.topic, ensure_ascii=False)
        if len(row.originator_id) != _UUID_TEXT_LENGTH:
            return entry_hash(row.notification_id, row.originator_id, row.version, row.topic, row.state)
        text = f'[{row.notification_id},"{row.originator_id}",{row.version},{topic},"{row.state.hex()}"]'
        return hashlib.sha256(text.encode()).digest()

    def finish(self) -> None:
        self._settle(_NO_MORE_MARKS)

    def digest_at(self, up_to: int, algorithm: str) -> tuple[str | None, int]:
        """The digest by `algorithm` and the count of the rows up to notification id `up_to`."""
        root, count = self.at.get(up_to, (None, 0))
        if algorithm == RUNNING_DIGEST:
            return self.running_at.get(up_to), count
        return root, count


def check_checkpoints(
    table: EventTable, decoder: Decoder, public_key: str, published: list[dict[str, Any]], report: Report
) -> None:
    """Step 4: each checkpoint's signature, and the running digest of every stored row up to it."""
    checkpoints = _signed(table, decoder, public_key, published, report)
    running = [cp.up_to for cp in checkpoints if cp.content["digest_algorithm"] == RUNNING_DIGEST]
    digests = Digests([cp.up_to for cp in checkpoints], running)
    for row in table.rows(up_to=max(digests.marks, default=0), hashed=True):
        digests.add(row)
    digests.finish()
    for cp in checkpoints:
        digest, count = digests.digest_at(cp.up_to, cp.content["digest_algorithm"])
        report.counts["checkpoints"] += 1
        if digest != cp.content["digest"] or count != int(cp.content["event_count"]):
            report.add(_no_longer_matches(cp, count, checkpoints, digests))
    if not checkpoints:
        report.notes.append(
            "no signed checkpoint yet: tampering before the first checkpoint is caught only by "
            "the hash chains"
        )


def _signed(
    table: EventTable, decoder: Decoder, public_key: str, published: list[dict[str, Any]], report: Report
) -> list[_Checkpoint]:
    """The checkpoints recorded in the ledger, and those given as published, each with a valid
    signature (once each); problems for the others."""
    candidates = _recorded(table, decoder, report)
    candidates += [_Checkpoint("published checkpoint", dict(c)) for c in published]
    found, seen = [], set()
    for cp in candidates:
        up_to = cp.content.get("up_to_notification_id")
        problems = check(public_key, cp.content)
        if problems:
            report.add(
                Problem(
                    cp.label,
                    f"checkpoint up to notification {up_to}: " + "; ".join(problems),
                    (CHECKPOINTS, int(up_to or 0)),
                )
            )
            continue
        if (up_to, cp.content["signature"]) not in seen:
            seen.add((up_to, cp.content["signature"]))
            found.append(cp)
    return found


def _recorded(table: EventTable, decoder: Decoder, report: Report) -> list[_Checkpoint]:
    """The checkpoints the ledger recorded; a problem for each that does not decode."""
    recorded: list[_Checkpoint] = []
    for row in table.rows(topic=CHECKPOINT_SIGNED):
        try:
            recorded.append(_Checkpoint(where(row), decoder.decode(row)))
        except Undecodable as exc:
            report.add(Problem(where(row), f"checkpoint {exc}: tampered", (CHECKPOINTS, row.notification_id)))
    return recorded


def _no_longer_matches(
    cp: _Checkpoint, count: int, checkpoints: list[_Checkpoint], digests: Digests
) -> Problem:
    """The problem of a checkpoint the stored rows no longer match: the rows since the last earlier
    checkpoint that still matches hold the change."""
    since = max(
        (c.up_to for c in checkpoints
         if c.up_to < cp.up_to
         and digests.digest_at(c.up_to, c.content["digest_algorithm"])[0] == c.content["digest"]),
        default=0,
    )
    return Problem(
        cp.label,
        f"the stored rows up to notification {cp.up_to} no longer match the checkpoint signed at "
        f"{cp.content['signed_at']}: {count} events now, {int(cp.content['event_count'])} signed, digest "
        f"differs — a row between notification {since + 1} and {cp.up_to} was altered, deleted or "
        "inserted",
        (CHECKPOINTS, cp.up_to),
    )
