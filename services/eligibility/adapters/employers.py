"""Who employs a worker, for the decisions topic: the enterprises that named the worker in an accepted
fact (a report, a correction, a training record) — the relation eligibility's read side folds into
`eligibility_employment` (docs/design/http-auth.md). The decision relay stamps it on the decisions of a
fact about a worker that names no enterprise (a contribution, a category), so that payments, which
never sees facts, can show a platform the orders paid to its workers and nobody else's.

Every fact naming a worker is in that worker's chain, so the employers "before" a processed fact are
read from the chain itself, up to the fact's version: the same answer whenever the relay publishes it
again. Each worker's answer is kept and extended from the chain's newer events only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.eligibility.aggregates import DecisionChain
from services.eligibility.application import EligibilityApplication

MAX_WORKERS_KEPT = 10_000  # beyond this the oldest answers are dropped (a few MB; read again when needed)


def named(fact: Any, name: str) -> str | None:
    """The string value of a fact's field `name`, else None."""
    value = fact.get(name) if isinstance(fact, dict) else None
    return value if isinstance(value, str) else None


def needs_employers(stored: DecisionChain.FactProcessed) -> bool:
    """A processed fact with decisions, about a worker, naming no enterprise."""
    return (bool(stored.decisions) and named(stored.fact, "enterprise") is None
            and named(stored.fact, "worker") is not None)


class Employers:
    """The employers of workers as of a position in their chains, read from the event store."""

    def __init__(self, app: EligibilityApplication) -> None:
        self.app = app
        # (book, worker) -> (the chain version folded up to, the enterprises named up to it)
        self._known: dict[tuple[str, str], tuple[int, frozenset[str]]] = {}

    def before(self, processed: Sequence[DecisionChain.FactProcessed]) -> dict[int, list[str]]:
        """For each processed fact that `needs_employers` (by its index in `processed`): the enterprises
        that named its worker in an accepted fact earlier in the worker's chain, sorted. One query."""
        out: dict[int, list[str]] = {}
        wanted = {}
        for i, s in enumerate(processed):
            if needs_employers(s):
                if (live := self._from_live_chain(s)) is not None:
                    out[i] = live
                else:
                    wanted[i] = s
        starts: dict[Any, int] = {}
        for s in wanted.values():
            version, _ = self._known.get((s.book, s.subject), (0, frozenset()))
            if version >= s.originator_version:  # published again: read the chain from its start
                self._known.pop((s.book, s.subject), None)
                version = 0
            chain_id = self.app.chain_id(s.book, s.subject)
            starts[chain_id] = min(starts.get(chain_id, version), version)
        newer = self.app.events_after(starts) if starts else {}
        for i, s in sorted(wanted.items()):
            events = newer.get(self.app.chain_id(s.book, s.subject), ())
            out[i] = sorted(self._fold(s.book, s.subject, events, s.originator_version))
        return out

    def _from_live_chain(self, s: DecisionChain.FactProcessed) -> list[str] | None:
        """The answer from the subject's chain in eligibility's cache when that chain ends with this
        very event (same version, same hash: so every earlier link is the stored one), else None.
        Read in this order because the consumer's thread may be appending meanwhile: a chain read
        half-way through an append fails the check, and `employers` only ever grows by later versions."""
        chain = self.app.live_chain(self.app.chain_id(s.book, s.subject))
        if chain is None:
            return None
        head, version, employers = chain.head, chain.version, chain.employers
        if head != s.hash or version != s.originator_version:
            return None
        return sorted({enterprise for first, enterprise in employers if first < version})

    def _fold(self, book: str, worker: str, events: Iterable[Any], before_version: int) -> frozenset[str]:
        version, found = self._known.get((book, worker), (0, frozenset()))
        added = set(found)
        for event in events:
            if version < event.originator_version < before_version:
                version = event.originator_version
                enterprise = named(getattr(event, "fact", None), "enterprise")
                if enterprise is not None and getattr(event, "outcome", None) == "accepted":
                    added.add(enterprise)
        found = frozenset(added)
        self._known.pop((book, worker), None)
        if len(self._known) >= MAX_WORKERS_KEPT:
            del self._known[next(iter(self._known))]
        self._known[(book, worker)] = (version, found)
        return found
