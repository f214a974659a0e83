"""Eligibility records facts in batches (one transaction per consumed batch): a redelivered batch, a
batch read again by another instance, and a batch whose streams another instance appended to in the
meantime change nothing that should not change — the ledger stays the engine's, its chains intact.

This drives `EligibilityApplication.process_batch` directly (no Kafka): the consumer calls it with
consecutive records, and Kafka redelivers a batch when a process dies before committing offsets.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Tracking

from contracts.messages import FactMessageV1, fact_subject
from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario
from services.eligibility.aggregates import chain_content
from services.eligibility.application import EligibilityApplication, FactOutcome
from services.eligibility.domain.chain import verify_chain
from services.intake.domain.submission import IntakeBook
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
NOTHING = {FactOutcome.REPUBLISHED, FactOutcome.REDELIVERED}


def _messages(book: str, facts: list[dict[str, Any]]) -> list[FactMessageV1]:
    """The facts as intake would publish them: checked by intake's own book, numbered 1, 2, 3..."""
    intake = IntakeBook()
    out = []
    for fact in facts:
        submission = intake.submit(fact)
        assert submission.outcome != "duplicate"
        out.append(FactMessageV1(
            book=book, seq=len(out) + 1, fact_id=fact["id"], subject=fact_subject(fact),
            outcome=submission.outcome, fact=fact, reason=submission.reason, digest=submission.digest,
            recorded_at="2021-06-01T01:00:00Z",
        ))
    return out


def test_batches_redelivered_or_conflicting_record_each_fact_once(infra: Settings) -> None:
    facts = load_scenario(VECTOR)["facts"]
    book = f"batch-{uuid.uuid4().hex[:12]}"
    source = f"kafka:test-batches-{uuid.uuid4().hex[:8]}:0"
    items = [(m, Tracking(source, 100 + i), None, {}) for i, m in enumerate(_messages(book, facts))]
    a, b = EligibilityApplication(infra), EligibilityApplication(infra)
    decided: list[dict[str, Any]] = []

    def run(app: EligibilityApplication, batch: list[Any]) -> list[FactOutcome]:
        results = app.process_batch(batch)
        decided.extend(d.to_dict() for outcome, ds in results if outcome is FactOutcome.PROCESSED for d in ds)
        return [outcome for outcome, _ in results]

    try:
        assert run(a, items[:6]) == [FactOutcome.PROCESSED] * 6
        # Kafka redelivers the batch (the process died before committing offsets): nothing recorded.
        assert set(run(a, items[:6])) <= NOTHING
        # Another instance gets the partition and reads the batch again, from the store.
        assert set(run(b, items[:6])) <= NOTHING
        assert run(b, items[6:9]) == [FactOutcome.PROCESSED] * 3
        # `a` still holds the streams as they were after its first batch: its batch conflicts, falls back
        # to one fact at a time, skips what `b` recorded and records the rest.
        outcomes = run(a, items[6:])
        assert set(outcomes[:3]) <= NOTHING and outcomes[3:] == [FactOutcome.PROCESSED] * (len(items) - 9)
        assert set(run(b, items)) <= NOTHING

        expected = [d.to_dict() for d in Engine(book=book).run(facts)]
        assert sorted(d["decision_id"] for d in decided) == sorted(d["decision_id"] for d in expected)
        for subject in {m.subject for m, *_ in items}:
            stream = a.stream_events(book, subject)
            assert [e.seq for e in stream] == [m.seq for m, *_ in items if m.subject == subject]
            assert verify_chain([(chain_content(e.__dict__), e.hash) for e in stream]) is None
    finally:
        a.close()
        b.close()
