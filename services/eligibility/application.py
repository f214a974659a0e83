"""Eligibility's application: process each fact from intake with the pure ledger, exactly once.

Use case `process_fact`: the subject's rules state (`services.eligibility.domain.Ledger`, the same core
`--via engine` runs) decides; the outcome is appended to the subject's hash-chained ledger stream
together with the Kafka position, in one transaction. A redelivered message changes nothing: its
position is already recorded (same offset), or its (book, seq) is (the same fact republished).

Entitlement decomposes by subject (see the domain's ledger module), so one rules state per subject
gives the decisions one state per book would. States are cached (LRU) and rebuilt from the stream when
missing or stale: a version conflict means another instance appended, so the state is reloaded.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from eventsourcing.persistence import IntegrityError, Tracking
from opentelemetry import trace

from contracts.eventstore import ServiceApplication, keyed_uuid, pseudonym_key
from contracts.facts import parse_fact
from contracts.messages import FactMessageV1
from contracts.settings import Settings
from services.eligibility.aggregates import SubjectLedger
from services.eligibility.domain.decision import Decision
from services.eligibility.domain.ledger import Ledger
from services.eligibility.domain.ruleset import CURRENT, rule_set

log = logging.getLogger(__name__)
CACHE_SUBJECTS_MAX = 50_000
CONFLICT_RETRIES_MAX = 5


class Outcome(StrEnum):
    PROCESSED = "processed"
    REDELIVERED = "redelivered"  # this Kafka position was already recorded
    REPUBLISHED = "republished"  # this (book, seq) was already processed, from another offset


class ConcurrentWriters(RuntimeError):
    """The stream kept changing under us: more than one instance writes to this subject."""


@dataclass(slots=True)
class SubjectState:
    stream: SubjectLedger
    rules: Ledger


class EligibilityApplication(ServiceApplication):
    name = "eligibility"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(settings, tracer_provider)
        self._id_key = pseudonym_key(settings)
        self._states: OrderedDict[uuid.UUID, SubjectState] = OrderedDict()

    def ledger_id(self, book: str, subject: str) -> uuid.UUID:
        """The stream id of a subject: keyed, so a worker's stream cannot be found from their id alone."""
        return keyed_uuid(self._id_key, "subject-ledger", book, subject)

    def process_fact(
        self, message: FactMessageV1, position: Tracking, trace_id: str | None, trace_carrier: dict[str, str]
    ) -> tuple[Outcome, list[Decision]]:
        """Decide on one fact from intake and record it with its Kafka position."""
        ledger_id = self.ledger_id(message.book, message.subject)
        for _ in range(CONFLICT_RETRIES_MAX):
            state = self._state(ledger_id, message.book, message.subject)
            if message.seq <= state.stream.last_seq:
                return self._skip(position), []
            decisions = self._decide(state.rules, message)
            state.stream.record(
                seq=message.seq, fact_id=message.fact_id, outcome=message.outcome, fact=message.fact,
                reason=message.reason, digest=message.digest,
                decisions=[dataclasses.asdict(d) for d in decisions], rule_set=state.rules.rule_set.id,
                trace_id=trace_id, traceparent=trace_carrier.get("traceparent"),
                tracestate=trace_carrier.get("tracestate"),
            )
            try:
                self.record(state.stream, tracking=position)
            except IntegrityError:
                self._states.pop(ledger_id, None)  # the cached state is ahead of the store now
                if self.already_tracked(position):
                    return Outcome.REDELIVERED, []
                log.info("version conflict on a subject stream; reloading it")
                continue
            except BaseException:
                self._states.pop(ledger_id, None)
                raise
            return Outcome.PROCESSED, decisions
        raise ConcurrentWriters(f"gave up after {CONFLICT_RETRIES_MAX} version conflicts")

    @staticmethod
    def _decide(rules: Ledger, message: FactMessageV1) -> list[Decision]:
        if message.outcome == "rejected":
            return [rules.reject(message.fact_id, message.reason or "rejected", message.digest)]
        return rules.apply(parse_fact(message.fact))

    def _skip(self, position: Tracking) -> Outcome:
        """Record only the position of a message whose fact was already processed."""
        try:
            self.record(tracking=position)
        except IntegrityError:
            return Outcome.REDELIVERED
        return Outcome.REPUBLISHED

    def _state(self, ledger_id: uuid.UUID, book: str, subject: str) -> SubjectState:
        state = self._states.get(ledger_id)
        if state is not None:
            self._states.move_to_end(ledger_id)
            return state
        state = self._load(ledger_id, book, subject)
        self._states[ledger_id] = state
        while len(self._states) > CACHE_SUBJECTS_MAX:
            self._states.popitem(last=False)
        return state

    def _load(self, ledger_id: uuid.UUID, book: str, subject: str) -> SubjectState:
        """Rebuild a subject's stream and rules state from its stored events."""
        stream: SubjectLedger | None = None
        rules: Ledger | None = None
        for stored in self.events.get(ledger_id):
            assert isinstance(stored, SubjectLedger.Opened | SubjectLedger.FactProcessed)
            stream = cast(SubjectLedger, stored.mutate(stream))
            if isinstance(stored, SubjectLedger.FactProcessed):
                rules = rules or Ledger(rule_set(stored.rule_set), book)
                if stored.outcome == "accepted":
                    rules.apply(parse_fact(stored.fact))
        if stream is None:
            stream = SubjectLedger._create(SubjectLedger.Opened, id=ledger_id, book=book, subject=subject)
        return SubjectState(stream, rules or Ledger(CURRENT, book))

    def stream_events(self, book: str, subject: str) -> list[SubjectLedger.FactProcessed]:
        """The processed facts of one subject, in order (for audits and tests)."""
        stored = self.events.get(self.ledger_id(book, subject))
        return [e for e in stored if isinstance(e, SubjectLedger.FactProcessed)]
