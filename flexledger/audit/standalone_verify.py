"""Check a flexledger evidence bundle, standing alone: the standard library and `cryptography` only.

    python flexledger/audit/standalone_verify.py BUNDLE.json [--public-key KEY]

Exit 0 when every check passes; 1 naming each check that fails; 2 when the file cannot be read. It
imports nothing from flexledger (copy this one file anywhere): every hash, link and signature is
recomputed here from docs/design/audit-format.md, so it is also a second, independent implementation
of that format. `--public-key` (base64, or a file holding it) pins the ledger's key obtained
elsewhere (`flexledger audit public-key`, the operator's notice); without it the bundle's own key is
used, which proves the bundle is whole and was issued by whoever holds that key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BUNDLE_FORMAT = "flexledger-evidence/1"
TREE_ALGORITHM = "flexledger-merkle-sha256/2"
CHECKPOINT_TAG = b"flexledger-checkpoint/1\n"
EVIDENCE_TAG = b"flexledger-evidence/1\n"
CHAIN_GENESIS = "0" * 64
CHECKPOINT_FIELDS = ("ledger", "up_to_notification_id", "event_count", "digest", "digest_algorithm",
                     "signed_at", "key_id")
CHAIN_FIELDS = ("book", "subject", "seq", "fact_id", "outcome", "fact", "reason", "digest", "decisions",
                "rule_set", "trace_id")


def canonical(value: Any) -> bytes:
    """UTF-8 of JSON with sorted keys, no spaces, non-ASCII as is."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- RFC 9162 ----------------------------------------------------------------------------------------


def leaf_hash(entry: dict[str, Any]) -> bytes:
    """The leaf of a stored event: SHA-256(0x00 || entry hash), the entry hash being SHA-256 of the
    canonical JSON array [notification_id, originator_id, originator_version, topic, state_sha256]."""
    data = [entry["notification_id"], entry["originator_id"], entry["originator_version"], entry["topic"],
            entry["state_sha256"]]
    return sha256(b"\x00" + sha256(canonical(data)))


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def inclusion_root(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """The root the inclusion proof leads to (RFC 9162 2.1.3.2), None when it is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


# --- the checks --------------------------------------------------------------------------------------


class Failures(list[str]):
    def need(self, ok: bool, what: str) -> bool:
        if not ok:
            self.append(what)
        return ok


def _unhex(value: Any) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        return b""


def _key(public_b64: str) -> Ed25519PublicKey | None:
    try:
        raw = base64.b64decode(public_b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except (binascii.Error, ValueError):
        return None


def _signed(key: Ed25519PublicKey, signature_b64: Any, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(str(signature_b64), validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def key_id(public_b64: str) -> str:
    return hashlib.sha256(base64.b64decode(public_b64)).hexdigest()[:16]


def check_bundle(bundle: dict[str, Any], pinned_key: str | None = None) -> list[str]:
    """Every failing check of a bundle (empty: it verifies)."""
    failures = Failures()
    if not failures.need(bundle.get("format") == BUNDLE_FORMAT, f"format: not {BUNDLE_FORMAT}"):
        return failures
    public_b64 = str(bundle.get("public_key", ""))
    key = _key(public_b64)
    if not failures.need(key is not None, "public key: not a base64 Ed25519 key"):
        return failures
    assert key is not None
    if pinned_key is not None:
        failures.need(public_b64 == pinned_key.strip(), "public key: not the key given with --public-key")
    _check_attestation(bundle, key, public_b64, failures)
    head = bundle.get("tree_head") or {}
    root = _check_tree_head(head, key, public_b64, failures)
    events = _check_events(bundle, head, root, failures)
    _check_decisions(bundle, events, failures)
    return failures


def _check_attestation(
    bundle: dict[str, Any], key: Ed25519PublicKey, public_b64: str, failures: Failures
) -> None:
    attestation = bundle.get("attestation") or {}
    body = {name: value for name, value in bundle.items() if name != "attestation"}
    failures.need(attestation.get("key_id") == key_id(public_b64), "attestation: signed with another key")
    failures.need(_signed(key, attestation.get("signature"), EVIDENCE_TAG + canonical(body)),
                  "attestation: the signature over the bundle does not verify (a part was changed)")


def _check_tree_head(
    head: dict[str, Any], key: Ed25519PublicKey, public_b64: str, failures: Failures
) -> bytes:
    if not failures.need(all(name in head for name in (*CHECKPOINT_FIELDS, "signature")),
                         "tree head: a signed field is missing"):
        return b""
    failures.need(head["digest_algorithm"] == TREE_ALGORITHM, f"tree head: not a {TREE_ALGORITHM} tree head")
    failures.need(head["key_id"] == key_id(public_b64), "tree head: signed with another key")
    signed = CHECKPOINT_TAG + canonical({name: head[name] for name in CHECKPOINT_FIELDS})
    failures.need(_signed(key, head["signature"], signed), "tree head: the signature does not verify")
    return _unhex(head["digest"])


def _check_events(
    bundle: dict[str, Any], head: dict[str, Any], root: bytes, failures: Failures
) -> dict[int, dict[str, Any]]:
    """Each stream's events in order: inclusion in the tree head, versions, hash-chain links; the
    events' contents by notification id."""
    clear = bundle.get("identity_numbers") == "clear"
    size = int(head.get("event_count") or 0)
    by_id: dict[int, dict[str, Any]] = {}
    for stream in bundle.get("streams") or []:
        previous, version = CHAIN_GENESIS, None
        for event in stream.get("events") or []:
            entry, content = event.get("entry") or {}, event.get("content") or {}
            where = f"event at notification {entry.get('notification_id')}"
            _check_inclusion(event, size, root, where, failures)
            failures.need(entry.get("originator_id") == stream.get("originator_id"),
                          f"{where}: not of its stream")
            if version is not None:
                failures.need(entry.get("originator_version") == version + 1,
                              f"{where}: version {entry.get('originator_version')} does not follow {version}")
            version = entry.get("originator_version")
            failures.need(content.get("prev_hash") == previous,
                          f"{where}: the chain link does not follow the previous event's")
            if clear:
                _check_content(content, previous, where, failures)
            previous = str(content.get("hash"))
            by_id[int(entry.get("notification_id") or 0)] = content
    return by_id


def _check_inclusion(event: dict[str, Any], size: int, root: bytes, where: str, failures: Failures) -> None:
    proof = [_unhex(p) for p in event.get("inclusion_proof") or []]
    try:
        index = int(event.get("leaf_index", -1))
        found = inclusion_root(leaf_hash(event.get("entry") or {}), index, size, proof)
    except (KeyError, TypeError, ValueError):
        found = None
    failures.need(found is not None and found == root,
                  f"{where}: its inclusion proof does not lead to the tree head's root")


def _check_content(content: dict[str, Any], previous: str, where: str, failures: Failures) -> None:
    """With identity numbers in clear: the chain link and the fact's digest recomputed."""
    chained = canonical({name: content.get(name) for name in CHAIN_FIELDS})
    link = hashlib.sha256(previous.encode("ascii") + chained).hexdigest()
    failures.need(content.get("hash") == link, f"{where}: its chain link is not the hash of its content")
    if content.get("outcome") == "accepted":
        digest = hashlib.sha256(canonical(content.get("fact"))).hexdigest()
        failures.need(content.get("digest") == digest,
                      f"{where}: the fact's digest is not the SHA-256 of the fact")


def _check_decisions(bundle: dict[str, Any], events: dict[int, dict[str, Any]], failures: Failures) -> None:
    decisions = bundle.get("decisions") or []
    failures.need(bool(decisions), "decisions: the bundle holds none")
    facts = {content.get("fact_id") for content in events.values()}
    for item in decisions:
        decision = item.get("decision") or {}
        where = f"decision {decision.get('decision_id')}"
        content = events.get(int(item.get("notification_id") or 0))
        failures.need(content is not None and decision in (content.get("decisions") or []),
                      f"{where}: not among the decisions of the event it names")
        failures.need(bool(decision.get("explanation") or decision.get("reason")), f"{where}: no explanation")
        rests_on = (decision.get("explanation") or {}).get("fact_ids") or []
        failures.need(all(fact in facts for fact in rests_on),
                      f"{where}: a fact it rests on is not in the bundle")
        replay = item.get("replay") or {}
        failures.need(replay.get("reproduced") is True, f"{where}: the replay did not reproduce it")


def main(argv: list[str]) -> int:
    args = list(argv)
    pinned = None
    if "--public-key" in args:
        at = args.index("--public-key")
        if at + 1 >= len(args):
            print("usage: standalone_verify.py BUNDLE [--public-key KEY]", file=sys.stderr)
            return 2
        pinned = args[at + 1]
        del args[at:at + 2]
        if len(pinned) < 200 and Path(pinned).is_file():
            pinned = Path(pinned).read_text(encoding="utf-8").strip()
    if len(args) != 1:
        print("usage: standalone_verify.py BUNDLE [--public-key KEY]", file=sys.stderr)
        return 2
    try:
        bundle = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {args[0]}: {exc}", file=sys.stderr)
        return 2
    if not isinstance(bundle, dict):
        print(f"error: {args[0]} is not a bundle (a JSON object)", file=sys.stderr)
        return 2
    failures = check_bundle(bundle, pinned)
    decisions = len(bundle.get("decisions") or [])
    events = sum(len(s.get("events") or []) for s in bundle.get("streams") or [])
    head = bundle.get("tree_head") or {}
    if failures:
        print(f"evidence bundle {args[0]}: INVALID — {len(failures)} checks fail")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print(f"evidence bundle {args[0]}: valid — {decisions} decisions, {events} events included in the tree "
          f"head of {head.get('event_count')} events signed at {head.get('signed_at')} "
          f"by key {head.get('key_id')}")
    if bundle.get("identity_numbers") != "clear":
        print("  identity numbers masked: chain links checked for continuity, not recomputed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
