"""Eligibility's subject states in memory, within a budget in bytes (issue 15.1, docs/design/scale.md).

Two tiers, least recently used first in each:
- live: states as objects, ready to decide. A state's size is estimated from its chain's length
  (`estimated_bytes`: measured with tracemalloc on the generated city, where a 16-event subject averaged
  5.9 KB as computed and 9.1 KB as read back from a snapshot, whose unpickled strings are not shared).
  They get at most `1 / LIVE_SHARE` of the budget: enough for the subjects of a few batches. (Half would
  keep a 100,000-fact run's 20,000 subjects live, but costs more CPU and memory on a city year:
  docs/design/scale.md.)
- packed: states evicted from the live tier, pickled and compressed as a snapshot is (about 0.5 KB for
  a worker's year against 6-9 KB as objects), counted by their real size. Taken back into the live
  tier when asked for. So a city's 100,000 subjects fit in 256 MB, and a subject seen a month ago is
  unpacked from memory instead of read from its snapshot and the chain's events after it.
A state that leaves both tiers is read again from its snapshot and its chain (`subject_snapshots`);
`trim` returns those leaving with events their snapshot lacks, for the caller to save as snapshots.

Entries are evicted only by `trim`, which the caller runs between batches: a batch's states are never
packed while it changes them, and a packed state is always one whose events are committed.
No I/O here: the application packs with `subject_snapshots.StatePacker` and saves what `trim` returns.
"""

from __future__ import annotations

import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

# The estimate of one live state: a fixed part, and a part per event of its chain (the worker file's
# facts and the lines and decisions they made). Measured 370 bytes per event as computed, 565 as
# unpickled from a snapshot; rounded up to the larger.
STATE_BYTES = 1_500
EVENT_BYTES = 600
# One packed entry besides its bytes object: its key (a UUID and its int), the dict's slot and the
# entry itself (measured 239 bytes with tracemalloc; rounded up).
PACKED_ENTRY_BYTES = 256
LIVE_SHARE = 8  # the live tier holds at most budget / LIVE_SHARE


class Sized(Protocol):
    @property
    def events(self) -> int: ...

    snapshot_version: int  # the chain version of the subject's latest saved snapshot (0: none)


S = TypeVar("S", bound=Sized)


def estimated_bytes(events: int) -> int:
    return STATE_BYTES + EVENT_BYTES * events


@dataclass(slots=True)
class _Packed:
    packed: bytes
    counted: int  # bytes, as counted against the budget
    events: int
    snapshot_version: int


class SubjectCache(Generic[S]):
    """States by chain id, live or packed, their bytes (estimated live, real packed) within
    `budget_bytes` after each `trim`."""

    def __init__(self, budget_bytes: int, pack: Callable[[S], bytes], unpack: Callable[[bytes], S]) -> None:
        assert budget_bytes > 0
        self.budget_bytes = budget_bytes
        self.live_budget_bytes = budget_bytes // LIVE_SHARE
        self._pack = pack
        self._unpack = unpack
        self.live_bytes = 0
        self.packed_bytes = 0
        self._live: OrderedDict[uuid.UUID, tuple[S, int]] = OrderedDict()  # state, bytes counted
        self._packed: OrderedDict[uuid.UUID, _Packed] = OrderedDict()

    @property
    def total_bytes(self) -> int:
        return self.live_bytes + self.packed_bytes

    def __len__(self) -> int:
        return len(self._live) + len(self._packed)

    def __contains__(self, chain_id: uuid.UUID) -> bool:
        return chain_id in self._live or chain_id in self._packed

    def get(self, chain_id: uuid.UUID) -> S | None:
        """The state, live (unpacked if it was packed), now the most recently used; None if not held."""
        found = self._live.get(chain_id)
        if found is not None:
            self._live.move_to_end(chain_id)
            return found[0]
        packed = self._packed.pop(chain_id, None)
        if packed is None:
            return None
        self.packed_bytes -= packed.counted
        state = self._unpack(packed.packed)
        state.snapshot_version = packed.snapshot_version
        self._keep_live(chain_id, state)
        return state

    def peek(self, chain_id: uuid.UUID) -> S | None:
        """The state if it is live, else None; nothing moves (safe from another thread: one dict read)."""
        found = self._live.get(chain_id)
        return None if found is None else found[0]

    def put(self, chain_id: uuid.UUID, state: S) -> None:
        """Keep `state` live (again, after it grew: counted again). Evicts nothing: see `trim`."""
        self.pop(chain_id)
        self._keep_live(chain_id, state)

    def pop(self, chain_id: uuid.UUID) -> None:
        live = self._live.pop(chain_id, None)
        if live is not None:
            self.live_bytes -= live[1]
        packed = self._packed.pop(chain_id, None)
        if packed is not None:
            self.packed_bytes -= packed.counted

    def trim(self) -> list[tuple[uuid.UUID, int, bytes]]:
        """Pack the least recently used live states beyond the live tier's share, then drop the least
        recently used packed ones beyond the budget. Returns those dropped whose snapshot is behind
        them, as (chain id, version, packed state): only states whose events are committed may be held
        when this runs."""
        while self.live_bytes > self.live_budget_bytes and len(self._live) > 1:
            chain_id, (state, counted) = self._live.popitem(last=False)
            self.live_bytes -= counted
            packed = self._pack(state)
            entry = _Packed(packed, sys.getsizeof(packed) + PACKED_ENTRY_BYTES, state.events,
                            state.snapshot_version)
            self._packed[chain_id] = entry
            self.packed_bytes += entry.counted
        unsaved = []
        while self.total_bytes > self.budget_bytes and self._packed:
            chain_id, entry = self._packed.popitem(last=False)
            self.packed_bytes -= entry.counted
            if entry.events > entry.snapshot_version:
                unsaved.append((chain_id, entry.events, entry.packed))
        return unsaved

    def report(self) -> dict[str, int]:
        """For /health: the states held and the bytes counted against the budget."""
        return {"budget_bytes": self.budget_bytes, "bytes": self.total_bytes, "live_states": len(self._live),
                "live_bytes": self.live_bytes, "packed_states": len(self._packed),
                "packed_bytes": self.packed_bytes}

    def _keep_live(self, chain_id: uuid.UUID, state: S) -> None:
        size = estimated_bytes(state.events)
        self._live[chain_id] = (state, size)
        self.live_bytes += size
