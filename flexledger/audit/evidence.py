"""Evidence bundles (`flexledger audit evidence`): one JSON file that lets a third party check a
decision without the ledger (docs/design/audit-format.md, "Evidence bundle").

It holds the decision(s) with their explanations and replay result, every stored fact of the
subject's stream up to the last of them (contents, hash-chain links), each of those events' entry and
inclusion proof in the covering signed tree head, the tree head, and the public key; the operator's
signing key attests the whole (the contents are decrypted from the ledger, which a third party cannot
do: the attestation binds them to the signed log). Identity numbers are masked unless the auditor asks
(`--identities`) and the deployment allows it (`audit_identities_allowed`). `standalone_verify.py`
checks a bundle with the standard library and `cryptography` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from contracts.identifiers import mask_identifiers
from flexledger.audit.proofs import (
    LEDGER_TABLE,
    Leaves,
    NoTreeHead,
    entry_fields,
    read_leaves,
    valid_tree_heads,
)
from flexledger.audit.replay import Located, locate, replay
from flexledger.audit.standalone_verify import BUNDLE_FORMAT, EVIDENCE_TAG, canonical
from flexledger.audit.store import PROCESSED, Decoder, EventTable, Row, stream_id
from services.eligibility.aggregates import CHAIN_FIELDS
from services.eligibility.domain.checkpoint import key_id, private_key, public_key_b64
from services.runtime.settings import Settings


class NotAllowed(PermissionError):
    """The auditor asked for identity numbers in clear and the deployment does not allow it."""


def decisions_of(
    settings: Settings, decision_id: str | None, subject: str | None, book: str | None
) -> list[Located]:
    """The decision named, or every decision of the subject's stream, each located in its stream."""
    if decision_id is not None:
        found = locate(settings, decision_id, book)
        if found is None:
            raise LookupError(f"decision {decision_id} is not in the ledger")
        return [found]
    assert subject is not None
    decoder = Decoder(settings)
    rows = EventTable(settings, LEDGER_TABLE).stream(stream_id(settings, book or "main", subject))
    events = [(row, decoder.decode(row)) for row in rows if row.topic == PROCESSED]
    located = [Located(d, events[:i + 1])
               for i, (_, state) in enumerate(events) for d in state.get("decisions") or []]
    if not located:
        raise LookupError(f"no decision about {mask_identifiers(subject)} in book {book or 'main'}")
    return located


def build(
    settings: Settings,
    located: list[Located],
    heads: list[dict[str, Any]],
    *,
    seed: str,
    identities: bool = False,
) -> dict[str, Any]:
    """The bundle of `located` decisions (of one stream), proven in the latest of the signed tree
    `heads` that covers them, attested with the signing key `seed`."""
    if identities and not settings.audit_identities_allowed:
        raise NotAllowed("identity numbers in clear are not allowed here "
                         "(FLEXLEDGER_AUDIT_IDENTITIES_ALLOWED is not 1)")
    last = max(item.row.notification_id for item in located)
    covering = [h for h in valid_tree_heads(heads, public_key_b64(seed))
                if int(h["up_to_notification_id"]) >= last]
    if not covering:
        raise NoTreeHead(f"no signed tree head covers notification {last} yet: wait for the next checkpoint")
    head = covering[-1]
    leaves = read_leaves(settings, int(head["up_to_notification_id"]), int(head["event_count"]))
    return assemble(located, head, leaves, seed=seed, identities=identities)


def bundle_text(bundle: dict[str, Any]) -> str:
    """The bundle as its file holds it (`audit evidence --out`, the console's download)."""
    return json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def assemble(
    located: list[Located], head: dict[str, Any], leaves: Leaves, *, seed: str, identities: bool
) -> dict[str, Any]:
    """The bundle from what was read: the decisions (each replayed here), their stream's events with
    inclusion proofs in `head` (the tree over `leaves`), attested with the signing key `seed`."""
    public_key = public_key_b64(seed)
    stream = max((item.events for item in located), key=len)  # every decision's events are a prefix of it
    reveal = _reveal(identities)
    body: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "ledger": head["ledger"],
        "created_at": datetime.now(UTC).isoformat(),
        "identity_numbers": "clear" if identities else "masked",
        "public_key": public_key,
        "tree_head": head,
        "streams": [{
            "originator_id": stream[0][0].originator_id,
            "events": [_event(leaves, row, state, reveal) for row, state in stream],
        }],
        "decisions": [_decision(item, reveal) for item in located],
    }
    signature = private_key(seed).sign(EVIDENCE_TAG + canonical(body))
    return {**body, "attestation": {"key_id": key_id(public_key),
                                    "signature": base64.b64encode(signature).decode("ascii")}}


def _reveal(identities: bool) -> Callable[[Any], Any]:
    """How contents are shown: a JSON copy, as stored or with every identity number masked."""
    show: Callable[[str], str] = (lambda text: text) if identities else mask_identifiers
    return lambda value: json.loads(show(json.dumps(value, ensure_ascii=False)))


def _event(leaves: Leaves, row: Row, state: dict[str, Any], reveal: Callable[[Any], Any]) -> dict[str, Any]:
    index = leaves.index_of(row.notification_id)
    stored = leaves.rows[index]
    if stored.state != hashlib.sha256(row.state).digest():
        raise ValueError(f"notification {row.notification_id} changed while the bundle was written")
    content = {name: state.get(name) for name in (*CHAIN_FIELDS, "prev_hash", "hash")}
    return {
        "entry": entry_fields(stored),
        "leaf_index": index,
        "inclusion_proof": [p.hex() for p in leaves.tree.inclusion_proof(index, leaves.tree.size)],
        "content": reveal(content),
    }


def _decision(item: Located, reveal: Callable[[Any], Any]) -> dict[str, Any]:
    result = replay(item)
    return {
        "decision_id": item.decision["decision_id"],
        "notification_id": item.row.notification_id,
        "decision": reveal(item.decision),
        "replay": {"reproduced": result.reproduced, "rule_set": result.rule_set, "problem": result.problem},
    }
