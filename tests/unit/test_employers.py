"""The employers eligibility's decision relay stamps on a decision of a fact naming no enterprise
(services/eligibility/adapters/employers.py): the enterprises that named the worker in an accepted fact
earlier in the worker's chain; read once, then extended from the chain's newer events only."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from services.eligibility.adapters.employers import Employers

W, E2, E3, E9 = "320205199907043032", "91320211MA1XY0003X", "91320213MA1XY0001L", "91320200MA1XY0009A"
CHAIN = uuid.uuid4()


def fact(version: int, fact: dict[str, Any], outcome: str = "accepted", decisions: int = 0) -> Any:
    return SimpleNamespace(book="b", subject=W, originator_version=version, fact=fact, outcome=outcome,
                           decisions=[{"kind": "grant"}] * decisions)


def report(enterprise: str) -> dict[str, Any]:
    return {"type": "monthly_report", "enterprise": enterprise, "worker": W}


CONTRIBUTION = {"type": "contribution_paid", "worker": W}


class FakeApp:
    def live_chain(self, chain_id: uuid.UUID) -> Any:
        return None  # nothing cached: every answer is read from the store

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.asked: list[dict[uuid.UUID, int]] = []

    def chain_id(self, book: str, subject: str) -> uuid.UUID:
        return CHAIN

    def events_after(self, versions: dict[uuid.UUID, int]) -> dict[uuid.UUID, list[Any]]:
        self.asked.append(dict(versions))
        return {CHAIN: [e for e in self.events if e.originator_version > versions[CHAIN]]}


def test_the_employers_before_a_fact_are_the_enterprises_of_earlier_accepted_facts() -> None:
    chain = [
        SimpleNamespace(originator_version=1),  # Opened
        fact(2, {"type": "worker_registered", "worker": W}),
        fact(3, report(E2)),
        fact(4, report(E9), outcome="rejected", decisions=1),
        fact(5, CONTRIBUTION, decisions=1),
        fact(6, report(E3)),
        fact(7, CONTRIBUTION, decisions=1),
    ]
    app = FakeApp(chain)
    employers = Employers(app)  # type: ignore[arg-type]
    # only the contribution (a fact about a worker naming no enterprise, with decisions) is stamped
    assert employers.before(chain[3:5]) == {1: [E2]}
    assert employers.before(chain[5:7]) == {1: [E2, E3]}
    assert app.asked[-1] == {CHAIN: 4}  # the second read went on from what the first had folded
    assert employers.before([chain[4]]) == {0: [E2]}  # published again: the same answer
    assert app.asked[-1] == {CHAIN: 0}
    assert employers.before([chain[2], chain[5]]) == {}  # facts naming an enterprise: no stamp, no read
    assert len(app.asked) == 3


def test_a_live_chain_ending_with_the_fact_answers_without_reading_the_store() -> None:
    from services.eligibility.aggregates import DecisionChain

    chain = DecisionChain._create(DecisionChain.Opened, id=CHAIN, book="b", subject=W)
    facts = [(report(E2), "accepted", []), (report(E9), "rejected", []), (report(E3), "accepted", []),
             (CONTRIBUTION, "accepted", [{"kind": "grant"}])]
    for seq, (content, outcome, decisions) in enumerate(facts, start=1):
        chain.record(seq=seq, fact_id=f"f{seq}", outcome=outcome, fact=content, reason=None, digest="d",
                     decisions=decisions, rule_set="r", trace_id=None, traceparent=None, tracestate=None)
    events = chain.collect_events()
    contribution = events[-1]

    class LiveApp(FakeApp):
        live: Any = chain

        def live_chain(self, chain_id: uuid.UUID) -> Any:
            return self.live

    app = LiveApp(events)
    employers = Employers(app)  # type: ignore[arg-type]
    assert employers.before([contribution]) == {0: [E2, E3]} and app.asked == []
    # A chain that has gone on (or is another history: another hash) is not trusted: the store is read.
    chain.record(seq=5, fact_id="f5", outcome="accepted", fact=report(E9), reason=None, digest="d",
                 decisions=[], rule_set="r", trace_id=None, traceparent=None, tracestate=None)
    assert employers.before([contribution]) == {0: [E2, E3]} and len(app.asked) == 1
    app.live = None
    assert employers.before([contribution]) == {0: [E2, E3]}
