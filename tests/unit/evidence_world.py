"""A small signed ledger for the console's tests: vector 05's worker's stream as eligibility stores it
(facts decided by the pure core, hash-chained) among other stored rows, a tree head signed over all of
them, and the real proof and evidence functions applied to it (flexledger.audit.proofs, .evidence).
The same construction as tests/unit/test_audit_proofs.py's bundles."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from contracts.messages import fact_subject
from flexledger.audit.evidence import assemble
from flexledger.audit.proofs import Leaves, inclusion, row_leaf
from flexledger.audit.replay import Located, SubjectReplay
from flexledger.audit.store import PROCESSED, Row
from flexledger.scenario_file import load_scenario
from services.eligibility.aggregates import chain_content
from services.eligibility.domain import checkpoint as cp
from services.eligibility.domain import merkle
from services.eligibility.domain.chain import GENESIS, link_hash
from services.eligibility.domain.ruleset import CURRENT
from services.intake.domain.submission import content_digest

SEED = base64.b64encode(bytes(range(32))).decode()
SUBJECT = "342401198011116063"  # vector 05: trained through two enterprises
VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "05-training-cap.yaml"


def stored_stream() -> tuple[list[tuple[Row, dict[str, Any]]], list[Row]]:
    """One subject's stream as eligibility stores it (vector 05's facts decided by the pure core,
    chained), among other stored rows: (the stream's rows with their decoded states, every row hashed in
    order)."""
    facts = [f for f in load_scenario(VECTOR)["facts"] if fact_subject(f) == SUBJECT]
    replay, head = SubjectReplay(CURRENT.id, "b"), GENESIS
    stream_id, stream, stored = str(uuid.UUID(int=7)), [], []
    for seq, fact in enumerate(facts, start=1):
        event = {"book": "b", "subject": SUBJECT, "seq": seq, "fact_id": fact["id"], "outcome": "accepted",
                 "fact": fact, "reason": None, "digest": content_digest(fact), "rule_set": CURRENT.id,
                 "trace_id": None}
        event["decisions"] = replay.decide(event)
        event["prev_hash"], event["hash"] = head, link_hash(head, chain_content(event))
        head = event["hash"]
        other = Row(3 * seq - 1, str(uuid.UUID(int=seq)), 1, "other", b"x" * seq)
        row = Row(3 * seq, stream_id, seq + 1, PROCESSED, b"ciphertext %d" % seq)
        stream.append((row, json.loads(json.dumps(event))))
        stored += [other, row]
    return stream, [r._replace(state=hashlib.sha256(r.state).digest()) for r in stored]


@cache
def _ledger() -> tuple[list[tuple[Row, dict[str, Any]]], Leaves, dict[str, Any]]:
    """(the stream's rows with their decoded states, every stored row hashed with the tree, the head)."""
    stream, hashed = stored_stream()
    tree = merkle.Tree([row_leaf(row) for row in hashed])
    content = cp.checkpoint_content(ledger="eligibility", up_to_notification_id=hashed[-1].notification_id,
                                    event_count=len(hashed), digest=tree.root().hex(),
                                    signed_at="2026-12-03T20:00:00+00:00",
                                    key=cp.key_id(cp.public_key_b64(SEED)))
    return stream, Leaves(hashed, tree), {**content, "signature": cp.sign(SEED, content)}


def _located(after: str) -> Located:
    """The first decision made after fact `after` (f4: the first training grant, f5: the second,
    paid to the other enterprise), located in its stream."""
    stream = _ledger()[0]
    for i, (_, state) in enumerate(stream):
        if state["fact_id"] == after:
            return Located(state["decisions"][0], stream[:i + 1])
    raise LookupError(after)


def proof(after: str) -> dict[str, Any]:
    """`flexledger.audit.proofs.inclusion` of that decision's stored event in the signed tree head."""
    _, leaves, head = _ledger()
    return inclusion(leaves, _located(after).row.notification_id, head)


def bundle(after: str, identities: bool) -> dict[str, Any]:
    """The evidence bundle `flexledger audit evidence` builds for that decision."""
    _, leaves, head = _ledger()
    return assemble([_located(after)], head, leaves, seed=SEED, identities=identities)
