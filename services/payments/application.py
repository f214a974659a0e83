"""Payments' application: each book's `PaymentsBook` (services/payments/domain), event-sourced, exactly once.

One stream per book (`PaymentsBookStream`); the book's state is kept in memory and rebuilt from the
event store (`rebuild()` at start-up, one pass over the notification log; `_load()` from the book's
stream after a failed save). Its idle lines beyond `payments_book_orders_in_memory` orders are
spilled (services/payments/domain/spill.py) between commands, so its memory does not grow with its
history; a batch reads back the ones it reaches in one query first.

Every command runs under one lock: compute the domain events against the
in-memory book (the domain folds them as it goes), append them to the stream as one `Recorded` event,
and save it — with the Kafka position when the command is a consumed message, in the same transaction.

Exactly once, two ways: a redelivered message fails on its recorded position (nothing is written), and
a message republished at a new offset is recognised by the domain (a decision id already received, the
same settlement result for an entry) and only its position is recorded. If a save fails for any other
reason, the in-memory book is thrown away and reloaded from the stream (another writer appended: retry).

Use cases: `record_decisions` (a batch from the decisions topic, in one transaction; `record_decision`
for one), `record_settlement` (settlements topic), `set_appropriation` and `record_repayment`
(operators), `cut_batches` (the batching loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Tracking
from opentelemetry import trace

from contracts.decisions import MONEY_KINDS, DecisionV1
from contracts.identifiers import mask_identifiers
from contracts.messages import SettlementV1, valid_book
from services.payments.aggregates import PaymentsBookStream, book_stream_id
from services.payments.codec import decode, encode
from services.payments.config import PaymentsConfig
from services.payments.domain import (
    PaymentsBook,
    PaymentsError,
    SettlementOutcome,
    SettlementResult,
    fiscal_year,
    reconcile,
)
from services.payments.domain import events as e
from services.payments.domain.bounds import check_appropriation, check_repayment, check_text
from services.payments.domain.lines import Line, decision_line, line_named
from services.payments.spill import SpillFactory
from services.runtime.dead_letters import Witness
from services.runtime.eventstore import (
    CONFLICT_RETRIES_MAX,
    ConcurrentWriters,
    ServiceApplication,
    pseudonym_key,
)
from services.runtime.outbox import Batch
from services.runtime.settings import Settings

log = logging.getLogger(__name__)


class RecordOutcome(StrEnum):
    """What recording one message or command did."""

    RECORDED = "recorded"
    UNCHANGED = "unchanged"  # an operator command that changes nothing (the same appropriation again)
    NO_MONEY = "no_money"  # extension, statistic, recognition, rejection: nothing to pay
    REDELIVERED = "redelivered"  # this Kafka position was already recorded
    REPUBLISHED = "republished"  # already applied (same decision, same settlement) from another offset
    REFUSED = "refused"  # the book refused it (recorded with the reason when it came from Kafka)



@dataclass(frozen=True, slots=True)
class Change:
    """One command's record: what caused it, the domain events it made, or why it was refused."""

    cause: dict[str, Any]
    events: list[e.PaymentsEvent]
    refusal: str | None = None


class DecisionItem(NamedTuple):
    """One consumed decision: `record_decision`'s arguments."""

    decision: DecisionV1
    position: Tracking
    recorded_at: datetime
    trace_id: str | None
    carrier: dict[str, str]


@dataclass(slots=True)
class Step:
    outcome: RecordOutcome
    changes: list[Change] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def _redriven(witness: Witness) -> Callable[[Step], Aggregate]:
    """The re-driven dead letter to record with a step's changes: taken in, with what the book did."""

    def redriven(result: Step) -> Aggregate:
        reason = result.detail.get("reason") if result.detail else None  # may name a beneficiary: masked
        return witness("accepted", result.outcome.value + (f": {mask_identifiers(reason)}" if reason else ""))

    return redriven


class _Refused(Exception):
    """A consumed message the book refuses after events were folded into it: the book is reloaded,
    then the refusal is recorded with the reason (once), never retried."""

    def __init__(self, cause: dict[str, Any], reason: str) -> None:
        super().__init__(reason)
        self.cause = cause
        self.reason = reason


def cause_id(cause: dict[str, Any]) -> str | None:
    return cause.get("decision_id") or cause.get("settlement_id") or cause.get("reference")


class BookWithStream:
    """A book as the application holds it: its event stream (for its version) and the `PaymentsBook`
    folded from that stream, with what the application remembers besides (budgets decided, refusals)."""

    def __init__(self, stream: PaymentsBookStream, stored: bool, book: PaymentsBook) -> None:
        self.stream = stream
        self.book = book
        self.stored = stored  # the stream exists in the event store
        self.budgets_decided: set[tuple[str, int]] = set()  # appropriated by an operator or by default
        self.refused: set[str] = set()  # ids of refused decisions and settlements

    @classmethod
    def fresh(cls, book: PaymentsBook) -> BookWithStream:
        return cls(PaymentsBookStream.open(book.book), False, book)

    @classmethod
    def opened(cls, opened: PaymentsBookStream.Opened, book: PaymentsBook) -> BookWithStream:
        stream = opened.mutate(None)
        assert isinstance(stream, PaymentsBookStream)
        return cls(stream, True, book)

    def replay(self, recorded: PaymentsBookStream.Recorded) -> None:
        """Fold one stored record (start-up, reload)."""
        self.stream = recorded.mutate(self.stream)  # type: ignore[assignment]
        events = [decode(data) for data in recorded.events]
        for event in events:
            self.book.apply(event)
        self._note(recorded.cause, events, recorded.refusal)

    def append(self, change: Change, trace_id: str | None, carrier: dict[str, str]) -> None:
        """Record a command whose events the domain has already folded into the book."""
        self.stream.record(change.cause, [encode(event) for event in change.events], change.refusal,
                           trace_id, carrier)
        self._note(change.cause, change.events, change.refusal)

    def _note(self, cause: dict[str, Any], events: list[e.PaymentsEvent], refusal: str | None) -> None:
        if cause.get("kind") == "appropriation":
            self.budgets_decided.add((cause["program"], int(cause["fiscal_year"])))
        for event in events:
            if isinstance(event, e.AppropriationSet):
                self.budgets_decided.add((event.program, event.fiscal_year))
        if (refusal or cause.get("refused")) and (key := cause_id(cause)) is not None:
            self.refused.add(key)


def decision_cause(decision: DecisionV1, recorded_at: datetime) -> dict[str, Any]:
    return {
        "kind": "decision", "decision_id": decision.decision_id, "decision_kind": decision.kind,
        "rule_set": decision.rule_set, "after": decision.after, "program": decision.program,
        "beneficiary": decision.beneficiary, "subject": decision.subject, "ref": decision.ref,
        "month": decision.month, "amount_fen": decision.amount_fen, "recorded_at": recorded_at.isoformat(),
        "ledger_sequence": decision.ledger_sequence, "enterprise": decision.enterprise,
        "employers": decision.employers,
    }


def prefetch_decided(records: Sequence[Any], book_of: Callable[[str], PaymentsBook | None]) -> None:
    """Read back, in one load per book, the lines the decisions among these stored records name (a
    page of the log, before it is folded)."""
    wanted: dict[str, list[Line]] = {}
    for record in records:
        if isinstance(record, PaymentsBookStream.Recorded) and record.cause.get("kind") == "decision":
            line = line_named(*(record.cause.get(part) for part in Line._fields))
            if line is not None:
                wanted.setdefault(record.book, []).append(line)
    for name, lines in wanted.items():
        if (book := book_of(name)) is not None:
            book.prefetch(lines)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None and at.utcoffset() is not None else at.replace(tzinfo=UTC)


class PaymentsApplication(ServiceApplication):
    name = "payments"

    def __init__(
        self, settings: Settings, tracer_provider: trace.TracerProvider | None = None,
        config: PaymentsConfig | None = None,
    ) -> None:
        super().__init__(settings, tracer_provider)
        self.config = config or PaymentsConfig.from_settings(settings)
        self._lock = threading.RLock()
        self._books: dict[str, BookWithStream] = {}
        self._spills = SpillFactory(self.recorder, self.mapper.cipher, pseudonym_key(settings))
        self.in_memory = settings.payments_book_orders_in_memory

    def clear_spills(self) -> None:
        """Delete what earlier processes spilled: only when starting as the one writer, before any book
        is made (services/payments/spill.py)."""
        self._spills.clear()

    def close(self) -> None:
        with self._lock:
            try:
                for state in self._books.values():
                    state.book.discard()
            except Exception:  # the database is gone: what was spilled goes at the next start
                log.warning("payments: could not delete what the books spilled", exc_info=True)
            self._books.clear()
        super().close()

    def new_book(self, name: str, scope: str = "book") -> PaymentsBook:
        """An empty book that spills to its own part of the spill table (`scope`: whose copy it is)."""
        return PaymentsBook(name, self._spills(f"{scope}:{name}"), self.in_memory)

    # ---- state ----------------------------------------------------------------------------------

    def rebuild(self, observe: Callable[[Batch], None] | None = None, page: int = 1000) -> int:
        """Rebuild every book from the notification log (one pass); `observe` sees every page of
        notifications too (the projection rebuilds its own copy). Returns the last notification id read."""
        with self._lock:
            self._books.clear()
            after = 0
            while batch := self.notifications(after, page):
                prefetch_decided([stored for _, stored in batch],
                                 lambda name: state.book if (state := self._books.get(name)) else None)
                for _, stored in batch:
                    if isinstance(stored, PaymentsBookStream.Opened):
                        self._books[stored.book] = BookWithStream.opened(stored, self.new_book(stored.book))
                    elif isinstance(stored, PaymentsBookStream.Recorded):
                        self._books[stored.book].replay(stored)
                for state in self._books.values():
                    state.book.spill_idle()
                if observe is not None:
                    observe(batch)
                after = batch[-1][0]
            return after

    def _load(self, book: str) -> BookWithStream:
        """A book from its own stream (or a fresh one, not yet stored)."""
        state: BookWithStream | None = None
        for count, stored in enumerate(self.events.get(book_stream_id(book)), 1):
            if isinstance(stored, PaymentsBookStream.Opened):
                state = BookWithStream.opened(stored, self.new_book(book))
            else:
                assert state is not None and isinstance(stored, PaymentsBookStream.Recorded)
                state.replay(stored)
                if count % 1000 == 0:
                    state.book.spill_idle()
        return state or BookWithStream.fresh(self.new_book(book))

    def _state(self, book: str) -> BookWithStream:
        state = self._books.get(book)
        if state is None:
            state = self._books[book] = self._load(book)
        return state

    def _forget(self, book: str) -> None:
        state = self._books.pop(book, None)
        if state is not None:
            state.book.discard()

    def books(self) -> list[str]:
        with self._lock:
            return sorted(name for name, state in self._books.items() if state.stored)

    def memory(self) -> dict[str, int]:
        """Lines and orders in memory, and lines spilled, over every book (for the health report, which
        anyone may read: no book names. Read without the lock, which a rebuild holds for long; a figure
        may be a moment old)."""
        books = [state.book for state in list(self._books.values()) if state.stored]
        return {"books": len(books), "lines_in_memory": sum(book.in_memory() for book in books),
                "orders_in_memory": sum(len(book.orders) for book in books),
                "lines_spilled": sum(book.spilled.parts for book in books)}

    def book_exists(self, book: str) -> bool:
        with self._lock:
            state = self._books.get(book)
            if state is None:
                state = self._load(book)
                if not state.stored:
                    return False
                self._books[book] = state
            return state.stored

    # ---- the one way to change a book -------------------------------------------------------------

    def _execute(
        self, book: str, step: Callable[[BookWithStream], Step], tracking: Tracking | None,
        trace_id: str | None, carrier: dict[str, str], also: Callable[[Step], Aggregate] | None = None,
    ) -> Step:
        """`also`: an aggregate to record in the same transaction, given the step's result (a re-driven
        dead letter's `Redriven` event)."""
        with self._lock:
            for _ in range(CONFLICT_RETRIES_MAX):
                state = self._state(book)
                try:
                    result = step(state)
                except _Refused as refused:
                    self._forget(book)  # the command may have folded events before it was refused
                    state = self._state(book)
                    result = self._refusal(book, state, refused)
                except BaseException:
                    self._forget(book)
                    raise
                try:
                    extra = [also(result)] if also is not None else []
                    if result.changes:
                        for change in result.changes:
                            state.append(change, trace_id, carrier)
                        self.record(state.stream, *extra, tracking=tracking)
                        state.stored = True
                    elif tracking is not None or extra:
                        self.record(*extra, tracking=tracking)
                except IntegrityError:
                    if result.changes:
                        self._forget(book)  # the book holds what was not saved
                    if tracking is not None and self.already_tracked(tracking):
                        return Step(RecordOutcome.REDELIVERED)
                    log.info("version conflict on payments book %s; reloading it", book)
                    self._forget(book)
                    continue
                except BaseException:
                    self._forget(book)
                    raise
                if not state.stored:
                    self._forget(book)  # nothing was written for a book that does not exist
                else:
                    state.book.spill_idle()
                self._log_refusals(book, result.changes)
                return result
        raise ConcurrentWriters(f"gave up on book {book} after {CONFLICT_RETRIES_MAX} version conflicts")

    @staticmethod
    def _refusal(book: str, state: BookWithStream, refused: _Refused) -> Step:
        key = cause_id(refused.cause)
        if key is not None and key in state.refused:
            return Step(RecordOutcome.REPUBLISHED)
        change = Change(refused.cause, [], refused.reason)
        return Step(RecordOutcome.REFUSED, [change], {"reason": refused.reason})

    @staticmethod
    def _log_refusals(book: str, changes: list[Change]) -> None:
        """Once recorded: what the book refused, identity numbers masked."""
        for change in changes:
            kind, key = change.cause.get("kind"), cause_id(change.cause)
            if change.refusal:
                log.warning("payments book %s refused %s %s: %s", book, kind, key,
                            mask_identifiers(change.refusal))
            entries = [] if change.refusal else change.cause.get("refused") or []
            for entry in entries:
                log.warning("payments book %s refused %s %s entry %s: %s", book, kind, key, entry["entry_id"],
                            mask_identifiers(entry["reason"]))

    def _position_only(self, tracking: Tracking, outcome: RecordOutcome) -> RecordOutcome:
        try:
            self.record(tracking=tracking)
        except IntegrityError:
            return RecordOutcome.REDELIVERED
        return outcome

    # ---- use cases ----------------------------------------------------------------------------------

    def record_decision(
        self, decision: DecisionV1, position: Tracking, recorded_at: datetime, trace_id: str | None = None,
        carrier: dict[str, str] | None = None,
    ) -> RecordOutcome:
        """A decision from eligibility: grants become orders, clawbacks cancel and claim, once each."""
        if decision.kind not in MONEY_KINDS:
            return self._position_only(position, RecordOutcome.NO_MONEY)
        if not valid_book(decision.book):  # eligibility never sends one; its orders could not be published
            log.warning("decision %s names an invalid book; skipped", decision.decision_id)
            return self._position_only(position, RecordOutcome.REFUSED)
        at = _aware(recorded_at)
        return self._execute(
            decision.book, lambda state: self._decide(state, decision, at), position, trace_id, carrier or {}
        ).outcome

    def redrive_decision(
        self, decision: DecisionV1, recorded_at: datetime, trace_id: str | None, carrier: dict[str, str],
        witness: Witness,
    ) -> RecordOutcome:
        """A dead-lettered decision an operator has re-driven: what `record_decision` does, with the dead
        letter's `Redriven` event (`witness`) in the same transaction instead of a Kafka position (the
        consumer went past it long ago). A decision applied already changes nothing (its id)."""

        redriven = _redriven(witness)
        if decision.kind not in MONEY_KINDS or not valid_book(decision.book):
            outcome = RecordOutcome.NO_MONEY if decision.kind not in MONEY_KINDS else RecordOutcome.REFUSED
            self.record(redriven(Step(outcome)))
            return outcome
        at = _aware(recorded_at)
        return self._execute(decision.book, lambda state: self._decide(state, decision, at), None, trace_id,
                             carrier, also=redriven).outcome

    def record_decisions(self, items: Sequence[DecisionItem]) -> list[RecordOutcome]:
        """Consecutive decisions from the decisions topic, recorded in ONE transaction: what
        `record_decision` does for each, in order — every book they change, with the Kafka position of
        the last item. Non-money and republished decisions (decision id already applied or refused)
        change nothing and cost no commit of their own; a refusal is recorded in the batch.

        On an IntegrityError (a redelivered batch whose last position is recorded, or another writer
        appended to a book), or a refusal that left its book needing a reload, nothing was written: the
        books are reloaded and the items go through `record_decision` one by one, which tells the cases
        apart exactly as before."""
        if not items:
            return []
        with self._lock:
            seen: dict[str, BookWithStream] = {}
            refusals: list[tuple[str, Change]] = []
            wanted: dict[str, list[Line]] = {}  # the lines to read back, by book
            for item in items:
                if (line := decision_line(item.decision)) is not None:
                    wanted.setdefault(item.decision.book, []).append(line)
            try:
                outcomes = [self._batch_step(item, seen, refusals, wanted) for item in items]
                changed = [state for state in seen.values() if state.stream.pending_events]
                self.record(*(state.stream for state in changed), tracking=items[-1].position)
            except (_Refused, IntegrityError) as exc:
                for book in seen:
                    self._forget(book)  # they hold what was not saved
                why = "needs a book reloaded" if isinstance(exc, _Refused) else "conflicted"
                log.info("batch of %d decisions %s; recording them one by one", len(items), why)
                return [self.record_decision(*item) for item in items]
            except BaseException:
                for book in seen:
                    self._forget(book)
                raise
            for state in changed:
                state.stored = True
            for book, state in seen.items():
                if not state.stored:
                    self._forget(book)
                else:
                    state.book.spill_idle()
            for book, change in refusals:
                self._log_refusals(book, [change])
            return outcomes

    def _batch_step(
        self, item: DecisionItem, seen: dict[str, BookWithStream], refusals: list[tuple[str, Change]],
        wanted: dict[str, list[Line]],
    ) -> RecordOutcome:
        """One decision of a batch: folded into its book and appended to the book's stream (not saved)."""
        decision = item.decision
        if decision.kind not in MONEY_KINDS:
            return RecordOutcome.NO_MONEY
        if not valid_book(decision.book):
            log.warning("decision %s names an invalid book; skipped", decision.decision_id)
            return RecordOutcome.REFUSED
        state = seen.get(decision.book)
        if state is None:
            state = seen[decision.book] = self._state(decision.book)
            state.book.prefetch(wanted.get(decision.book, ()))
        result = self._decide(state, decision, _aware(item.recorded_at))
        for change in result.changes:
            state.append(change, item.trace_id, item.carrier)
            if change.refusal:
                refusals.append((decision.book, change))
        return result.outcome

    def _decide(self, state: BookWithStream, decision: DecisionV1, recorded_at: datetime) -> Step:
        """What a money decision does to the book, folded into it: its changes, or its refusal."""
        applied = state.book.has_applied(decision.decision_id, decision_line(decision))
        if applied or decision.decision_id in state.refused:
            return Step(RecordOutcome.REPUBLISHED)
        cause = decision_cause(decision, recorded_at)
        changes: list[Change] = []
        folded = state.book.event_count
        try:
            if decision.kind == "grant":
                changes.extend(self._default_appropriation(state, decision, recorded_at))
            events = state.book.apply_decision(decision, recorded_at)
        except PaymentsError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if state.book.event_count != folded:  # a default appropriation was folded: reload the book
                raise _Refused(cause, reason) from None
            return Step(RecordOutcome.REFUSED, [Change(cause, [], reason)], {"reason": reason})
        changes.append(Change(cause, events))
        return Step(RecordOutcome.RECORDED, changes)

    def _default_appropriation(
        self, state: BookWithStream, decision: DecisionV1, at: datetime
    ) -> list[Change]:
        """The configured default appropriation of a budget no one has appropriated yet."""
        program = decision.program
        amount_fen = self.config.default_appropriation(program) if program else 0
        if not program or not amount_fen:
            return []
        year = fiscal_year(decision.month, at)
        if (program, year) in state.budgets_decided:
            return []
        events = state.book.set_appropriation(program, year, amount_fen, at)
        cause = {"kind": "appropriation", "source": "default", "program": program, "fiscal_year": year,
                 "amount_fen": amount_fen, "reference": None}
        return [Change(cause, events)]

    def set_appropriation(
        self, book: str, program: str, year: int, amount_fen: int, *, reference: str | None = None,
        at: datetime | None = None, trace_id: str | None = None, carrier: dict[str, str] | None = None,
    ) -> Step:
        """Operator command: the appropriation of (program, year) is now `amount_fen` (a total).
        Orders waiting for that budget are released in order. Refused (nothing written) below what
        the budget has already committed or paid. `InvalidCommand` beyond its bounds (nothing written)."""
        moment = _aware(at or datetime.now(UTC))
        check_appropriation(program, year, amount_fen, moment)
        check_text("reference", reference)

        def step(state: BookWithStream) -> Step:
            previous_fen = state.book.budget(program, year).appropriated_fen
            detail: dict[str, Any] = {"book": book, "program": program, "fiscal_year": year,
                                      "previous_fen": previous_fen, "appropriated_fen": previous_fen}
            try:
                events = state.book.set_appropriation(program, year, amount_fen, moment)
            except PaymentsError as exc:
                return Step(RecordOutcome.REFUSED, [], {**detail, "reason": _reason(exc)})
            detail["appropriated_fen"] = amount_fen
            released = [ev.order_id for ev in events if isinstance(ev, e.OrderCommitted)]
            detail["released_orders"] = len(released)
            if not events and (program, year) in state.budgets_decided:
                return Step(RecordOutcome.UNCHANGED, [], detail)
            cause = {"kind": "appropriation", "source": "operator", "program": program, "fiscal_year": year,
                     "amount_fen": amount_fen, "reference": reference}
            return Step(RecordOutcome.RECORDED, [Change(cause, events)], detail)

        return self._execute(book, step, None, trace_id, carrier or {})

    def record_repayment(
        self, book: str, beneficiary: str, amount_fen: int, reference: str, *, at: datetime | None = None,
        trace_id: str | None = None, carrier: dict[str, str] | None = None,
    ) -> Step:
        """Operator command: the beneficiary paid back `amount_fen` (bank reference = idempotency key).
        `InvalidCommand` beyond its bounds (nothing written)."""
        moment = _aware(at or datetime.now(UTC))
        check_repayment(beneficiary, amount_fen, reference)

        def step(state: BookWithStream) -> Step:
            detail: dict[str, Any] = {"book": book, "reference": reference, "amount_fen": amount_fen}
            if not state.stored:
                return Step(RecordOutcome.REFUSED, [], {**detail, "reason": f"book {book} has no payments"})
            try:
                events = state.book.record_repayment(beneficiary, amount_fen, reference, moment)
            except (PaymentsError, ValueError) as exc:
                return Step(RecordOutcome.REFUSED, [], {**detail, "reason": _reason(exc)})
            if not events:
                return Step(RecordOutcome.UNCHANGED, [], detail)
            cause = {"kind": "repayment", "reference": reference, "amount_fen": amount_fen}
            return Step(RecordOutcome.RECORDED, [Change(cause, events)], detail)

        return self._execute(book, step, None, trace_id, carrier or {})

    def record_settlement(
        self, settlement: SettlementV1, position: Tracking | None, trace_id: str | None = None,
        carrier: dict[str, str] | None = None, *, witness: Witness | None = None,
    ) -> RecordOutcome:
        """The bank's results for entries of a batch: paid, or returned (the order is re-queued).
        `witness` instead of `position`: a dead-lettered settlement an operator re-drove (its
        `Redriven` event recorded in the same transaction)."""
        if not self.book_exists(settlement.book):
            log.warning("settlement %s names book %s, which has no payments; skipped",
                        settlement.settlement_id, settlement.book)
            if witness is not None:
                self.record(witness("refused", f"book {settlement.book} has no payments"))
                return RecordOutcome.REFUSED
            assert position is not None
            return self._position_only(position, RecordOutcome.REFUSED)
        at = _aware(settlement.settled_at)

        def step(state: BookWithStream) -> Step:
            events: list[e.PaymentsEvent] = []
            refused: list[dict[str, str]] = []
            for r in settlement.results:
                result = SettlementResult(r.entry_id, SettlementOutcome(r.outcome), r.confirmation, r.reason)
                try:
                    events.extend(state.book.settle(result, at))
                except PaymentsError as exc:  # each settle changes nothing when it raises
                    refused.append({"entry_id": r.entry_id, "reason": f"{type(exc).__name__}: {exc}"})
            if not events and (not refused or settlement.settlement_id in state.refused):
                return Step(RecordOutcome.REPUBLISHED)
            cause = {"kind": "settlement", "settlement_id": settlement.settlement_id,
                     "batch_id": settlement.batch_id, "results": len(settlement.results), "refused": refused}
            whole = "; ".join(r["reason"] for r in refused) if refused and not events else None
            outcome = RecordOutcome.REFUSED if whole else RecordOutcome.RECORDED
            return Step(outcome, [Change(cause, events, whole)])

        also = _redriven(witness) if witness is not None else None
        return self._execute(settlement.book, step, position, trace_id, carrier or {}, also=also).outcome

    def due_books(self, now: datetime) -> tuple[list[str], datetime | None]:
        """The books where the batching policy cuts a batch at `now` (what `cut_batches` would do), and
        when the first of the others falls due by time (None: none does until something changes)."""
        policy = self.config.batch_policy
        due: list[str] = []
        next_at: datetime | None = None
        with self._lock:
            for name, state in self._books.items():
                ready, oldest = state.book.ready_count(), state.book.oldest_ready_at()
                if oldest is None:
                    continue
                if ready >= policy.max_entries:
                    due.append(name)
                elif policy.max_wait is not None:
                    at = oldest + policy.max_wait
                    if at <= now:
                        due.append(name)
                    elif next_at is None or at < next_at:
                        next_at = at
        return due, next_at

    def cut_batches(
        self, now: datetime, trace_id: str | None = None, carrier: dict[str, str] | None = None,
        books: list[str] | None = None,
    ) -> list[str]:
        """Cut the disbursement batches the policy makes due at `now`, in `books` (default: every book
        with orders ready to pay); the ids of the batches cut."""
        policy = self.config.batch_policy
        with self._lock:
            due = books if books is not None else [
                name for name, state in self._books.items() if state.book.ready_count()
            ]
        cut: list[str] = []
        for book in due:

            def step(state: BookWithStream) -> Step:
                events = state.book.cut_batches(policy, now)
                if not events:
                    return Step(RecordOutcome.UNCHANGED)
                batches = [ev.batch_id for ev in events if isinstance(ev, e.BatchCut)]
                cause = {"kind": "batch_cut", "batches": batches, "max_entries": policy.max_entries,
                         "max_wait_s": None if policy.max_wait is None else policy.max_wait.total_seconds()}
                return Step(RecordOutcome.RECORDED, [Change(cause, events)], {"batches": batches})

            result = self._execute(book, step, None, trace_id, carrier or {})
            cut.extend(result.detail.get("batches", []))
        return cut

    # ---- queries on the live book --------------------------------------------------------------

    def reconciliation(self, book: str) -> dict[str, Any]:
        """The book checked against itself: trial balance, accounts against sub-ledgers,
        invariants (`services.payments.domain.reconcile`). Identity numbers masked."""
        with self._lock:
            state = self._books.get(book) or self._load(book)
            folded = state.book
            return {
                "book": book,
                "exists": state.stored,
                "stream_version": state.stream.version if state.stored else 0,
                "events": folded.event_count,
                "orders": folded.order_count(),
                "batches": folded.batch_count,
                "trial_balance_fen": folded.trial_balance_fen(),
                "problems": [mask_identifiers(problem) for problem in reconcile(folded)],
            }


__all__ = [
    "BookWithStream",
    "Change",
    "ConcurrentWriters",
    "DecisionItem",
    "PaymentsApplication",
    "RecordOutcome",
    "Step",
]


def _reason(exc: Exception) -> str:
    """A refusal's reason as the operator sees it: identity numbers masked."""
    return mask_identifiers(f"{type(exc).__name__}: {exc}")
