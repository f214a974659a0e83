"""Signed checkpoints of the ledger: pure (no I/O, no clock; the time is passed in).

Every stored event of eligibility's notification log, in notification-id order, has an entry hash:

    entry(row) = sha256(canonical [notification_id, originator_id, originator_version, topic,
                                   sha256(state bytes)])

A checkpoint's digest is, by its `digest_algorithm`:

- `flexledger-merkle-sha256/2` (signed now): the root of the RFC 9162 Merkle tree whose leaves are
  the entries (`merkle.py`; leaf data = the 32 entry bytes), `event_count` its tree size: a signed
  tree head. Inclusion and consistency proofs follow (`audit prove`, `audit consistency`).
- `flexledger-log-sha256/1` (signed before): a running hash, D_0 = 32 zero bytes,
  D_n = sha256(D_{n-1} || entry(row_n)). Still verified, no longer signed.

Both cover the stored bytes (the AES-GCM ciphertext) of every event up to and including notification
id N, so altering, re-encrypting, deleting or inserting any row up to N changes them, whatever the
row holds; the per-stream hash chain (`chain.py`) says which event's content is wrong.

A checkpoint signs {ledger, up_to_notification_id, event_count, digest, digest_algorithm, signed_at,
key_id} with Ed25519 over `TAG` + its canonical JSON. docs/design/audit-format.md gives every byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.eligibility.domain.merkle import Frontier, leaf_hash

GENESIS = "0" * 64
RUNNING_DIGEST = "flexledger-log-sha256/1"
DIGEST_ALGORITHM = "flexledger-merkle-sha256/2"  # what checkpoints are signed with now
DIGEST_ALGORITHMS = (RUNNING_DIGEST, DIGEST_ALGORITHM)
SIGNATURE_ALGORITHM = "ed25519"
TAG = b"flexledger-checkpoint/1\n"  # the signature's domain-separation tag (both digest algorithms)
SIGNED_FIELDS = (
    "ledger",
    "up_to_notification_id",
    "event_count",
    "digest",
    "digest_algorithm",
    "signed_at",
    "key_id",
)


# What json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")) returns, with the
# encoder built once (the digest is folded once per stored row).
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def _canonical(content: Any) -> bytes:
    return _CANONICAL(content).encode()


def entry_hash(
    notification_id: int, originator_id: str, originator_version: int, topic: str, state_hash: bytes
) -> bytes:
    """entry(row), given the SHA-256 of the row's state (`state_hash`): a reader that has the database
    compute it (`sha256(state)` in SQL) folds the digest without fetching the states."""
    return hashlib.sha256(
        _canonical([notification_id, originator_id, originator_version, topic, state_hash.hex()])
    ).digest()


def next_digest(digest: bytes, entry: bytes) -> bytes:
    """D_n from D_{n-1} and entry(row_n)."""
    return hashlib.sha256(digest + entry).digest()


class LogTree:
    """The Merkle tree (`DIGEST_ALGORITHM`) of a notification log, fed row by row in notification-id
    order; `frontier` is what a restart resumes from."""

    def __init__(self, frontier: Frontier | None = None, up_to: int = 0) -> None:
        self.frontier = frontier or Frontier()
        self.up_to = up_to

    @property
    def count(self) -> int:
        return self.frontier.size

    @property
    def digest(self) -> str:
        return self.frontier.root().hex()

    def add(
        self, notification_id: int, originator_id: str, originator_version: int, topic: str, state: bytes
    ) -> None:
        if notification_id <= self.up_to:
            raise ValueError(f"notification {notification_id} is not after {self.up_to}")
        state_hash = hashlib.sha256(state).digest()
        self.frontier.append(leaf_hash(entry_hash(notification_id, originator_id, originator_version, topic,
                                                  state_hash)))
        self.up_to = notification_id


# --- keys --------------------------------------------------------------------------------------------


class BadKey(ValueError):
    """A key that is not an Ed25519 key in the expected encoding."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadKey(f"{what} is not base64") from None


def private_key(seed_b64: str) -> Ed25519PrivateKey:
    seed = _unb64(seed_b64, "the signing key")
    if len(seed) != 32:
        raise BadKey(f"the signing key must be 32 bytes (an Ed25519 seed), not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64(seed_b64: str) -> str:
    """The public key (base64 of its 32 raw bytes) of a signing key."""
    raw = private_key(seed_b64).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(raw)


def key_id(public_b64: str) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(_unb64(public_b64, "the public key")).hexdigest()[:16]


def generate_seed(random_bytes: bytes) -> str:
    """A signing key from 32 random bytes (the caller brings the randomness)."""
    if len(random_bytes) != 32:
        raise BadKey("an Ed25519 seed is 32 bytes")
    return _b64(random_bytes)


# --- checkpoints -------------------------------------------------------------------------------------


def checkpoint_content(
    *, ledger: str, up_to_notification_id: int, event_count: int, digest: str, signed_at: str, key: str
) -> dict[str, Any]:
    """What a checkpoint signs (`key` is the public key's id)."""
    return {
        "ledger": ledger,
        "up_to_notification_id": up_to_notification_id,
        "event_count": event_count,
        "digest": digest,
        "digest_algorithm": DIGEST_ALGORITHM,
        "signed_at": signed_at,
        "key_id": key,
    }


def signing_bytes(content: dict[str, Any]) -> bytes:
    missing = [name for name in SIGNED_FIELDS if name not in content]
    if missing:
        raise ValueError(f"a checkpoint needs {', '.join(missing)}")
    return TAG + _canonical({name: content[name] for name in SIGNED_FIELDS})


def sign(seed_b64: str, content: dict[str, Any]) -> str:
    """The Ed25519 signature (base64) of a checkpoint's content."""
    return _b64(private_key(seed_b64).sign(signing_bytes(content)))


def verify_signature(public_b64: str, content: dict[str, Any], signature_b64: str) -> bool:
    """True when `signature_b64` is the public key's signature of the checkpoint's signed fields."""
    raw = _unb64(public_b64, "the public key")
    if len(raw) != 32:
        raise BadKey(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, signing_bytes(content))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def check(public_b64: str, checkpoint: dict[str, Any]) -> list[str]:
    """Every problem of one checkpoint as published (empty when it verifies with the public key)."""
    problems = []
    missing = [name for name in (*SIGNED_FIELDS, "signature") if name not in checkpoint]
    if missing:
        return [f"missing {', '.join(missing)}"]
    if checkpoint["key_id"] != key_id(public_b64):
        problems.append(f"signed with key {checkpoint['key_id']}, not {key_id(public_b64)}")
    if checkpoint["digest_algorithm"] not in DIGEST_ALGORITHMS:
        problems.append(f"unknown digest algorithm {checkpoint['digest_algorithm']!r}")
    if not verify_signature(public_b64, checkpoint, str(checkpoint["signature"])):
        problems.append("the signature does not verify")
    return problems
