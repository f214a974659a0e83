"""Intake's bounded memory of fact ids (issue 15.1, docs/design/scale.md): what became of the fact
ids used lately, in front of the event store, which has them all.

The first submission of a fact id is the creation event of an aggregate whose id derives from (book,
fact id) (`aggregates.submission_id`), so the event store's unique key (aggregate id, version) is the
idempotency key, and the id's results (its first submission's, and each conflicting content's) can
be read back from its events. This cache keeps the ids of the latest `capacity` submissions over all
books. Before a batch is checked, the ids it names that are not here are read from the store in one
query (`IntakeApplication._recall`): while the batch is checked, an id it names is either here or new.
Entries are evicted only between batches (`trim`), never while one is being checked.

No I/O here: the application reads the store and hands the entries over (`put`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass(slots=True)
class KnownId(Generic[R]):
    """One fact id: the digest of its first content and that submission's result, and the result of
    each other content recorded as a conflict, by digest (None until the submission's seq is known)."""

    digest: str
    result: R | None = None
    conflicts: dict[str, R | None] = field(default_factory=dict)


class KnownFactIds(Generic[R]):
    """The latest fact ids of every book, least recently used first."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0
        self.capacity = capacity
        self._known: OrderedDict[tuple[str, str], KnownId[R]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._known)

    def get(self, book: str, fact_id: str) -> KnownId[R] | None:
        known = self._known.get((book, fact_id))
        if known is not None:
            self._known.move_to_end((book, fact_id))
        return known

    def put(self, book: str, fact_id: str, known: KnownId[R]) -> None:
        self._known[(book, fact_id)] = known
        self._known.move_to_end((book, fact_id))

    def missing(self, wanted: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (book, fact id) pairs of `wanted` that are not here, each once."""
        return [key for key in dict.fromkeys(wanted) if key not in self._known]

    def trim(self) -> None:
        """Evict the least recently used ids beyond the capacity (between batches only)."""
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)

    def clear(self) -> None:
        self._known.clear()

    def forget_book(self, book: str) -> None:
        """Drop every id of `book` (its state is being read again from the store)."""
        for key in [key for key in self._known if key[0] == book]:
            del self._known[key]

    def of_book(self, book: str) -> BookFactIds[R]:
        return BookFactIds(self, book)


@dataclass(frozen=True, slots=True)
class BookFactIds(Generic[R]):
    """One book's view of the cache: the `FactIdMemory` its `IntakeBook` checks against."""

    cache: KnownFactIds[R]
    book: str

    def first_digest(self, fact_id: str) -> str | None:
        known = self.cache.get(self.book, fact_id)
        return None if known is None else known.digest

    def is_recorded_reuse(self, fact_id: str, digest: str) -> bool:
        known = self.cache.get(self.book, fact_id)
        return known is not None and digest in known.conflicts

    def remember_first(self, fact_id: str, digest: str) -> None:
        self.cache.put(self.book, fact_id, KnownId(digest))

    def remember_reuse(self, fact_id: str, digest: str) -> None:
        known = self.cache.get(self.book, fact_id)
        if known is not None:  # else evicted while the log was read: recalled from the store when needed
            known.conflicts[digest] = None

    def set_result(self, fact_id: str, digest: str, result: R, conflict: bool) -> None:
        """The result of the submission just remembered (`remember_first` / `remember_reuse`)."""
        known = self.cache.get(self.book, fact_id)
        if known is None:
            return
        if conflict:
            known.conflicts[digest] = result
        else:
            known.result = result

    def original(self, fact_id: str, digest: str, conflict: bool) -> R:
        """The original result of a duplicate: of the id's first submission, or of the conflict with
        this content."""
        known = self.cache.get(self.book, fact_id)
        assert known is not None, "a duplicate's fact id is known"
        result = known.conflicts.get(digest) if conflict else known.result
        assert result is not None, "a duplicate's original was recorded"
        return result
