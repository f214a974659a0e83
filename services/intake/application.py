"""Intake's application: record each submission in a book, in order, exactly as the engine decides.

The policy is `services.intake.domain.IntakeBook` (the same code `--via engine` runs). This layer
gives it durable state: every accepted or rejected submission becomes an event with the book's next
sequence number, and the in-memory books are rebuilt from the event store on start-up. It is a single
writer per book: the caller serialises its calls (one process holds the writer lock, one asyncio
lock inside it), and the library is synchronous, so callers run it off the event loop.

A batch of submissions (a bulk request, or one agency message with its Kafka position) is checked row
by row against the book as the earlier rows left it, and recorded in ONE transaction, its events in
seq order. The in-memory book moves ahead while the rows are checked; if the transaction fails, the
book is re-read from the store (which then says what really happened), so memory never runs ahead of
the database for long, and readers only ever see `committed_seq`.

Memory is bounded (issue 15.1): the books keep the fact ids used lately (`known_fact_ids`), and a batch
first recalls from the store the ids it names that are not among them (`_recall`).

The same store holds the agency messages that were dead-lettered (`DeadLetter`, published by the
relay). API keys live in the access store shared by the three services (services/runtime/access).
"""

from __future__ import annotations

import base64
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    Recording,
    Tracking,
)
from eventsourcing.utils import retry
from opentelemetry import trace
from psycopg import sql

from contracts.facts import parse_fact
from contracts.identifiers import mask_identifiers
from contracts.messages import fact_subject
from services.intake.aggregates import DeadLetter, FactSubmission, submission_id
from services.intake.domain.fact_ids import scope_of
from services.intake.domain.feed import AgencyFact, NotTaken
from services.intake.domain.submission import IntakeBook, Outcome, Submission, submission_fact_id
from services.intake.known_fact_ids import BookFactIds, KnownFactIds, KnownId
from services.runtime.dead_letters import RedriveResult, Witness, kept_headers
from services.runtime.eventstore import ServiceApplication
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
REBUILD_BATCH = 1000
RECENT_EVENTS = 20_000  # recorded events kept in memory for the outbox relay (a few bulk requests)


@dataclass(frozen=True, slots=True)
class Result:
    """What a submission came to. `conflict`: its id was used before for other content;
    `replayed`: an identical resubmission (also of a conflict), answered with the original result and
    recording nothing; `refused`: a platform's fact about a worker not its own (403, nothing recorded,
    `seq` 0)."""

    outcome: Literal["accepted", "rejected"]
    fact_id: str | None
    seq: int
    reason: str | None = None
    conflict: bool = False
    replayed: bool = False
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Incoming:
    """One fact to submit: the raw JSON object, and a reason found before that rejects it whatever it
    holds (a hostile value; `raw` is then the storable stand-in, see limits.BadValue). `submitter`:
    who sends it, as its fact id scope (`fact_ids.scope_of`); None for the operator."""

    raw: Any
    problem: str | None = None
    submitter: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One single submission of a group (`submit_group`): its book, its fact, its request's trace."""

    book: str
    item: Incoming
    trace_carrier: dict[str, str]


@dataclass(frozen=True, slots=True)
class Source:
    """Where an agency message came from, its original value and headers: for its dead letter."""

    topic: str
    partition: int
    offset: int
    body: bytes
    agency: str | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def tracking(self) -> Tracking:
        return Tracking(application_name=f"kafka:{self.topic}:{self.partition}", notification_id=self.offset)


class _RecentEvents:
    """The events this process recorded lately, by notification id, so that the outbox relay can
    publish them without reading them back from the store and decrypting them. The relay still asks
    the store which ids follow its position (`IntakeApplication.notifications`): what another process
    wrote, or what was evicted, is read from the store as before, and gaps are seen as before.
    Filled by writer threads, read by the relay's: one lock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._events: OrderedDict[int, DomainEventProtocol[uuid.UUID]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, recordings: Sequence[Recording[uuid.UUID]]) -> None:
        with self._lock:
            for recording in recordings:
                self._events[recording.notification.id] = recording.domain_event
            while len(self._events) > self.capacity:
                self._events.popitem(last=False)

    def get(self, ids: Sequence[int]) -> list[DomainEventProtocol[uuid.UUID]] | None:
        """The events of all `ids`, or None if one of them is not here."""
        with self._lock:
            try:
                return [self._events[i] for i in ids]
            except KeyError:
                return None

    def forget_through(self, position: int) -> None:
        """Drop the events up to `position`: the relay has published them."""
        with self._lock:
            while self._events and next(iter(self._events)) <= position:
                self._events.popitem(last=False)


@dataclass
class _Batch:
    """The submissions of one batch: creation events not stored yet, and the aggregates of ids reused
    within it (built from those events, or loaded), so that a reuse follows the one before it."""

    created: dict[uuid.UUID, FactSubmission.Recorded] = field(default_factory=dict)
    aggregates: dict[uuid.UUID, FactSubmission] = field(default_factory=dict)

    def aggregate(self, app: IntakeApplication, aggregate_id: uuid.UUID) -> FactSubmission:
        found = self.aggregates.get(aggregate_id)
        if found is None:
            event = self.created.get(aggregate_id)
            loaded = event.mutate(None) if event is not None else app.repository.get(aggregate_id)
            assert isinstance(loaded, FactSubmission)
            found = self.aggregates[aggregate_id] = loaded
        return found


@dataclass
class RecordedBook:
    """A book as recorded so far, in memory: its checks (`intake`, whose fact ids are `fact_ids`: the
    latest ones, with their results) and its seqs."""

    fact_ids: BookFactIds[Result]
    intake: IntakeBook
    last_seq: int = 0  # the last seq handed out (ahead of the store while a batch is being recorded)
    committed_seq: int = 0  # the last seq known to be in the store

    @classmethod
    def new(cls, fact_ids: BookFactIds[Result]) -> RecordedBook:
        return cls(fact_ids, IntakeBook(fact_ids=fact_ids))


class IntakeApplication(ServiceApplication):
    name = "intake"

    def __init__(
        self, settings: Settings, tracer_provider: trace.TracerProvider | None = None,
        *, dead_letter_max_bytes: int = 64 * 1024,
    ) -> None:
        super().__init__(settings, tracer_provider)
        self.books: dict[str, RecordedBook] = {}
        self.known = KnownFactIds[Result](settings.intake_fact_ids_cached)
        self.stale_books: set[str] = set()  # books to re-read before their next submission
        self.dead_letter_max_bytes = dead_letter_max_bytes
        self.recent = _RecentEvents(RECENT_EVENTS)

    def _record(self, processing_event: ProcessingEvent[uuid.UUID]) -> list[Recording[uuid.UUID]]:
        recordings = super()._record(processing_event)
        self.recent.add(recordings)
        return recordings

    def notifications(self, after: int, limit: int) -> Sequence[tuple[int, DomainEventProtocol[uuid.UUID]]]:
        """As the store has them (ids after `after`, in order), but taking the events this process
        recorded from memory when it still has every one of them (see _RecentEvents)."""
        ids = self._notification_ids(after, limit)
        events = self.recent.get(ids)
        if events is None:
            return super().notifications(after, limit)
        self.recent.forget_through(after)
        return list(zip(ids, events, strict=True))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _notification_ids(self, after: int, limit: int) -> list[int]:
        recorder: Any = self.recorder
        statement = sql.SQL(
            "SELECT notification_id FROM {schema}.{table} WHERE notification_id > %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(schema=sql.Identifier(recorder.datastore.schema),
                 table=sql.Identifier(recorder.events_table_name))
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (after, limit), prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]

    # ---- facts ----------------------------------------------------------------------------------

    def submit_many(
        self, book: str, items: Sequence[Incoming], trace_carrier: dict[str, str], *,
        tracking: Tracking | None = None, source: Source | None = None, witness: Witness | None = None,
    ) -> list[Result]:
        """Check each fact in order against the book as the ones before left it; record them all, and
        `tracking` (a consumed Kafka position) with them, in one transaction. With `source` (a fact
        from an agency feed), a rejection is also kept as a dead letter in the same transaction. With
        `witness` (a re-driven dead letter's, one fact), its `Redriven` event says what the fact became."""

        def plan(events: list[DomainEventProtocol[uuid.UUID]]) -> list[Result]:
            state, batch, results = self.books[book], _Batch(), []
            for item in items:
                result = self._plan(book, state, item, trace_carrier, batch, events)
                results.append(result)
                if source is not None and not result.replayed and result.outcome == "rejected":
                    status = 403 if result.refused else 409 if result.conflict else 400
                    seq = None if result.refused else result.seq  # a refused fact is not recorded
                    events.extend(self._dead_letter(source, book, result.fact_id, status,
                                                    result.reason or "rejected", seq, trace_carrier))
                if witness is not None:
                    events.extend(witness(*_redriven(book, result)).collect_events())
            return results

        return self._plan_and_record([book], [(book, item) for item in items], plan, tracking)

    def submit_group(self, requests: Sequence[Request]) -> list[Result]:
        """Single submissions that arrived together (to one book or several), in ONE transaction: each
        checked in its turn as if submitted alone, with its own seq and its own request's trace. All or
        nothing; the caller submits each on its own after a failure, so one never fails the others."""

        def plan(events: list[DomainEventProtocol[uuid.UUID]]) -> list[Result]:
            batch = _Batch()  # aggregate ids include the book: one batch serves every book
            return [self._plan(r.book, self.books[r.book], r.item, r.trace_carrier, batch, events)
                    for r in requests]

        books = list(dict.fromkeys(r.book for r in requests))
        return self._plan_and_record(books, [(r.book, r.item) for r in requests], plan)

    def _plan_and_record(
        self, books: list[str], items: list[tuple[str, Incoming]],
        plan: Callable[[list[DomainEventProtocol[uuid.UUID]]], list[Result]],
        tracking: Tracking | None = None,
    ) -> list[Result]:
        """Run `plan` (which checks `items`, submissions to the books, and appends their events, in seq
        order) and record its events and `tracking` in one transaction."""
        for book in books:
            self._ensure_book(book)
            self._book(book)
        events: list[DomainEventProtocol[uuid.UUID]] = []
        try:
            self._recall(items)
            results = plan(events)
            if events or tracking is not None:
                processing = ProcessingEvent[uuid.UUID](tracking)
                processing.events.extend(events)  # as they are: in seq order, one transaction
                self._record(processing)
        except BaseException:
            # The books ran ahead of the store: read them again from what the store holds.
            for book in books:
                self._reload_book(book)
            self.known.trim()
            raise
        for book in books:
            state = self.books[book]
            state.committed_seq = state.last_seq
        self.known.trim()
        return results

    def _book(self, book: str) -> RecordedBook:
        state = self.books.get(book)
        if state is None:
            state = self.books[book] = RecordedBook.new(self.known.of_book(book))
        return state

    def _recall(self, items: list[tuple[str, Incoming]]) -> None:
        """Read from the store the fact ids `items` name that are not in memory (one query), so that
        every id they name is either known or new while they are checked."""
        wanted = [(book, fact_id) for book, item in items
                  if (fact_id := submission_fact_id(item.raw, item.submitter)) is not None]
        missing = self.known.missing(wanted)
        if not missing:
            return
        stored = self.events_of([submission_id(book, fact_id) for book, fact_id in missing])
        for book, fact_id in missing:
            events = stored.get(submission_id(book, fact_id))
            if events:
                self.known.put(book, fact_id, _known_from(fact_id, events))

    def _plan(
        self, book: str, state: RecordedBook, item: Incoming, carrier: dict[str, str], batch: _Batch,
        events: list[DomainEventProtocol[uuid.UUID]],
    ) -> Result:
        submission = state.intake.check(item.raw, item.problem, item.submitter)
        if submission.outcome == "duplicate":
            assert submission.fact_id is not None
            original = state.fact_ids.original(submission.fact_id, submission.digest, submission.conflict)
            return replace(original, replayed=True)
        if submission.outcome == "refused":
            return Result("rejected", submission.fact_id, 0, submission.reason, refused=True)
        seq = state.last_seq + 1
        conflict = submission.conflict
        common: dict[str, Any] = {
            "book": book, "seq": seq, "fact_id": submission.fact_id, "subject": fact_subject(submission.raw),
            "fact": submission.raw, "digest": submission.digest, "traceparent": carrier.get("traceparent"),
            "tracestate": carrier.get("tracestate"), "submitter": submission.submitter,
        }
        if conflict:
            aggregate = batch.aggregate(self, submission_id(book, submission.fact_id))
            aggregate.reject_reuse(reason=submission.reason or "", **common)
            events.extend(aggregate.collect_events())
        else:
            created = FactSubmission.recorded_event(outcome=submission.outcome, reason=submission.reason,
                                                    **common)
            batch.created[created.originator_id] = created
            events.append(created)
        return self._fold(state, submission, seq, conflict)

    def last_seq(self, book: str) -> int:
        """The book's last recorded seq (never one of a batch still being recorded)."""
        state = self.books.get(book)
        return state.committed_seq if state else 0

    def rebuild(self) -> int:
        """Rebuild every book from the event store, in recording order; return the events read."""
        self.books.clear()
        self.known.clear()
        count = self._fold_log(None)
        log.info("intake rebuilt %d books from %d events", len(self.books), count)
        return count

    def _reload_book(self, book: str) -> None:
        self.books.pop(book, None)
        self.known.forget_book(book)
        self.stale_books.add(book)
        try:
            self._ensure_book(book)
        except Exception:  # the store is unreachable: the next submission to the book reads it again
            log.exception("intake could not re-read book %s; it is re-read before its next submission", book)

    def _ensure_book(self, book: str) -> None:
        """Re-read a book whose in-memory state was dropped after a failed transaction."""
        if book in self.stale_books:
            self.books.pop(book, None)
            self.known.forget_book(book)
            self._fold_log(book)
            self.stale_books.discard(book)

    def _fold_log(self, only_book: str | None) -> int:
        position, count = 0, 0
        while batch := self.notifications(position, REBUILD_BATCH):
            position, count = batch[-1][0], count + len(batch)
            self.known.trim()
            for _, stored in batch:
                if not isinstance(stored, FactSubmission.Recorded | FactSubmission.ReuseRejected):
                    continue
                if only_book is not None and stored.book != only_book:
                    continue
                state = self._book(stored.book)
                if isinstance(stored, FactSubmission.Recorded):
                    fact = parse_fact(stored.fact) if stored.outcome == "accepted" else None
                    outcome: Outcome = "accepted" if stored.outcome == "accepted" else "rejected"
                    submission = Submission(outcome, stored.fact_id, stored.digest, fact, stored.reason,
                                            stored.fact, stored.submitter)
                    self._fold(state, submission, stored.seq, False)
                else:
                    submission = Submission("rejected", stored.fact_id, stored.digest, None, stored.reason,
                                            stored.fact, stored.submitter, conflict=True)
                    self._fold(state, submission, stored.seq, True)
                state.committed_seq = state.last_seq
        return count

    @staticmethod
    def _fold(state: RecordedBook, submission: Submission, seq: int, conflict: bool) -> Result:
        assert seq == state.last_seq + 1, f"sequence gap: {state.last_seq} then {seq}"
        state.intake.record(submission)
        state.last_seq = seq
        accepted = submission.outcome == "accepted"
        result = Result("accepted" if accepted else "rejected", submission.fact_id, seq, submission.reason,
                        conflict=conflict)
        if submission.fact_id is not None:
            state.fact_ids.set_result(submission.fact_id, submission.digest, result, conflict)
        return result

    # ---- agency messages ------------------------------------------------------------------------

    def take_in_agency_message(
        self, source: Source, message: AgencyFact | NotTaken, trace_carrier: dict[str, str],
    ) -> str:
        """One agency message and its Kafka position, in one transaction: recorded as a fact (and kept
        as a dead letter too if rejected), or kept as a dead letter (`NotTaken`). What became of it:
        `accepted`, `rejected`, `duplicate` (an identical resubmission), `dead-lettered`, or
        `redelivered` (its position was recorded before: nothing done)."""
        if self.already_consumed(source):
            return "redelivered"
        if isinstance(message, NotTaken):
            kept = self.dead_letter(source, book=message.book, fact_id=message.fact_id, status=message.status,
                                    reason=message.reason, trace_carrier=trace_carrier)
            return "dead-lettered" if kept else "redelivered"
        item = Incoming(message.raw, message.problem, scope_of(message.principal))
        [result] = self.submit_many(message.book, [item], trace_carrier, tracking=source.tracking,
                                    source=source)
        return "duplicate" if result.replayed else result.outcome

    def redrive_agency_message(
        self, message: AgencyFact, trace_carrier: dict[str, str], witness: Witness,
    ) -> None:
        """A dead-lettered agency message an operator has re-driven, read again (`message`): submitted
        like a consumed one, with the dead letter's `Redriven` event (`witness`) in the same transaction
        instead of a Kafka position (the consumer went past it long ago), and no new dead letter: the
        event says what the fact became. The caller holds the books' writer lock."""
        item = Incoming(message.raw, message.problem, scope_of(message.principal))
        self.submit_many(message.book, [item], trace_carrier, witness=witness)

    def already_consumed(self, source: Source) -> bool:
        """Whether this Kafka position was recorded (a redelivery: nothing to do)."""
        return self.already_tracked(source.tracking)

    def dead_letter(
        self, source: Source, *, book: str | None, fact_id: str | None, status: int, reason: str,
        trace_carrier: dict[str, str],
    ) -> bool:
        """Keep an agency message that never became a fact, with its position; False if that position
        was recorded before (a redelivery)."""
        try:
            self.record(*self._dead_letter(source, book, fact_id, status, reason, None, trace_carrier),
                        tracking=source.tracking)
        except IntegrityError:
            if self.already_tracked(source.tracking):
                return False
            raise
        return True

    def _dead_letter(
        self, source: Source, book: str | None, fact_id: str | None, status: int, reason: str,
        seq: int | None, carrier: dict[str, str],
    ) -> list[DomainEventProtocol[uuid.UUID]]:
        kept = source.body[: self.dead_letter_max_bytes]
        letter = DeadLetter.record(
            source_topic=source.topic, source_partition=source.partition, source_offset=source.offset,
            agency=source.agency, book=book, fact_id=fact_id, status=status, reason=reason, seq=seq,
            body_b64=base64.b64encode(kept).decode("ascii"), body_bytes=len(source.body),
            traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"),
            headers=kept_headers(source.headers),
        )
        return list(letter.collect_events())


def _redriven(book: str, result: Result) -> tuple[RedriveResult, str]:
    """A re-driven agency fact's result as its dead letter records it: taken in (`accepted`) when it is
    in the book now, recorded or recorded before; `refused` (it stays a dead letter) when not."""
    if result.refused:
        return "refused", mask_identifiers(result.reason or "refused")
    where = f"seq {result.seq} of book {book}"
    if result.replayed:
        return "accepted", f"the same fact was recorded before ({where}): nothing recorded"
    if result.outcome == "accepted":
        return "accepted", f"recorded: {where}, accepted"
    return "accepted", f"recorded: {where}, rejected: {mask_identifiers(result.reason or '')}"


def _known_from(fact_id: str, events: Sequence[DomainEventProtocol[uuid.UUID]]) -> KnownId[Result]:
    """A fact id's results as its stored events say: the first submission, then each recorded reuse
    (the results `_fold` gave them when they were recorded)."""
    first = events[0]
    assert isinstance(first, FactSubmission.Recorded)
    outcome: Literal["accepted", "rejected"] = "accepted" if first.outcome == "accepted" else "rejected"
    known = KnownId[Result](first.digest, Result(outcome, fact_id, first.seq, first.reason))
    for event in events[1:]:
        assert isinstance(event, FactSubmission.ReuseRejected)
        known.conflicts[event.digest] = Result("rejected", fact_id, event.seq, event.reason, conflict=True)
    return known
