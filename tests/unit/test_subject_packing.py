"""Eligibility's packed subject states (issue 15.1, docs/design/scale.md): a state taken back from its
packed form decides exactly as the state that was packed. A cache whose live tier holds one state packs
every other subject after each fact; the decisions stay the engine's."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from flexledger.engine import Engine
from services.eligibility.application import (
    SubjectState,
    decide_and_append,
    pack_state,
    rebuild_subject,
    unpack_state,
)
from services.eligibility.domain.ruleset import IN_FORCE
from services.eligibility.subject_cache import SubjectCache

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from generate import generate_facts

from tests.unit.fact_messages import recorded_messages


def test_states_taken_back_from_their_packed_form_decide_as_the_engine() -> None:
    book = "main"
    messages, recorded = recorded_messages(book, list(generate_facts(8, None, 12, 11)))
    cache = SubjectCache[SubjectState](100_000, pack_state, unpack_state)
    cache.live_budget_bytes = 12_500  # about one state live; the rest of the budget holds the packed
    decided = []
    unpacked = 0
    for message in messages:
        chain_id = uuid.uuid5(uuid.NAMESPACE_OID, message.subject)
        packed_before = cache.report()["packed_states"]
        state = cache.get(chain_id)
        unpacked += cache.report()["packed_states"] < packed_before
        if state is None:
            state = rebuild_subject(chain_id, book, message.subject, [], IN_FORCE)
        decided.extend(d.to_dict() for d in decide_and_append(state, message, None, {}))
        state.chain.collect_events()  # as if committed
        cache.put(chain_id, state)
        assert cache.trim() == []  # the budget holds every packed state
    assert unpacked > len(messages) // 2  # most facts were decided by an unpacked state
    assert decided == [d.to_dict() for d in Engine(book=book).run(recorded)]


def test_every_process_packs_with_the_same_dictionary() -> None:
    """A snapshot written by one instance is read by the others and after a restart: the dictionary
    (a sample state's pickle) and so the format must not depend on the process (clock, hash seed)."""
    import os
    import subprocess

    from services.eligibility.application import state_packer

    script = "from services.eligibility.application import state_packer; print(state_packer().format)"
    for seed in ("1", "2"):
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": seed},
                               cwd=Path(__file__).resolve().parents[2])
        assert other.stdout.strip() == state_packer().format


def test_a_packed_state_holds_only_its_bytes() -> None:
    """The packed tier is counted by the packed states' length: the memory each holds must be that, not
    the compressor's output buffer (zstandard's is about the pickle's size, three times the result)."""
    import tracemalloc

    book = "main"
    messages, _ = recorded_messages(book, list(generate_facts(40, None, 12, 5)))
    states: dict[str, SubjectState] = {}
    for message in messages:
        state = states.get(message.subject) or rebuild_subject(
            uuid.uuid5(uuid.NAMESPACE_OID, message.subject), book, message.subject, [], IN_FORCE)
        decide_and_append(state, message, None, {})
        state.chain.collect_events()
        states[message.subject] = state
    for state in states.values():  # the thread's zstd contexts and pickle's caches, made once, are not
        pack_state(state)          # counted
    tracemalloc.start()
    try:
        packed = [pack_state(state) for _ in range(10) for state in states.values()]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    objects = sum(sys.getsizeof(one) for one in packed) + sys.getsizeof(packed)
    # Measured 1.3 times (free lists keep some of pickling's temporaries), 3.2 before the copy.
    assert held <= objects * 1.5, (held, objects)
