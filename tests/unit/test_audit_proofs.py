"""The transparency log and evidence bundles (issue 16): the Merkle tree against the RFC 6962 test
vectors (Certificate Transparency's, as Trillian and transparency-dev/merkle publish them), inclusion
and consistency proofs for every size, the standalone verifier, and a bundle refused whichever part
is tampered with. The real stack: tests/integration/test_audit_stack.py."""

from __future__ import annotations

import ast
import base64
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flexledger.audit import standalone_verify as standalone
from flexledger.audit.evidence import assemble
from flexledger.audit.proofs import Leaves, row_leaf
from flexledger.audit.replay import Located
from flexledger.audit.store import Row
from services.eligibility.aggregates import CHAIN_FIELDS
from services.eligibility.domain import checkpoint as cp
from services.eligibility.domain import merkle
from services.eligibility.domain.chain import GENESIS
from tests.unit import evidence_world

SEED = base64.b64encode(bytes(range(32))).decode()
VECTORS = Path(__file__).resolve().parents[1] / "vectors"

# --- RFC 6962 test vectors ------------------------------------------------------------------------------

CT_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H = {  # named hashes of the vectors' proofs
    "l0": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "n23": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "n4567": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "l4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "n67": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "n0123": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
}
CT_INCLUSION = [(0, 8, ["l0", "n23", "n4567"]), (5, 8, ["l4", "n67", "n0123"])]
CT_CONSISTENCY = [(2, 8, ["n23", "n4567"]), (2, 5, ["n23", "l4"])]


def _ct() -> list[bytes]:
    return [merkle.leaf_hash(data) for data in CT_LEAVES]


def test_roots_are_rfc_6962s_for_every_size_of_the_reference_tree() -> None:
    leaves = _ct()
    tree = merkle.Tree(leaves)
    for size, expected in enumerate(CT_ROOTS):
        assert merkle.root(leaves[:size]).hex() == expected, size
        assert tree.root(size).hex() == expected, size
    frontier = merkle.Frontier()
    for size, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.root().hex() == CT_ROOTS[size]
        # as the checkpointer resumes after a restart
        resumed = merkle.Frontier.from_hex(frontier.size, frontier.hex_nodes())
        assert resumed.root() == frontier.root()


def test_proofs_are_the_reference_proofs() -> None:
    tree = merkle.Tree(_ct())
    for index, size, names in CT_INCLUSION:
        assert [p.hex() for p in tree.inclusion_proof(index, size)] == [H[n] for n in names]
    for old, new, names in CT_CONSISTENCY:
        assert [p.hex() for p in tree.consistency_proof(old, new)] == [H[n] for n in names]


def test_every_inclusion_and_consistency_proof_verifies_for_all_sizes_and_nothing_else_does() -> None:
    leaves = [merkle.leaf_hash(b"event %d" % i) for i in range(33)]
    tree = merkle.Tree(leaves)
    for size in range(1, len(leaves) + 1):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            # the standalone verifier's own implementation agrees
            assert standalone.inclusion_root(leaves[index], index, size, proof) == root
            other = leaves[(index + 1) % len(leaves)]
            assert not merkle.verify_inclusion(other, index, size, proof, root)
            if proof:
                assert not merkle.verify_inclusion(leaves[index], index, size, proof[:-1], root)
                bent = [bytes(32), *proof[1:]]
                assert not merkle.verify_inclusion(leaves[index], index, size, bent, root)
        for old in range(1, size + 1):
            proof = tree.consistency_proof(old, size)
            old_root = tree.root(old)
            assert merkle.verify_consistency(old, size, old_root, root, proof), (old, size)
            if old < size:
                assert not merkle.verify_consistency(old, size, bytes(32), root, proof)
                assert not merkle.verify_consistency(old, size, old_root, bytes(32), proof)
                assert not merkle.verify_consistency(old, size, old_root, root, [bytes(32), *proof[1:]])


def test_the_checkpointers_tree_is_the_tree_over_the_entry_hashes() -> None:
    log = cp.LogTree()
    leaves = []
    for n in (1, 2, 5, 9, 10):
        oid, state = str(uuid.UUID(int=n)), bytes([n]) * n
        log.add(n, oid, 1, "t", state)
        leaves.append(merkle.leaf_hash(cp.entry_hash(n, oid, 1, "t", hashlib.sha256(state).digest())))
    assert (log.digest, log.count) == (merkle.root(leaves).hex(), 5)
    with pytest.raises(ValueError):
        log.add(3, "x", 1, "t", b"")  # out of order


# --- evidence bundles -----------------------------------------------------------------------------------

SUBJECT = evidence_world.SUBJECT  # vector 05: six facts, six decisions


def _ledger() -> tuple[list[tuple[Row, dict[str, Any]]], list[Row]]:
    return evidence_world.stored_stream()


def _bundle(identities: bool = True) -> dict[str, Any]:
    stream, stored = _ledger()
    tree = merkle.Tree([row_leaf(row) for row in stored])
    content = cp.checkpoint_content(ledger="eligibility", up_to_notification_id=stored[-1].notification_id,
                                    event_count=len(stored), digest=tree.root().hex(),
                                    signed_at="2026-12-03T20:00:00+00:00",
                                    key=cp.key_id(cp.public_key_b64(SEED)))
    head = {**content, "signature": cp.sign(SEED, content)}
    located = [Located(d, stream[:i + 1]) for i, (_, state) in enumerate(stream) for d in state["decisions"]]
    return assemble(located, head, Leaves(stored, tree), seed=SEED, identities=identities)


def _reattested(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle signed again by the key's holder: a part's own check must still refuse it."""
    body = {k: v for k, v in bundle.items() if k != "attestation"}
    signature = cp.private_key(SEED).sign(standalone.EVIDENCE_TAG + standalone.canonical(body))
    attestation = {**bundle["attestation"], "signature": base64.b64encode(signature).decode()}
    return {**bundle, "attestation": attestation}


def test_a_bundle_holds_the_decisions_their_facts_proofs_and_key_and_verifies() -> None:
    bundle = _bundle()
    assert len(bundle["decisions"]) == 6 and all(d["replay"]["reproduced"] for d in bundle["decisions"])
    assert all(d["decision"].get("explanation") for d in bundle["decisions"])
    assert len(bundle["streams"][0]["events"]) == 6 and bundle["tree_head"]["event_count"] == 12
    assert standalone.check_bundle(bundle) == []
    assert standalone.check_bundle(bundle, cp.public_key_b64(SEED)) == []
    other_key = cp.public_key_b64(base64.b64encode(bytes(32)).decode())
    assert standalone.check_bundle(bundle, other_key) == ["public key: not the key given with --public-key"]


def test_a_masked_bundle_shows_no_identity_number_and_verifies() -> None:
    bundle = _bundle(identities=False)
    text = json.dumps(bundle, ensure_ascii=False)
    assert SUBJECT not in text and "3424**********6063" in text
    assert standalone.check_bundle(bundle) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(bundle: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = bundle
        for name in parents:
            node = node[int(name)] if isinstance(node, list) else node[name]
        if isinstance(node, list):
            node[int(last)] = value(node[int(last)]) if callable(value) else value
        else:
            node[last] = value(node[last]) if callable(value) else value
    return change


def _drop_event(bundle: dict[str, Any]) -> None:
    del bundle["streams"][0]["events"][2]


OTHER_KEY = cp.public_key_b64(base64.b64encode(bytes([9]) * 32).decode())
EVENT = "streams.0.events.3"
# each part of a bundle, a change to it, and what the standalone verifier names even when the bundle
# is signed again after the change
TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("tree head root", _set("tree_head.digest", "ab" * 32), "tree head: the signature does not verify"),
    ("tree head size", _set("tree_head.event_count", 11), "tree head: the signature does not verify"),
    ("tree head signature", _set("tree_head.signature", base64.b64encode(bytes(64)).decode()),
     "tree head: the signature does not verify"),
    ("public key", _set("public_key", OTHER_KEY), "tree head: signed with another key"),
    ("inclusion proof", _set(f"{EVENT}.inclusion_proof.0", "00" * 32), "inclusion proof does not lead"),
    ("leaf index", _set(f"{EVENT}.leaf_index", lambda i: i + 1), "inclusion proof does not lead"),
    ("stored state hash", _set(f"{EVENT}.entry.state_sha256", "11" * 32), "inclusion proof does not lead"),
    ("fact content", _set(f"{EVENT}.content.fact.id", "forged"), "chain link is not the hash of its content"),
    ("fact digest", _set(f"{EVENT}.content.digest", "22" * 32), "its chain link is not the hash"),
    ("chain link", _set(f"{EVENT}.content.prev_hash", "33" * 32), "the chain link does not follow"),
    ("a missing fact", _drop_event, "does not follow"),
    ("decision amount", _set("decisions.0.decision.amount_fen", lambda a: a + 100),
     "not among the decisions of the event it names"),
    ("explanation", _set("decisions.0.decision.explanation", None), "not among the decisions"),
    ("replay result", _set("decisions.0.replay.reproduced", False), "the replay did not reproduce it"),
    ("attestation", _set("attestation.signature", base64.b64encode(bytes(64)).decode()),
     "attestation: the signature over the bundle does not verify"),
]


@pytest.mark.parametrize(("part", "tamper", "named"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_a_bundle_tampered_in_any_part_is_refused(
    part: str, tamper: Callable[[dict[str, Any]], None], named: str
) -> None:
    bundle = copy.deepcopy(_bundle())
    tamper(bundle)
    failures = standalone.check_bundle(bundle)
    assert any("attestation" in f for f in failures), failures  # as changed by anyone without the key
    if part != "attestation":
        failures = standalone.check_bundle(_reattested(bundle))  # even by the key's holder
    assert any(named in f for f in failures), failures


def test_the_standalone_verifiers_constants_are_the_ledgers() -> None:
    assert standalone.CHAIN_FIELDS == CHAIN_FIELDS
    assert standalone.CHECKPOINT_FIELDS == cp.SIGNED_FIELDS
    assert (standalone.CHECKPOINT_TAG, standalone.TREE_ALGORITHM) == (cp.TAG, cp.DIGEST_ALGORITHM)
    assert standalone.CHAIN_GENESIS == GENESIS


def test_the_standalone_verifier_needs_only_the_standard_library_and_cryptography(tmp_path: Path) -> None:
    source = Path(standalone.__file__)
    nodes = list(ast.walk(ast.parse(source.read_text(encoding="utf-8"))))
    imported = {alias.name.split(".")[0]
                for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in nodes
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
    alone = tmp_path / "verify_bundle.py"
    shutil.copy(source, alone)  # anywhere, outside the project
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    bundle = _bundle()
    good.write_text(json.dumps(bundle), encoding="utf-8")
    bundle["decisions"][0]["decision"]["amount_fen"] += 1
    bad.write_text(json.dumps(bundle), encoding="utf-8")
    ok = subprocess.run([sys.executable, "-I", str(alone), str(good)], capture_output=True, text=True,
                        cwd=tmp_path, check=False)
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stdout + ok.stderr
    pinned = cp.public_key_b64(SEED)
    refused = subprocess.run([sys.executable, "-I", str(alone), str(bad), "--public-key", pinned],
                             capture_output=True, text=True, cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "not among the decisions" in refused.stdout, refused.stdout
    missing = subprocess.run([sys.executable, "-I", str(alone), str(tmp_path / "none.json")],
                             capture_output=True, text=True, cwd=tmp_path, check=False)
    assert missing.returncode == 2
