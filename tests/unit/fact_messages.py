"""Facts as intake records and publishes them, for tests that feed eligibility without a broker."""

from __future__ import annotations

from typing import Any

from contracts.messages import FactMessageV1, fact_subject
from services.intake.domain.submission import IntakeBook


def recorded_messages(
    book: str, facts: list[dict[str, Any]],
) -> tuple[list[FactMessageV1], list[dict[str, Any]]]:
    """The facts intake records (duplicates are not), as it would publish them, numbered 1, 2, 3...;
    and the recorded facts themselves (what the engine is given)."""
    intake, out, recorded = IntakeBook(), [], []
    for fact in facts:
        submission = intake.submit(fact)
        if submission.outcome == "duplicate":
            continue
        recorded.append(fact)
        out.append(FactMessageV1(
            book=book, seq=len(out) + 1, fact_id=fact["id"], subject=fact_subject(fact),
            outcome=submission.outcome, fact=fact, reason=submission.reason, digest=submission.digest,
            recorded_at="2021-06-01T01:00:00Z",
        ))
    return out, recorded
