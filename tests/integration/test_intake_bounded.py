"""Intake keeps only the latest fact ids in memory (issue 15.1): an id it evicted is answered from the
event store exactly as it was when it was in memory, duplicates, conflicts and repeated conflicts alike."""

from __future__ import annotations

from dataclasses import replace

import pytest
from intake_support import book, enterprise_registered

from services.intake.application import Incoming, IntakeApplication, Result
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

CARRIER: dict[str, str] = {}


def test_evicted_fact_ids_are_answered_from_the_store(infra: Settings) -> None:
    app = IntakeApplication(replace(infra, intake_fact_ids_cached=1))
    try:
        mine = book()
        first, second = enterprise_registered("e1"), enterprise_registered("e2")
        other = {**first, "name": "other content"}
        assert [r.seq for r in app.submit_many(mine, [Incoming(first), Incoming(second)], CARRIER)] == [1, 2]
        assert len(app.known) == 1  # e1 was evicted after the batch

        [again] = app.submit_many(mine, [Incoming(first)], CARRIER)
        assert again == Result("accepted", first["id"], 1, replayed=True)
        app.submit_many(mine, [Incoming(second)], CARRIER)  # evicts e1 again
        [conflict] = app.submit_many(mine, [Incoming(other)], CARRIER)
        assert (conflict.outcome, conflict.seq, conflict.conflict, conflict.replayed) == ("rejected", 3, True,
                                                                                          False)
        app.submit_many(mine, [Incoming(second)], CARRIER)
        [repeated] = app.submit_many(mine, [Incoming(other)], CARRIER)
        assert repeated == replace(conflict, replayed=True)  # the conflict is not recorded twice
        assert app.last_seq(mine) == 3
    finally:
        app.close()


def test_a_rebuild_keeps_only_the_latest_ids_and_answers_the_others_from_the_store(infra: Settings) -> None:
    writer = IntakeApplication(infra)
    mine = book()
    facts = [enterprise_registered(f"e{n}") for n in range(5)]
    try:
        writer.submit_many(mine, [Incoming(fact) for fact in facts], CARRIER)
    finally:
        writer.close()
    app = IntakeApplication(replace(infra, intake_fact_ids_cached=2))
    try:
        app.rebuild()
        assert len(app.known) <= 2 + 1000  # trimmed as the log is read
        results = app.submit_many(mine, [Incoming(fact) for fact in facts], CARRIER)
        assert [(r.seq, r.replayed) for r in results] == [(n, True) for n in range(1, 6)]
        assert app.last_seq(mine) == 5
    finally:
        app.close()
