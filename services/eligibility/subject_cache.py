"""Eligibility's subject states in memory, within a budget in bytes (issue 15.1, docs/design/scale.md).

A state's size is estimated from its chain's length (`estimated_bytes`: measured with tracemalloc on
the generated city, where a 16-event subject averaged 5.9 KB as computed and 9.1 KB as read back from
a snapshot, whose unpickled strings are not shared), so the budget holds the most
states it can whether subjects are short or long; the least recently used go first. A state that
falls out is read again from its snapshot and the chain's events after it (`subject_snapshots`).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

# The estimate of one state: a fixed part, and a part per event of its chain (the worker file's facts
# and the lines and decisions they made). Measured 370 bytes per event as computed, 565 as unpickled
# from a snapshot; rounded up to the larger.
STATE_BYTES = 1_500
EVENT_BYTES = 600


class Sized(Protocol):
    @property
    def events(self) -> int: ...


S = TypeVar("S", bound=Sized)


def estimated_bytes(events: int) -> int:
    return STATE_BYTES + EVENT_BYTES * events


class SubjectCache(Generic[S]):
    """States by chain id, least recently used first, their estimated bytes within `budget_bytes`."""

    def __init__(self, budget_bytes: int) -> None:
        assert budget_bytes > 0
        self.budget_bytes = budget_bytes
        self.bytes = 0
        self._states: OrderedDict[uuid.UUID, tuple[S, int]] = OrderedDict()  # state, bytes counted

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, chain_id: uuid.UUID) -> bool:
        return chain_id in self._states

    def get(self, chain_id: uuid.UUID) -> S | None:
        found = self._states.get(chain_id)
        if found is None:
            return None
        self._states.move_to_end(chain_id)
        return found[0]

    def put(self, chain_id: uuid.UUID, state: S) -> None:
        """Keep `state` (again, after it grew), evicting the least recently used beyond the budget."""
        self.pop(chain_id)
        size = estimated_bytes(state.events)
        self._states[chain_id] = (state, size)
        self.bytes += size
        while self.bytes > self.budget_bytes and len(self._states) > 1:
            _, (_, evicted) = self._states.popitem(last=False)
            self.bytes -= evicted

    def pop(self, chain_id: uuid.UUID) -> None:
        found = self._states.pop(chain_id, None)
        if found is not None:
            self.bytes -= found[1]
