"""API keys: issue, rotate, revoke as events; the ring rebuilt by replay; authenticate."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stand_in_intake import E1, T0, counting_random

from services.runtime.access.credentials import (
    MAX_ROTATION_GRACE,
    ApiKey,
    KeyEvent,
    KeyRing,
    KeyRingError,
    authenticate,
    bearer_token,
    event_from_dict,
    event_to_dict,
    issue_key,
    new_api_key,
    parse_api_key,
    revoke_key,
    rotate_key,
    secret_hash,
)
from services.runtime.access.principals import ROLES, Principal, Role

random_bytes = counting_random()


def _issue(ring: KeyRing, role: str = "platform", enterprise: str | None = E1) -> ApiKey:
    key = new_api_key(random_bytes)
    ring.apply(issue_key(ring, role=role, enterprise=enterprise, at=T0, key=key, label="test"))  # type: ignore[arg-type]
    return key


def test_a_key_has_a_public_id_and_a_256_bit_secret() -> None:
    key = new_api_key()
    assert key.token.startswith(f"flk_{key.key_id}_")
    assert len(key.key_id) == 16 and len(key.secret) == 43
    assert parse_api_key(key.token) == key
    assert key.secret not in repr(key)
    assert new_api_key().token != key.token


def test_the_ring_keeps_only_a_hash_bound_to_the_key_id() -> None:
    ring = KeyRing()
    key = _issue(ring)
    record = ring.records[key.key_id]
    assert record.secret_sha256 == secret_hash(key.key_id, key.secret)
    assert key.secret not in json.dumps([event_to_dict(e) for e in _events_of(ring, key)])
    assert secret_hash("0" * 16, key.secret) != record.secret_sha256


def _events_of(ring: KeyRing, key: ApiKey) -> list[KeyEvent]:
    principal = ring.records[key.key_id].principal
    return [issue_key(KeyRing(), role=principal.role, enterprise=principal.enterprise, at=T0, key=key)]


def test_authenticate_returns_the_principal_of_a_valid_key() -> None:
    ring = KeyRing()
    key = _issue(ring)
    assert authenticate(ring, key.token, now=T0) == Principal("platform", key.key_id, E1)


@pytest.mark.parametrize("presented", [None, "", "Bearer x", "flk_", "flk_0123456789abcdef_short",
                                       "flk_0123456789abcdef_" + "A" * 43, "x" * 10_000])
def test_missing_malformed_or_unknown_keys_authenticate_nobody(presented: str | None) -> None:
    ring = KeyRing()
    _issue(ring)
    assert authenticate(ring, presented, now=T0) is None


def test_a_known_key_id_with_a_wrong_secret_authenticates_nobody() -> None:
    ring = KeyRing()
    key = _issue(ring)
    other = new_api_key(random_bytes)
    assert authenticate(ring, f"flk_{key.key_id}_{other.secret}", now=T0) is None


def test_revoked_keys_stop_at_once() -> None:
    ring = KeyRing()
    key = _issue(ring)
    ring.apply(revoke_key(ring, key.key_id, at=T0, reason="leaked"))
    assert authenticate(ring, key.token, now=T0) is None
    with pytest.raises(KeyRingError, match="already revoked"):
        revoke_key(ring, key.key_id, at=T0)


def test_rotation_without_grace_ends_the_old_key_at_once() -> None:
    ring = KeyRing()
    old = _issue(ring)
    new = new_api_key(random_bytes)
    ring.apply(rotate_key(ring, old.key_id, at=T0, key=new))
    assert authenticate(ring, old.token, now=T0) is None
    assert authenticate(ring, new.token, now=T0) == Principal("platform", new.key_id, E1)


def test_rotation_with_grace_keeps_the_old_key_until_the_given_time() -> None:
    ring = KeyRing()
    old = _issue(ring)
    new = new_api_key(random_bytes)
    until = T0 + timedelta(days=7)
    ring.apply(rotate_key(ring, old.key_id, at=T0, key=new, grace_until=until))
    assert authenticate(ring, old.token, now=until - timedelta(seconds=1)) is not None
    assert ring.records[old.key_id].state(until - timedelta(seconds=1)) == "in_grace"
    assert authenticate(ring, old.token, now=until) is None
    assert ring.records[old.key_id].state(until) == "retired"
    assert authenticate(ring, new.token, now=until) is not None


def test_revoking_during_grace_ends_the_old_key() -> None:
    ring = KeyRing()
    old = _issue(ring)
    successor = new_api_key(random_bytes)
    ring.apply(rotate_key(ring, old.key_id, at=T0, key=successor, grace_until=T0 + timedelta(days=1)))
    ring.apply(revoke_key(ring, old.key_id, at=T0 + timedelta(hours=1)))
    assert authenticate(ring, old.token, now=T0 + timedelta(hours=2)) is None


@pytest.mark.parametrize("grace", [timedelta(0), -timedelta(seconds=1),
                                   MAX_ROTATION_GRACE + timedelta(seconds=1)])
def test_grace_must_be_explicit_and_bounded(grace: timedelta) -> None:
    ring = KeyRing()
    old = _issue(ring)
    with pytest.raises(KeyRingError, match="grace_until"):
        rotate_key(ring, old.key_id, at=T0, key=new_api_key(random_bytes), grace_until=T0 + grace)


def test_a_key_is_rotated_once_and_a_revoked_key_not_at_all() -> None:
    ring = KeyRing()
    old = _issue(ring)
    ring.apply(rotate_key(ring, old.key_id, at=T0, key=new_api_key(random_bytes)))
    with pytest.raises(KeyRingError, match="already rotated"):
        rotate_key(ring, old.key_id, at=T0, key=new_api_key(random_bytes))
    other = _issue(ring, "hr_bureau", None)
    ring.apply(revoke_key(ring, other.key_id, at=T0))
    with pytest.raises(KeyRingError, match="revoked"):
        rotate_key(ring, other.key_id, at=T0, key=new_api_key(random_bytes))
    with pytest.raises(KeyRingError, match="no key"):
        revoke_key(ring, "0" * 16, at=T0)


@pytest.mark.parametrize(("role", "enterprise", "match"), [
    ("platform", None, "needs the platform's enterprise"),
    ("platform", "91320213MA1XY0001X", "not a valid unified social credit code"),
    ("hr_bureau", E1, "not bound to an enterprise"),
    ("mayor", None, "is not one of"),
])
def test_issue_checks_role_and_enterprise(role: str, enterprise: str | None, match: str) -> None:
    with pytest.raises(KeyRingError, match=match):
        issue_key(KeyRing(), role=role, enterprise=enterprise, at=T0, key=new_api_key(random_bytes))  # type: ignore[arg-type]


def test_commands_refuse_naive_times_and_reused_key_ids() -> None:
    ring = KeyRing()
    key = _issue(ring)
    with pytest.raises(KeyRingError, match="UTC offset"):
        issue_key(ring, role="operator", at=T0.replace(tzinfo=None), key=new_api_key(random_bytes))
    with pytest.raises(KeyRingError, match="already used"):
        issue_key(ring, role="operator", at=T0, key=key)


_ROLES = st.sampled_from(ROLES)
_COMMANDS = st.lists(st.tuples(st.sampled_from(["issue", "rotate", "rotate_grace", "revoke"]), _ROLES,
                               st.integers(0, 20), st.integers(0, 3600 * 24 * 40)), max_size=25)


@given(_COMMANDS)
def test_replaying_the_stored_events_rebuilds_the_same_ring(
    commands: list[tuple[str, Role, int, int]],
) -> None:
    ring, events, keys = KeyRing(), [], list[ApiKey]()
    rand = counting_random(7)
    for step, (command, role, pick, offset_s) in enumerate(commands):
        at = T0 + timedelta(minutes=step)
        event: KeyEvent
        try:
            if command == "issue" or not keys:
                key = new_api_key(rand)
                enterprise = E1 if role == "platform" else None
                event = issue_key(ring, role=role, enterprise=enterprise, at=at, key=key)
                keys.append(key)
            elif command.startswith("rotate"):
                key = new_api_key(rand)
                grace = at + timedelta(seconds=offset_s) if command == "rotate_grace" else None
                event = rotate_key(ring, keys[pick % len(keys)].key_id, at=at, key=key, grace_until=grace)
                keys.append(key)
            else:
                event = revoke_key(ring, keys[pick % len(keys)].key_id, at=at)
        except KeyRingError:
            continue
        ring.apply(event)
        events.append(event_to_dict(event))
    stored = json.loads(json.dumps(events))
    replayed = KeyRing.from_events(event_from_dict(e) for e in stored)
    assert replayed == ring
    later = T0 + timedelta(days=60)
    for key in keys:
        for now in (T0 + timedelta(minutes=len(commands)), later):
            assert authenticate(replayed, key.token, now=now) == authenticate(ring, key.token, now=now)


def test_malformed_stored_events_are_named() -> None:
    with pytest.raises(KeyRingError, match="unknown kind"):
        event_from_dict({"kind": "key_lost"})
    with pytest.raises(KeyRingError, match="malformed"):
        event_from_dict({"kind": "key_issued", "key_id": "x"})


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer flk_a_b", "flk_a_b"), ("bearer  flk_a_b ", "flk_a_b"), ("Basic abc", None), ("Bearer", None),
    (None, None), ("Bearer " + "x" * 1000, None),
])
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
