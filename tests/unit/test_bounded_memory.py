"""The bounded structures of issue 15.1 (docs/design/scale.md): intake's month keys and fact-id cache,
eligibility's subject cache by bytes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from services.eligibility.subject_cache import SubjectCache, estimated_bytes
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


def test_the_subject_cache_keeps_its_estimated_bytes_within_the_budget() -> None:
    cache = SubjectCache[_State](budget_bytes=estimated_bytes(10) * 3)
    ids = [uuid.uuid4() for _ in range(5)]
    for chain_id in ids:
        cache.put(chain_id, _State(10))
        assert cache.bytes <= cache.budget_bytes
    assert [chain_id in cache for chain_id in ids] == [False, False, True, True, True]
    grown = cache.get(ids[2])
    assert grown is not None
    grown.events = 30  # it grew by a commit: counted again, and the others make room
    cache.put(ids[2], grown)
    assert [chain_id in cache for chain_id in ids] == [False, False, True, False, False]
    assert cache.bytes == estimated_bytes(30)
