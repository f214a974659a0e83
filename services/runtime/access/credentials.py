"""API keys: issued, rotated and revoked as events folded into a `KeyRing`; `authenticate` a presented key.

A key reads `flk_<key id>_<secret>`: the key id (16 hex characters) is public and names the key in
logs and operator commands; the secret (32 random bytes, base64url) is shown once, when the key is
issued or rotated, and only its hash is kept.

Why SHA-256 and not scrypt: the secret is 256 random bits, not a password. A slow key-derivation
function protects low-entropy secrets against guessing after a leak of the hashes; against 256 bits it
adds nothing, while costing tens of milliseconds of CPU on every request (a denial-of-service lever at
the edge). The hash covers a version tag and the key id, so a stored hash is bound to its key id.
Comparison is constant-time (`hmac.compare_digest`), and an unknown key id is compared against a dummy
hash so that it costs the same.

Rotation: `rotate_key` issues a successor with the same principal; the old key keeps working until
`grace_until` when one is given explicitly (at most MAX_ROTATION_GRACE after the rotation), and stops
at once when it is not. Revocation ends a key at once, also during its grace window.

Nothing here reads a clock or a random source implicitly: times are passed in, and `new_api_key`
takes the random source as a parameter (defaulting to `secrets.token_bytes`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from contracts.identifiers import uscc_problem
from services.runtime.access.principals import ROLES, Principal, Role

KEY_PREFIX = "flk"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
MAX_PRESENTED_KEY_CHARS = 200
MAX_LABEL_CHARS = 200
MAX_ROTATION_GRACE = timedelta(days=30)
HASH_SCHEME = "flexledger-api-key-v1"

_KEY_SHAPE = re.compile(r"flk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class KeyRingError(ValueError):
    """An operator command on the key ring cannot be carried out; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key in clear: exists only between generation and showing it to the operator once."""

    key_id: str
    secret: str = field(repr=False)

    @property
    def token(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"


def new_api_key(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> ApiKey:
    key_id = random_bytes(KEY_ID_BYTES).hex()
    secret = base64.urlsafe_b64encode(random_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    key = ApiKey(key_id, secret)
    assert parse_api_key(key.token) == key
    return key


def parse_api_key(presented: str) -> ApiKey | None:
    """The key id and secret of a presented key, or None when it does not have a key's shape."""
    if len(presented) > MAX_PRESENTED_KEY_CHARS:
        return None
    match = _KEY_SHAPE.fullmatch(presented)
    return ApiKey(match.group(1), match.group(2)) if match else None


def secret_hash(key_id: str, secret: str) -> str:
    material = f"{HASH_SCHEME}\x00{key_id}\x00{secret}".encode("ascii")
    return hashlib.sha256(material).hexdigest()


_DUMMY_HASH = secret_hash("0" * 2 * KEY_ID_BYTES, "")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if authorization is None or len(authorization) > MAX_PRESENTED_KEY_CHARS + 20:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


# ---- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyIssued:
    key_id: str
    role: Role
    enterprise: str | None
    secret_sha256: str
    at: datetime
    label: str = ""


@dataclass(frozen=True, slots=True)
class KeyRotated:
    old_key_id: str
    new_key_id: str
    secret_sha256: str
    at: datetime
    old_valid_until: datetime  # == at when there is no grace window


@dataclass(frozen=True, slots=True)
class KeyRevoked:
    key_id: str
    at: datetime
    reason: str = ""


KeyEvent = KeyIssued | KeyRotated | KeyRevoked

KeyState = Literal["active", "in_grace", "retired", "revoked"]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    principal: Principal
    secret_sha256: str
    issued_at: datetime
    label: str = ""
    valid_until: datetime | None = None  # set by a rotation
    replaced_by: str | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return "revoked"
        if self.valid_until is None:
            return "active"
        return "in_grace" if now < self.valid_until else "retired"

    def usable_at(self, now: datetime) -> bool:
        return self.state(now) in ("active", "in_grace")


@dataclass
class KeyRing:
    """All keys ever issued, by key id. Built only by folding events: `KeyRing.from_events(events)`."""

    records: dict[str, KeyRecord] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[KeyEvent]) -> KeyRing:
        ring = cls()
        for event in events:
            ring.apply(event)
        return ring

    def apply(self, event: KeyEvent) -> None:
        match event:
            case KeyIssued():
                assert event.key_id not in self.records, event.key_id
                principal = Principal(event.role, event.key_id, event.enterprise)
                self.records[event.key_id] = KeyRecord(principal, event.secret_sha256, event.at, event.label)
            case KeyRotated():
                old = self.records[event.old_key_id]
                assert event.new_key_id not in self.records, event.new_key_id
                self.records[event.old_key_id] = replace(
                    old, valid_until=event.old_valid_until, replaced_by=event.new_key_id
                )
                principal = replace(old.principal, key_id=event.new_key_id)
                successor = KeyRecord(principal, event.secret_sha256, event.at, old.label)
                self.records[event.new_key_id] = successor
            case KeyRevoked():
                self.records[event.key_id] = replace(self.records[event.key_id], revoked_at=event.at)


# ---- commands: check against the ring, return the event (the caller stores and applies it) -------


def _aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise KeyRingError(f"{name} must carry a UTC offset")


def _label(label: str) -> str:
    if len(label) > MAX_LABEL_CHARS or _CONTROL.search(label):
        raise KeyRingError(f"label must be at most {MAX_LABEL_CHARS} printable characters")
    return label


def issue_key(
    ring: KeyRing, *, role: Role, at: datetime, key: ApiKey, enterprise: str | None = None, label: str = ""
) -> KeyIssued:
    """A new key for `role`; a platform key names the one enterprise it may report for."""
    _aware(at, "at")
    if role not in ROLES:
        raise KeyRingError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "platform":
        if enterprise is None:
            raise KeyRingError("a platform key needs the platform's enterprise (unified social credit code)")
        if problem := uscc_problem(enterprise):
            raise KeyRingError(f"enterprise is not a valid unified social credit code: {problem}")
    elif enterprise is not None:
        raise KeyRingError(f"a {role} key is not bound to an enterprise")
    if key.key_id in ring.records:
        raise KeyRingError(f"key id {key.key_id} is already used")
    return KeyIssued(key.key_id, role, enterprise, secret_hash(key.key_id, key.secret), at, _label(label))


def rotate_key(
    ring: KeyRing, key_id: str, *, at: datetime, key: ApiKey, grace_until: datetime | None = None
) -> KeyRotated:
    """A successor for `key_id` with the same principal; the old key works until `grace_until`, if given."""
    _aware(at, "at")
    old = _existing(ring, key_id)
    if old.revoked_at is not None:
        raise KeyRingError(f"key {key_id} is revoked; issue a new key instead")
    if old.replaced_by is not None:
        raise KeyRingError(f"key {key_id} was already rotated to {old.replaced_by}; rotate that one")
    if key.key_id in ring.records:
        raise KeyRingError(f"key id {key.key_id} is already used")
    if grace_until is not None:
        _aware(grace_until, "grace_until")
        if not at < grace_until <= at + MAX_ROTATION_GRACE:
            raise KeyRingError("grace_until must be after the rotation and at most "
                               f"{MAX_ROTATION_GRACE.days} days later")
    return KeyRotated(key_id, key.key_id, secret_hash(key.key_id, key.secret), at, grace_until or at)


def revoke_key(ring: KeyRing, key_id: str, *, at: datetime, reason: str = "") -> KeyRevoked:
    """End `key_id` now, grace window or not."""
    _aware(at, "at")
    if _existing(ring, key_id).revoked_at is not None:
        raise KeyRingError(f"key {key_id} is already revoked")
    return KeyRevoked(key_id, at, _label(reason))


def _existing(ring: KeyRing, key_id: str) -> KeyRecord:
    """The record of `key_id`, which an operator command names: refused when there is none."""
    record = ring.records.get(key_id)
    if record is None:
        raise KeyRingError(f"there is no key {key_id}")
    return record


# ---- authentication -----------------------------------------------------------------------------


def authenticate(ring: KeyRing, presented_key: str | None, *, now: datetime) -> Principal | None:
    """The principal of a usable key, or None (missing, malformed, unknown, wrong secret, retired,
    revoked): all of these are 401, and the caller should not tell them apart in the response."""
    assert now.tzinfo is not None, "now must carry a UTC offset"
    parsed = parse_api_key(presented_key) if presented_key is not None else None
    record = ring.records.get(parsed.key_id) if parsed is not None else None
    expected = record.secret_sha256 if record is not None else _DUMMY_HASH
    presented_hash = secret_hash(parsed.key_id, parsed.secret) if parsed is not None else _DUMMY_HASH
    matches = hmac.compare_digest(expected, presented_hash)
    if record is None or not matches or not record.usable_at(now):
        return None
    return record.principal


# ---- storage form -------------------------------------------------------------------------------


def event_to_dict(event: KeyEvent) -> dict[str, Any]:
    """A JSON-ready form of an event (timestamps as ISO 8601 with offset). Holds no secret."""
    match event:
        case KeyIssued():
            return {"kind": "key_issued", "key_id": event.key_id, "role": event.role,
                    "enterprise": event.enterprise, "secret_sha256": event.secret_sha256,
                    "at": event.at.isoformat(), "label": event.label}
        case KeyRotated():
            return {"kind": "key_rotated", "old_key_id": event.old_key_id, "new_key_id": event.new_key_id,
                    "secret_sha256": event.secret_sha256, "at": event.at.isoformat(),
                    "old_valid_until": event.old_valid_until.isoformat()}
        case KeyRevoked():
            return {"kind": "key_revoked", "key_id": event.key_id, "at": event.at.isoformat(),
                    "reason": event.reason}


def event_from_dict(data: Mapping[str, Any]) -> KeyEvent:
    try:
        kind = data["kind"]
        if kind == "key_issued":
            return KeyIssued(data["key_id"], data["role"], data["enterprise"], data["secret_sha256"],
                             datetime.fromisoformat(data["at"]), data.get("label", ""))
        if kind == "key_rotated":
            return KeyRotated(data["old_key_id"], data["new_key_id"], data["secret_sha256"],
                              datetime.fromisoformat(data["at"]),
                              datetime.fromisoformat(data["old_valid_until"]))
        if kind == "key_revoked":
            return KeyRevoked(data["key_id"], datetime.fromisoformat(data["at"]), data.get("reason", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyRingError(f"stored key event is malformed: {exc!r}") from None
    raise KeyRingError(f"stored key event has unknown kind {kind!r}")
