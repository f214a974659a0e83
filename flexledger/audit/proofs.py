"""Proofs against the signed tree heads (docs/design/audit-format.md): `audit prove` and `audit
consistency`.

A checkpoint signed with `flexledger-merkle-sha256/2` is a tree head: its `event_count` is the tree
size and its `digest` the root of the RFC 9162 tree whose leaf i is the entry hash of the i-th stored
event in notification order. The prover reads the entry hashes from the event table (each row's
`sha256(state)` as PostgreSQL computes it, as `audit verify` does), builds the tree once, and gives the
proofs; whoever checks them needs only the hashes, the tree head and the public key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flexledger.audit.store import CHECKPOINT_SIGNED, Decoder, EventTable, Row, Undecodable
from services.eligibility.domain.checkpoint import DIGEST_ALGORITHM, check, entry_hash
from services.eligibility.domain.merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from services.runtime.settings import Settings

LEDGER_TABLE = "eligibility"


class NoTreeHead(LookupError):
    """No signed tree head fits the request."""


def entry_fields(row: Row) -> dict[str, Any]:
    """What a leaf is computed from (`row.state` holds the stored state's SHA-256)."""
    return {
        "notification_id": row.notification_id,
        "originator_id": row.originator_id,
        "originator_version": row.version,
        "topic": row.topic,
        "state_sha256": row.state.hex(),
    }


def row_leaf(row: Row) -> bytes:
    return leaf_hash(entry_hash(row.notification_id, row.originator_id, row.version, row.topic, row.state))


# --- the tree heads ----------------------------------------------------------------------------------


def recorded_tree_heads(settings: Settings) -> list[dict[str, Any]]:
    """The checkpoints the ledger recorded, as published (signature included)."""
    table, decoder = EventTable(settings, LEDGER_TABLE), Decoder(settings)
    heads = []
    for row in table.rows(topic=CHECKPOINT_SIGNED):
        try:
            state = decoder.decode(row)
        except Undecodable:
            continue  # named by `audit verify`
        heads.append({name: state[name] for name in _PUBLISHED if name in state})
    return heads


_PUBLISHED = ("ledger", "up_to_notification_id", "event_count", "digest", "digest_algorithm", "signed_at",
              "key_id", "signature")


def valid_tree_heads(checkpoints: list[dict[str, Any]], public_key: str) -> list[dict[str, Any]]:
    """The tree heads among `checkpoints` whose signature verifies, by tree size, once each."""
    found: dict[int, dict[str, Any]] = {}
    for cp in checkpoints:
        if cp.get("digest_algorithm") == DIGEST_ALGORITHM and not check(public_key, cp):
            found.setdefault(int(cp["event_count"]), cp)
    return [found[size] for size in sorted(found)]


def choose(heads: list[dict[str, Any]], size: int | None, *, at_least: int = 0) -> dict[str, Any]:
    """The tree head of `size` leaves, or the latest; NoTreeHead when none (or none covers `at_least`)."""
    if size is not None:
        for head in heads:
            if int(head["event_count"]) == size:
                return head
        raise NoTreeHead(f"no signed tree head of size {size}")
    if not heads or int(heads[-1]["event_count"]) < at_least:
        raise NoTreeHead(f"no signed tree head covers leaf {at_least - 1} yet")
    return heads[-1]


# --- the leaves --------------------------------------------------------------------------------------


@dataclass
class Leaves:
    """The stored events up to a notification id: their entry fields and the tree over them."""

    rows: list[Row]
    tree: Tree

    def index_of(self, notification_id: int) -> int:
        """The leaf index of a stored event (its position in notification order)."""
        lo, hi = 0, len(self.rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.rows[mid].notification_id < notification_id:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(self.rows) or self.rows[lo].notification_id != notification_id:
            raise LookupError(f"notification {notification_id} is not a stored event")
        return lo


def read_leaves(settings: Settings, up_to: int, size: int) -> Leaves:
    """The stored events up to notification id `up_to` and the tree over them; NoTreeHead unless they
    are the `size` a tree head up to there signed."""
    rows = list(EventTable(settings, LEDGER_TABLE).rows(up_to=up_to, hashed=True))
    if len(rows) != size:
        raise NoTreeHead(f"the ledger holds {len(rows)} events up to notification {up_to}, not the {size} "
                         "its tree head signed: rows were deleted or inserted (run `audit verify`)")
    return Leaves(rows, Tree([row_leaf(row) for row in rows]))


# --- the proofs --------------------------------------------------------------------------------------


def inclusion(leaves: Leaves, notification_id: int, head: dict[str, Any]) -> dict[str, Any]:
    """The inclusion proof of one stored event in a tree head, with what it is computed from, and
    whether it verifies against the head's root (`verified`)."""
    index = leaves.index_of(notification_id)
    size = int(head["event_count"])
    row = leaves.rows[index]
    proof = leaves.tree.inclusion_proof(index, size)
    leaf = row_leaf(row)
    return {
        "entry": entry_fields(row),
        "leaf_index": index,
        "leaf_hash": leaf.hex(),
        "tree_size": size,
        "root_hash": head["digest"],
        "inclusion_proof": [p.hex() for p in proof],
        "tree_head": head,
        "verified": verify_inclusion(leaf, index, size, proof, bytes.fromhex(head["digest"])),
    }


def prove(
    settings: Settings, notification_id: int, heads: list[dict[str, Any]], tree_size: int | None = None
) -> dict[str, Any]:
    """`inclusion` of stored event `notification_id` in the tree head of `tree_size` among the valid
    `heads` (default: the latest); NoTreeHead when none of them covers it."""
    head = choose([h for h in heads if int(h["up_to_notification_id"]) >= notification_id], tree_size)
    leaves = read_leaves(settings, int(head["up_to_notification_id"]), int(head["event_count"]))
    return inclusion(leaves, notification_id, head)


def consistency(leaves: Leaves, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The consistency proof from tree head `old` to `new`, and whether it verifies (`verified`)."""
    old_size, new_size = int(old["event_count"]), int(new["event_count"])
    if old_size > new_size:
        raise NoTreeHead(f"the old tree head ({old_size}) is larger than the new one ({new_size})")
    proof = leaves.tree.consistency_proof(old_size, new_size)
    old_root, new_root = bytes.fromhex(old["digest"]), bytes.fromhex(new["digest"])
    ok = verify_consistency(old_size, new_size, old_root, new_root, proof)
    return {
        "old_size": old_size,
        "new_size": new_size,
        "old_root": old["digest"],
        "new_root": new["digest"],
        "consistency_proof": [p.hex() for p in proof],
        "old_tree_head": old,
        "new_tree_head": new,
        "verified": ok,
    }
