"""docs/design/audit-format.md's worked example holds: every value recomputed from its inputs by the
ledger's code and by the standalone verifier (the third party's view)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from flexledger.audit import standalone_verify as standalone
from services.eligibility.aggregates import chain_content
from services.eligibility.domain import checkpoint as cp
from services.eligibility.domain import merkle
from services.eligibility.domain.chain import link_hash
from services.intake.domain.submission import content_digest

DOC = Path(__file__).resolve().parents[2] / "docs" / "design" / "audit-format.md"


def _example() -> dict[str, Any]:
    found = re.search(r"```json worked-example\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.S)
    assert found, "the worked example block is missing"
    example: dict[str, Any] = json.loads(found.group(1))
    return example


def test_entries_and_leaves() -> None:
    for e in _example()["entries"]:
        state_hash = hashlib.sha256(e["state_utf8"].encode("utf-8")).digest()
        assert state_hash.hex() == e["state_sha256"]
        fields = (e["notification_id"], e["originator_id"], e["originator_version"], e["topic"])
        assert standalone.canonical([*fields, e["state_sha256"]]).decode("utf-8") == e["entry_json"]
        entry = cp.entry_hash(*fields, state_hash)
        assert entry.hex() == e["entry_hash"] == hashlib.sha256(e["entry_json"].encode()).hexdigest()
        assert merkle.leaf_hash(entry).hex() == e["leaf_hash"] == standalone.leaf_hash(e).hex()


def test_tree_root_and_proofs() -> None:
    example = _example()
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in example["entries"]]
    tree, t = merkle.Tree(leaves), example["tree"]
    assert merkle.node_hash(leaves[0], leaves[1]).hex() == t["node_hash_leaf0_leaf1"]
    assert tree.root(2).hex() == t["root_size_2"] and tree.root(3).hex() == t["root_size_3"]
    assert [p.hex() for p in tree.inclusion_proof(2, 3)] == t["inclusion_proof_leaf_2_size_3"]
    assert [p.hex() for p in tree.inclusion_proof(0, 3)] == t["inclusion_proof_leaf_0_size_3"]
    assert [p.hex() for p in tree.consistency_proof(2, 3)] == t["consistency_proof_2_to_3"]
    for index in (0, 2):
        proof = [bytes.fromhex(p) for p in t[f"inclusion_proof_leaf_{index}_size_3"]]
        assert standalone.inclusion_root(leaves[index], index, 3, proof) == tree.root(3)
    proof = [bytes.fromhex(p) for p in t["consistency_proof_2_to_3"]]
    assert merkle.verify_consistency(2, 3, tree.root(2), tree.root(3), proof)


def test_checkpoint_signature_and_key() -> None:
    example = _example()
    seed = next(v for k, v in example.items() if k.startswith("signing_key_seed_base64"))
    assert base64.b64decode(seed) == bytes(range(32))
    public = cp.public_key_b64(seed)
    assert public == example["public_key_base64"]
    assert cp.key_id(public) == example["key_id"] == standalone.key_id(public)
    checkpoint = example["checkpoint"]
    assert checkpoint["digest"] == example["tree"]["root_size_3"] and checkpoint["event_count"] == 3
    signed = {name: checkpoint[name] for name in cp.SIGNED_FIELDS}
    assert cp.signing_bytes(signed).decode("utf-8") == example["checkpoint_signing_input_utf8"]
    assert example["checkpoint_signing_input_utf8"].startswith("flexledger-checkpoint/1\n")
    assert cp.sign(seed, signed) == checkpoint["signature"]  # Ed25519 is deterministic
    assert cp.check(public, checkpoint) == []


def test_chain_link_fact_digest_and_running_digest() -> None:
    example = _example()
    link = example["chain_link"]
    content = chain_content(link["content"])
    assert standalone.canonical(content).decode("utf-8") == link["content_json"]
    assert link_hash(link["prev_hash"], content) == link["hash"]
    recomputed = hashlib.sha256(link["prev_hash"].encode("ascii") + link["content_json"].encode("utf-8"))
    assert recomputed.hexdigest() == link["hash"]
    assert content_digest(link["content"]["fact"]) == example["fact_digest"] == link["content"]["digest"]
    entry = bytes.fromhex(example["entries"][0]["entry_hash"])
    assert cp.next_digest(bytes(32), entry).hex() == example["running_digest_after_entry_40"]
