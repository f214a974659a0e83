"""The bounded structures of issue 15.1 (docs/design/scale.md): intake's month keys and fact-id cache,
eligibility's subject cache by bytes."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from services.eligibility.subject_cache import LIVE_SHARE, PACKED_ENTRY_BYTES, SubjectCache, estimated_bytes
from services.intake.domain.registry import MonthKeys
from services.intake.known_fact_ids import KnownFactIds, KnownId

months = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1990, 2110), st.integers(1, 12))
keys = st.tuples(st.sampled_from(["E1", "E2"]), st.sampled_from(["W1", "W2", "W3"]), months)


@given(st.lists(st.tuples(st.booleans(), keys), max_size=60))
def test_month_keys_behave_as_the_plain_set(operations: list[tuple[bool, tuple[str, str, str]]]) -> None:
    compact, plain = MonthKeys(), set()
    for add, key in operations:
        if add:
            compact.add(key)
            plain.add(key)
        else:
            compact.discard(key)
            plain.discard(key)
        assert (key in compact) == (key in plain)
    assert compact == plain and len(compact) == len(plain) and set(compact) == plain


def test_the_fact_id_cache_evicts_the_least_recently_used_only_when_trimmed() -> None:
    cache = KnownFactIds[str](capacity=2)
    book = cache.of_book("main")
    for fact_id in ("a", "b", "c"):
        book.remember_first(fact_id, f"digest-{fact_id}")
        book.set_result(fact_id, f"digest-{fact_id}", f"result-{fact_id}", conflict=False)
    assert len(cache) == 3  # a batch is never trimmed while it is checked
    assert book.first_digest("a") == "digest-a"  # a is now the most recently used
    cache.trim()
    assert cache.missing([("main", "a"), ("main", "b"), ("main", "c"), ("other", "a")]) == [
        ("main", "b"), ("other", "a")]
    book.remember_reuse("a", "digest-x")
    book.set_result("a", "digest-x", "conflict-x", conflict=True)
    assert book.is_recorded_reuse("a", "digest-x") and not book.is_recorded_reuse("a", "digest-y")
    assert book.original("a", "digest-x", conflict=True) == "conflict-x"
    assert book.original("a", "digest-a", conflict=False) == "result-a"
    cache.put("main", "b", KnownId("digest-b", "result-b"))  # recalled from the store
    cache.forget_book("main")
    assert len(cache) == 0


@dataclass
class _State:
    events: int
    snapshot_version: int = 0


def _pack(state: _State) -> bytes:
    return f"{state.events}".encode() * 100  # a packed state has its own, real size


def _unpack(packed: bytes) -> _State:
    return _State(int(packed[: len(packed) // 100]))


def _cache(budget_bytes: int) -> SubjectCache[_State]:
    return SubjectCache[_State](budget_bytes, _pack, _unpack)


def test_the_subject_cache_packs_the_least_recently_used_beyond_its_live_share() -> None:
    budget = estimated_bytes(10) * 3 * LIVE_SHARE
    cache = _cache(budget)
    ids = [uuid.uuid4() for _ in range(5)]
    for chain_id in ids:
        cache.put(chain_id, _State(10))
    assert cache.live_bytes == estimated_bytes(10) * 5  # nothing is evicted while a batch is decided
    assert cache.trim() == []
    assert cache.report()["live_states"] == 3 and cache.report()["packed_states"] == 2
    assert cache.live_bytes <= cache.live_budget_bytes and cache.total_bytes <= budget
    assert cache.packed_bytes == 2 * (sys.getsizeof(_pack(_State(10))) + PACKED_ENTRY_BYTES)
    assert all(chain_id in cache for chain_id in ids)
    unpacked = cache.get(ids[0])  # taken back live, as it was
    assert unpacked == _State(10) and cache.report()["packed_states"] == 1
    unpacked.events = 30  # it grew by a commit: counted again
    cache.put(ids[0], unpacked)
    assert cache.live_bytes == estimated_bytes(10) * 3 + estimated_bytes(30)
    cache.pop(ids[1])
    assert ids[1] not in cache and cache.report()["packed_states"] == 0


def test_the_subject_cache_drops_packed_states_beyond_its_budget_and_returns_the_unsaved() -> None:
    packed_size = sys.getsizeof(_pack(_State(10))) + PACKED_ENTRY_BYTES
    budget = estimated_bytes(10) * LIVE_SHARE  # one live state, the rest of the budget packed
    cache = _cache(budget)
    fit = (budget - estimated_bytes(10)) // packed_size  # packed states that fit beside the live one
    ids = [uuid.uuid4() for _ in range(fit + 3)]
    dropped = []
    for n, chain_id in enumerate(ids):
        cache.put(chain_id, _State(10, snapshot_version=10 if n == 1 else 0))  # the second is saved
        dropped.extend(cache.trim())
        assert cache.total_bytes <= budget
    # the first two fell out; only the first is ahead of its snapshot
    assert dropped == [(ids[0], 10, _pack(_State(10)))]
    assert ids[0] not in cache and ids[1] not in cache and ids[2] in cache
    assert len(cache) == fit + 1
