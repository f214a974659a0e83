"""Eligibility reads a subject it does not hold from the subject's latest snapshot and the chain's events
after it (issue 15.1): the decisions stay exactly the engine's.

Two instances take turns, one fact each: each finds the other appended to the chain since it last held
the subject, so every fact is decided from a state read again from the store (snapshot plus tail)."""

from __future__ import annotations

import sys
import uuid
from itertools import cycle
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from flexledger.engine import Engine
from services.eligibility.aggregates import chain_content
from services.eligibility.application import EligibilityApplication, FactOutcome
from services.eligibility.domain.chain import verify_chain
from services.eligibility.subject_snapshots import TABLE
from services.runtime.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from generate import generate_facts

from tests.unit.fact_messages import recorded_messages

pytestmark = pytest.mark.integration



def test_subjects_read_from_snapshots_decide_as_the_engine(infra: Settings) -> None:
    book = f"snap-{uuid.uuid4().hex[:12]}"
    messages, recorded = recorded_messages(book, list(generate_facts(6, None, 12, 7)))
    source = f"kafka:test-snapshots-{uuid.uuid4().hex[:8]}:0"
    a, b = EligibilityApplication(infra), EligibilityApplication(infra)
    decided: list[dict[str, Any]] = []
    try:
        for app, (offset, message) in zip(cycle((a, b)), enumerate(messages)):
            [(outcome, decisions)] = app.process_batch([(message, Tracking(source, offset), None, {})])
            assert outcome is FactOutcome.PROCESSED
            decided.extend(d.to_dict() for d in decisions)

        assert decided == [d.to_dict() for d in Engine(book=book).run(recorded)]
        chain_ids = [a.chain_id(book, subject) for subject in {m.subject for m in messages}]
        query = f"SELECT count(*) FROM eligibility.{TABLE} WHERE chain_id = ANY(%s)"
        with psycopg.connect(infra.pg_dsn()) as conn:
            [(snapshots,)] = conn.execute(query, (chain_ids,)).fetchall()
        assert snapshots > 0
        for subject in {m.subject for m in messages}:
            stream = a.stream_events(book, subject)
            assert [e.seq for e in stream] == [m.seq for m in messages if m.subject == subject]
            assert verify_chain([(chain_content(e.__dict__), e.hash) for e in stream]) is None
    finally:
        a.close()
        b.close()
