"""Intake's application: record each submission in a book, in order, exactly as the engine decides.

The policy is `services.intake.domain.IntakeBook` (the same code `--via engine` runs). This layer
gives it durable state: every accepted or rejected submission becomes an event with the book's next
sequence number, and the in-memory books are rebuilt from the event store on start-up. It is a single
writer per book: the caller serialises `submit` (one process holds the writer lock, one asyncio lock
inside it), and the library is synchronous, so callers run it off the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from opentelemetry import trace

from contracts.eventstore import ServiceApplication
from contracts.facts import parse_fact
from contracts.messages import fact_subject
from contracts.settings import Settings
from services.intake.aggregates import FactSubmission, submission_id
from services.intake.domain.submission import IntakeBook, Outcome, Submission

log = logging.getLogger(__name__)
REBUILD_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Result:
    """What a submission came to. `conflict`: its id was used before for other content;
    `replayed`: an identical resubmission, answered with the original result and recording nothing."""

    outcome: Literal["accepted", "rejected"]
    fact_id: str | None
    seq: int
    reason: str | None = None
    conflict: bool = False
    replayed: bool = False


@dataclass
class BookState:
    intake: IntakeBook = field(default_factory=IntakeBook)
    last_seq: int = 0
    results: dict[str, Result] = field(default_factory=dict)  # fact id -> its original result


class IntakeApplication(ServiceApplication):
    name = "intake"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(settings, tracer_provider)
        self.books: dict[str, BookState] = {}

    def submit(self, book: str, raw: Any, trace_carrier: dict[str, str]) -> Result:
        """Check one submitted fact against the book and record it (unless it is a replay)."""
        state = self.books.setdefault(book, BookState())
        submission = state.intake.check(raw)
        if submission.outcome == "duplicate":
            assert submission.fact_id is not None
            return replace(state.results[submission.fact_id], replayed=True)
        seq = state.last_seq + 1
        conflict = submission.outcome == "rejected" and submission.fact_id in state.intake.digests
        common: dict[str, Any] = {
            "book": book, "seq": seq, "fact_id": submission.fact_id, "subject": fact_subject(raw),
            "fact": raw, "digest": submission.digest, "traceparent": trace_carrier.get("traceparent"),
            "tracestate": trace_carrier.get("tracestate"),
        }
        aggregate: FactSubmission
        if conflict:
            aggregate = self.repository.get(submission_id(book, submission.fact_id))
            assert isinstance(aggregate, FactSubmission)
            aggregate.reject_reuse(reason=submission.reason or "", **common)
        else:
            aggregate = FactSubmission.record(outcome=submission.outcome, reason=submission.reason, **common)
        self.record(aggregate)
        # Only after the commit: a failed save leaves the book as it was.
        result = self._fold(state, submission, seq, conflict)
        return result

    def last_seq(self, book: str) -> int:
        state = self.books.get(book)
        return state.last_seq if state else 0

    def rebuild(self) -> int:
        """Rebuild every book from the event store, in recording order; return the events read."""
        self.books.clear()
        position, count = 0, 0
        while batch := self.notifications(position, REBUILD_BATCH):
            position, count = batch[-1][0], count + len(batch)
            for _, stored in batch:
                if isinstance(stored, FactSubmission.Recorded):
                    fact = parse_fact(stored.fact) if stored.outcome == "accepted" else None
                    outcome: Outcome = "accepted" if stored.outcome == "accepted" else "rejected"
                    submission = Submission(outcome, stored.fact_id, stored.digest, fact, stored.reason)
                    self._fold(self.books.setdefault(stored.book, BookState()), submission, stored.seq, False)
                elif isinstance(stored, FactSubmission.ReuseRejected):
                    submission = Submission("rejected", stored.fact_id, stored.digest, None, stored.reason)
                    self._fold(self.books.setdefault(stored.book, BookState()), submission, stored.seq, True)
        log.info("intake rebuilt %d books from %d events", len(self.books), count)
        return count

    @staticmethod
    def _fold(state: BookState, submission: Submission, seq: int, conflict: bool) -> Result:
        assert seq == state.last_seq + 1, f"sequence gap: {state.last_seq} then {seq}"
        state.intake.record(submission)
        state.last_seq = seq
        accepted = submission.outcome == "accepted"
        result = Result("accepted" if accepted else "rejected", submission.fact_id, seq, submission.reason,
                        conflict=conflict)
        if submission.fact_id is not None and not conflict:
            state.results[submission.fact_id] = result
        return result
