"""Which rule set decides a fact (docs/design/rules.md, "Which rule set decides a fact"): a subject stays
on the rule set it was first decided under; a subject first seen after a new version became current is
decided by the new one; every decision, and every recorded fact, names the rule set that made it.

Drives eligibility's own steps without a database: a subject's state rebuilt from its chain's stored
events (`rebuild_subject`, what the service does for a subject it has not cached), then the fact
decided and appended (`decide_and_append`). The second rule set is test-only: version 1 with one
parameter changed, made current by passing other `RuleSets`.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from strategies import E1, E2

from contracts.messages import FactMessageV1, fact_subject
from services.eligibility.aggregates import DecisionChain
from services.eligibility.application import decide_and_append, rebuild_subject
from services.eligibility.domain.decision import Decision
from services.eligibility.domain.parameters import ParameterTable
from services.eligibility.domain.ruleset import CURRENT, IN_FORCE, WUXI_2021_26_V1, RuleSets
from services.intake.domain.submission import content_digest

V1 = WUXI_2021_26_V1
V2 = dataclasses.replace(V1, id="test-only/2", params=ParameterTable(tuple(
    dataclasses.replace(value, value=1_200_000) if name == "job_standard_fen" else value
    for name in V1.params.names() for value in V1.params.history(name)
)))
BEFORE_V2 = RuleSets(current=V1, known={V1.id: V1})
AFTER_V2 = RuleSets(current=V2, known={V1.id: V1, V2.id: V2})
BOOK = "main"


def registered(fact_id: str, enterprise: str) -> dict[str, Any]:
    return {"id": fact_id, "type": "enterprise_registered", "at": "2021-09-01T10:00:00+08:00",
            "enterprise": enterprise, "name": f"平台 {fact_id}"}


def job_standard(fact_id: str, enterprise: str, job_type: str) -> dict[str, Any]:
    return {"id": fact_id, "type": "job_standard_approved", "at": "2021-10-01T10:00:00+08:00",
            "enterprise": enterprise, "job_type": job_type, "approved_on": "2021-09-28"}


class Store:
    """The chains' stored events, and the facts' seqs, as the service's event store would hold them."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = {}
        self.seq = 0

    def process(self, fact: dict[str, Any], rule_sets: RuleSets) -> list[Decision]:
        """A fact from intake, its subject not cached: rebuilt from its stored events, decided, saved."""
        subject = fact_subject(fact)
        self.seq += 1
        message = FactMessageV1(book=BOOK, seq=self.seq, fact_id=fact["id"], subject=subject,
                                outcome="accepted", fact=fact, digest=content_digest(fact),
                                recorded_at=datetime(2021, 10, 1, tzinfo=UTC))
        stored = self.events.setdefault(subject, [])
        state = rebuild_subject(uuid.uuid5(uuid.NAMESPACE_URL, subject), BOOK, subject, stored, rule_sets)
        decisions = decide_and_append(state, message, None, {})
        stored.extend(state.chain.collect_events())
        return decisions

    def recorded_rule_sets(self, subject: str) -> list[str]:
        return [e.rule_set for e in self.events[subject] if isinstance(e, DecisionChain.FactProcessed)]


def test_the_test_rule_set_differs_from_version_1_in_one_parameter_only() -> None:
    assert V1.value("job_standard_fen", "2021-09-28") == 1_000_000
    assert V2.value("job_standard_fen", "2021-09-28") == 1_200_000
    differing = [name for name in V1.params.names()
                 if V1.params.history(name) != V2.params.history(name)]
    assert differing == ["job_standard_fen"]


def test_an_existing_subject_keeps_its_rule_set_and_a_new_subject_gets_the_current_one() -> None:
    store = Store()
    # Version 1 is current: E1 is registered (no decision, but its chain records the rule set) and
    # gets a job standard grant under version 1.
    assert store.process(registered("f1", E1), BEFORE_V2) == []
    [first] = store.process(job_standard("f2", E1, "网约配送员"), BEFORE_V2)
    assert (first.rule_set, first.amount_fen) == (V1.id, 1_000_000)

    # The test-only version 2 becomes current (the service restarted with it: nothing is cached).
    # E1 stays on version 1; E2, first seen now, is decided by version 2.
    [kept] = store.process(job_standard("f3", E1, "网约车司机"), AFTER_V2)
    assert (kept.rule_set, kept.amount_fen) == (V1.id, 1_000_000)
    assert store.process(registered("f4", E2), AFTER_V2) == []
    [new] = store.process(job_standard("f5", E2, "网约配送员"), AFTER_V2)
    assert (new.rule_set, new.amount_fen) == (V2.id, 1_200_000)

    # Every decision names the rule set that made it, and its explanation cites that rule set's value;
    # every fact in a subject's chain is recorded with the rule set of its subject.
    for decision, amount in ((first, "1000000"), (kept, "1000000"), (new, "1200000")):
        assert decision.explanation is not None and decision.explanation["rule_set"] == decision.rule_set
        assert {"name": "job_standard_fen", "value": amount, "since": "2021-05-31"} in (
            decision.explanation["parameters"])
    assert store.recorded_rule_sets(E1) == [V1.id] * 3
    assert store.recorded_rule_sets(E2) == [V2.id] * 2


def test_a_new_version_re_decides_no_existing_subject() -> None:
    """The decision for E1's second fact is the same whichever version is current when it arrives."""
    decided: dict[str, list[dict[str, Any]]] = {}
    for name, later in (("v1 still current", BEFORE_V2), ("v2 current", AFTER_V2)):
        store = Store()
        store.process(registered("f1", E1), BEFORE_V2)
        store.process(job_standard("f2", E1, "网约配送员"), BEFORE_V2)
        decided[name] = [d.to_dict() for d in store.process(job_standard("f3", E1, "网约车司机"), later)]
    assert decided["v1 still current"] == decided["v2 current"]


def test_rule_sets_for_a_subject() -> None:
    assert AFTER_V2.for_subject(None) is V2
    assert AFTER_V2.for_subject(V1.id) is V1
    assert IN_FORCE.for_subject(None) is CURRENT
    with pytest.raises(LookupError, match="unknown rule set"):
        BEFORE_V2.for_subject(V2.id)
    with pytest.raises(AssertionError):
        RuleSets(current=V2, known={V1.id: V1})  # the current one must be known
