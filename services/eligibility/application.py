"""Eligibility's application: decide on each fact from intake and record it, exactly once, in its
subject's decision chain.

Use case `process_batch`: consecutive facts from the facts topic, decided and recorded in one
transaction with the Kafka position of the last. Each fact is decided by its subject's entitlement
state (`services.eligibility.domain.entitlement_state`, the same core `--via engine` runs) and appended,
with the decisions it caused, to the subject's `DecisionChain`. A redelivered message changes nothing:
its position is already recorded (same offset), or its (book, seq) is (the same fact republished).

Entitlement decomposes by subject (see the domain's entitlement state), so one state per subject gives
the decisions one state per book would. States are cached (LRU, within a budget in bytes:
`subject_cache`, live or packed) and rebuilt when missing or stale, from the subject's latest snapshot
and the chain's events after it (`subject_snapshots`; issue 15.1): a version conflict means another
instance appended, so the state is reloaded. A subject keeps
the rule set its first fact was decided under; a subject not seen yet gets the current one
(`RuleSets.for_subject`, docs/design/rules.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresAggregateRecorder
from opentelemetry import trace

from contracts.facts import parse_fact
from contracts.messages import FactMessageV1
from services.eligibility.aggregates import DecisionChain
from services.eligibility.domain.decision import Decision
from services.eligibility.domain.entitlement_state import EntitlementState
from services.eligibility.domain.ruleset import IN_FORCE, RuleSets
from services.eligibility.subject_cache import SubjectCache
from services.eligibility.subject_snapshots import SnapshotStore, StatePacker
from services.runtime.dead_letters import Witness
from services.runtime.eventstore import (
    CONFLICT_RETRIES_MAX,
    ConcurrentWriters,
    ServiceApplication,
    keyed_uuid,
    pseudonym_key,
)
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
# A subject's state is snapshotted after this many events since its last snapshot, and when it leaves
# the cache with events its snapshot lacks: a miss then reads one snapshot and no events, or at most
# this many less one after a crash or from a chain another instance appended to.
SNAPSHOT_EVERY_EVENTS = 16


class FactOutcome(StrEnum):
    PROCESSED = "processed"
    REDELIVERED = "redelivered"  # this Kafka position was already recorded
    REPUBLISHED = "republished"  # this (book, seq) was already processed, from another offset


# One fact of a batch: the message, its Kafka position, and the trace id and W3C context of its span.
BatchItem = tuple[FactMessageV1, Tracking, str | None, dict[str, str]]


@dataclass(slots=True)
class SubjectState:
    """One subject: its decision chain (what is recorded) and its entitlement state (what decides)."""

    chain: DecisionChain
    entitlement: EntitlementState
    snapshot_version: int = 0  # the chain version of the subject's latest snapshot (0: none)

    @property
    def events(self) -> int:
        return self.chain.version


class EligibilityApplication(ServiceApplication):
    name = "eligibility"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(settings, tracer_provider)
        self._id_key = pseudonym_key(settings)
        self._states = SubjectCache[SubjectState](
            settings.eligibility_cache_mb * 1024 * 1024, pack_state,
            unpack_state)
        assert self.mapper.cipher is not None, "event state is encrypted at rest (eventstore.CIPHER_TOPIC)"
        recorder = self.recorder
        assert isinstance(recorder, PostgresAggregateRecorder)
        self.subject_snapshots = SnapshotStore(recorder.datastore, self.mapper.cipher, state_packer())
        self.subject_snapshots.create_table()

    def live_chain(self, chain_id: uuid.UUID) -> DecisionChain | None:
        """The subject's chain if its state is live in the cache (for the decision relay, from another
        thread: it may be ahead of what is committed, or behind it)."""
        state = self._states.peek(chain_id)
        return None if state is None else state.chain

    def chain_id(self, book: str, subject: str) -> uuid.UUID:
        """The stream id of a subject's chain: keyed, so a worker's chain cannot be found from their id
        alone. ("subject-ledger" is part of every stored id: it stays.)"""
        return keyed_uuid(self._id_key, "subject-ledger", book, subject)

    def process_batch(self, items: Sequence[BatchItem]) -> list[tuple[FactOutcome, list[Decision]]]:
        """Decide on consecutive facts from the facts topic and record them all in one transaction
        (every chain they touch, with the last item's Kafka position): one commit, one notification
        wake-up of the relays and projections per batch instead of per fact. Then, with every state
        held committed, bring the cache within its budget (`_trim`)."""
        try:
            return self._decide_batch(items)
        finally:
            self._trim()

    def _decide_batch(self, items: Sequence[BatchItem]) -> list[tuple[FactOutcome, list[Decision]]]:
        """`process_batch` without the trim.

        A fact already processed (its seq is not above its chain's last seq: a redelivery or a
        republication) is skipped. On any IntegrityError (a redelivered batch whose last position is
        recorded, or a version conflict: another instance appended to one of the chains) nothing was
        written: the cached states are dropped and the items are recorded one by one
        (`_process_one`), which tells the cases apart."""
        touched: dict[uuid.UUID, SubjectState] = {}
        results: list[tuple[FactOutcome, list[Decision]]] = []
        chain_ids = [self.chain_id(message.book, message.subject) for message, *_ in items]
        self._load_missing(chain_ids, items)
        try:
            for chain_id, (message, _, trace_id, trace_carrier) in zip(chain_ids, items, strict=True):
                state = touched.get(chain_id) or self._state(chain_id, message.book, message.subject)
                if message.seq <= state.chain.last_seq:
                    results.append((FactOutcome.REPUBLISHED, []))
                    continue
                touched[chain_id] = state  # first: a state a failure left half changed is forgotten
                decisions = decide_and_append(state, message, trace_id, trace_carrier)
                results.append((FactOutcome.PROCESSED, decisions))
            if touched:
                self.record(*(state.chain for state in touched.values()), tracking=items[-1][1])
                self._committed(touched)
            else:  # only republished facts: record the position, so they are consumed and not re-read
                self._skip(items[-1][1])
        except IntegrityError:
            self._forget(touched)  # the cached states are ahead of the store now
            log.info("batch of %d facts conflicted; processing them one by one", len(items))
            return [self._process_one(*item) for item in items]
        except BaseException:
            self._forget(touched)
            raise
        return results

    def _process_one(
        self, message: FactMessageV1, position: Tracking, trace_id: str | None, trace_carrier: dict[str, str]
    ) -> tuple[FactOutcome, list[Decision]]:
        """One fact of a batch that could not be recorded whole, recorded on its own with its position:
        a recorded position is a redelivery; another conflict means another instance appended to the
        chain, which is then reloaded and the fact decided again."""
        chain_id = self.chain_id(message.book, message.subject)
        for _ in range(CONFLICT_RETRIES_MAX):
            state = self._state(chain_id, message.book, message.subject)
            if message.seq <= state.chain.last_seq:
                return self._skip(position), []
            try:
                decisions = decide_and_append(state, message, trace_id, trace_carrier)
                self.record(state.chain, tracking=position)
                self._committed({chain_id: state})
            except IntegrityError:
                self._states.pop(chain_id)  # the cached state is ahead of the store now
                if self.already_tracked(position):
                    return FactOutcome.REDELIVERED, []
                log.info("version conflict on a subject's chain; reloading it")
                continue
            except BaseException:
                self._states.pop(chain_id)
                raise
            return FactOutcome.PROCESSED, decisions
        raise ConcurrentWriters(f"gave up after {CONFLICT_RETRIES_MAX} version conflicts")

    def redrive_fact(
        self, message: FactMessageV1, trace_id: str | None, carrier: dict[str, str], witness: Witness,
    ) -> None:
        """A dead-lettered fact an operator has re-driven: decided and recorded like a consumed one, with
        the dead letter's `Redriven` event (`witness`) instead of a Kafka position (the consumer went
        past it long ago). Its subject's chain is read from the store, not the cache, which the consumer
        owns: a cached state it left stale conflicts on its next commit and is reloaded. Refused when the
        chain is past its seq (decided already, or a later fact of the subject was: taking it in now
        would reorder the subject's ledger)."""
        chain_id = self.chain_id(message.book, message.subject)
        for _ in range(CONFLICT_RETRIES_MAX):
            events = self.events_of([chain_id]).get(chain_id, [])
            state = rebuild_subject(chain_id, message.book, message.subject, events, IN_FORCE)
            if message.seq <= state.chain.last_seq:
                self.record(witness("refused", f"its subject's chain is at seq {state.chain.last_seq}, not "
                                               f"below {message.seq}: decided already, or a later fact of "
                                               "the subject was; taking it in now would reorder its ledger"))
                return
            decisions = decide_and_append(state, message, trace_id, carrier)
            try:
                self.record(state.chain, witness("accepted", f"processed: {len(decisions)} decisions"))
            except IntegrityError:  # the consumer appended to the chain meanwhile: read it again
                continue
            return
        raise ConcurrentWriters(f"gave up after {CONFLICT_RETRIES_MAX} version conflicts")

    def _skip(self, position: Tracking) -> FactOutcome:
        """Record only the position of a message whose fact was already processed."""
        try:
            self.record(tracking=position)
        except IntegrityError:
            return FactOutcome.REDELIVERED
        return FactOutcome.REPUBLISHED

    # ---- subject states: cached, rebuilt from a snapshot and the chain after it ---------------------

    def _state(self, chain_id: uuid.UUID, book: str, subject: str) -> SubjectState:
        state = self._states.get(chain_id)
        if state is None:
            state = self._load({chain_id: (book, subject)})[chain_id]
        return state

    def _forget(self, states: Iterable[uuid.UUID]) -> None:
        for chain_id in states:
            self._states.pop(chain_id)

    def _load_missing(self, chain_ids: list[uuid.UUID], items: Sequence[BatchItem]) -> None:
        """Load the states of a batch's subjects that are not cached (two queries for them all)."""
        missing = {chain_id: (message.book, message.subject)
                   for chain_id, (message, *_) in zip(chain_ids, items, strict=True)
                   if chain_id not in self._states}
        if missing:
            self._load(missing)

    def _load(self, subjects: Mapping[uuid.UUID, tuple[str, str]]) -> dict[uuid.UUID, SubjectState]:
        """The states of these chains (id -> (book, subject)), each from its snapshot (if any) and the
        chain's events after it; cached."""
        snapshots = self.subject_snapshots.load(subjects)
        tails = self.events_after({chain_id: snapshots.get(chain_id, (0, None))[0] for chain_id in subjects})
        loaded = {}
        for chain_id, (book, subject) in subjects.items():
            version, start = snapshots.get(chain_id, (0, None))
            state = rebuild_subject(chain_id, book, subject, tails.get(chain_id, []), IN_FORCE, start)
            state.snapshot_version = version
            self._states.put(chain_id, state)
            loaded[chain_id] = state
        return loaded

    def _committed(self, states: Mapping[uuid.UUID, SubjectState]) -> None:
        """After the states' events are committed: count their new size in the cache, and snapshot
        those that grew by `SNAPSHOT_EVERY_EVENTS` since their last snapshot."""
        due = [(chain_id, state) for chain_id, state in states.items()
               if state.chain.version - state.snapshot_version >= SNAPSHOT_EVERY_EVENTS]
        for chain_id, state in states.items():
            self._states.put(chain_id, state)
        if not due:
            return
        try:
            self.subject_snapshots.save([(chain_id, state.chain.version, pack_state(state))
                                         for chain_id, state in due])
        except Exception:  # a snapshot only saves work: the chain is the record, and it is committed
            log.warning("could not save %d subject snapshots", len(due), exc_info=True)
            return
        for _, state in due:
            state.snapshot_version = state.chain.version

    def _trim(self) -> None:
        """Bring the cache within its budget, saving the snapshots of the states it lets go that are
        ahead of theirs (so that reading them again needs no tail)."""
        unsaved = self._states.trim()
        if not unsaved:
            return
        try:
            self.subject_snapshots.save(unsaved)
        except Exception:  # a snapshot only saves work: the chain is the record
            log.warning("could not save %d subject snapshots", len(unsaved), exc_info=True)

    def subject_cache_report(self) -> dict[str, int]:
        return self._states.report()

    def stream_events(self, book: str, subject: str) -> list[DecisionChain.FactProcessed]:
        """The processed facts of one subject, in order (for audits and tests)."""
        stored = self.events.get(self.chain_id(book, subject))
        return [e for e in stored if isinstance(e, DecisionChain.FactProcessed)]


def decide_and_append(
    state: SubjectState, message: FactMessageV1, trace_id: str | None, trace_carrier: dict[str, str]
) -> list[Decision]:
    """Decide on the fact with the subject's entitlement state and append it, with its decisions and
    the id of the rule set that made them, to the subject's chain (not saved yet)."""
    entitlement = state.entitlement
    if message.outcome == "rejected":
        reason = message.reason or "rejected"
        decisions = [entitlement.reject(message.fact_id, reason, message.digest, message.seq)]
    else:
        decisions = entitlement.apply(parse_fact(message.fact))
    state.chain.record(
        seq=message.seq, fact_id=message.fact_id, outcome=message.outcome, fact=message.fact,
        reason=message.reason, digest=message.digest,
        decisions=[d.stored() for d in decisions], rule_set=entitlement.rule_set.id,
        trace_id=trace_id, traceparent=trace_carrier.get("traceparent"),
        tracestate=trace_carrier.get("tracestate"),
    )
    return decisions


def pack_state(state: SubjectState) -> bytes:
    """A state as its snapshot holds it (`StatePacker.pack`): the chain and the entitlement."""
    return state_packer().pack((state.chain, state.entitlement))


def unpack_state(packed: bytes) -> SubjectState:
    chain, entitlement = state_packer().unpack(packed)
    return SubjectState(chain, entitlement)


@functools.cache
def state_packer() -> StatePacker:
    """The packer of subject states, its dictionary a sample worker's year (`_sample_state`): the same
    in every process of this code, as a snapshot written by one must be read by the others."""
    return StatePacker(_sample_state())


def _sample_state() -> tuple[DecisionChain, EntitlementState]:
    """A worker's year as the platforms and agencies report it (registration, a training, twelve monthly
    reports and contributions), decided: what states share, for the packing dictionary."""
    worker, platform = "320206196501010006", "9132020MA00000001E"
    facts: list[dict[str, Any]] = [
        {"type": "worker_registered", "at": "2021-06-01T08:00:00+08:00", "worker": worker, "name": "样本",
         "residence": "320205", "residence_since": "2011-05-01"},
        {"type": "training_completed", "at": "2021-06-02T08:00:00+08:00", "enterprise": platform,
         "worker": worker, "course": "course-01", "hours": 30, "completed_on": "2021-06-01"}]
    for index in range(12):  # June 2021 to May 2022, reported on the 3rd and paid on the 8th of the next
        year, month = divmod(2021 * 12 + 5 + index, 12)  # months counted from 0
        next_year, next_month = divmod(2021 * 12 + 6 + index, 12)
        period, after = f"{year}-{month + 1:02d}", f"{next_year}-{next_month + 1:02d}"
        facts += [
            {"type": "monthly_report", "at": f"{after}-03T08:00:00+08:00", "enterprise": platform,
             "worker": worker, "month": period, "income_fen": 480_600 + 100 * index, "hours": 320.5,
             "district": "320205"},
            {"type": "contribution_paid", "at": f"{after}-08T08:00:00+08:00", "worker": worker,
             "month": period, "amount_fen": 75_600}]
    state = rebuild_subject(uuid.UUID(int=0), "main", worker, [], IN_FORCE)
    for seq, fact in enumerate(facts, start=1):
        fact["id"] = f"sample-{seq}"
        digest = hashlib.sha256(json.dumps(fact, sort_keys=True).encode()).hexdigest()
        message = FactMessageV1(book="main", seq=seq, fact_id=fact["id"], subject=worker,
                                outcome="accepted", fact=fact, digest=digest, recorded_at=fact["at"],
                                reason=None, traceparent=None)
        decide_and_append(state, message, None, {})
        state.chain.collect_events()  # as once committed: a packed state holds no pending events
    # The same bytes in every process (the dictionary must be): the chain's clock times fixed.
    state.chain._created_on = state.chain._modified_on = datetime(2022, 6, 1, tzinfo=UTC)
    return state.chain, state.entitlement


def rebuild_subject(
    chain_id: uuid.UUID, book: str, subject: str, events: Iterable[object], rule_sets: RuleSets,
    start: Any = None,
) -> SubjectState:
    """A subject's state from its chain's stored events (none for a subject not seen yet): its accepted
    facts applied again under the rule set that decides the subject (`RuleSets.for_subject`: the one
    its first fact was decided under, else the current one). `start`: a snapshot (chain, entitlement)
    that `events` continue, else None and `events` are the whole chain."""
    chain: DecisionChain | None = None
    entitlement: EntitlementState | None = None
    if start is not None:
        chain, entitlement = start
    for stored in events:
        assert isinstance(stored, DecisionChain.Opened | DecisionChain.FactProcessed)
        chain = cast(DecisionChain, stored.mutate(chain))
        if isinstance(stored, DecisionChain.FactProcessed):
            entitlement = entitlement or EntitlementState(rule_sets.for_subject(stored.rule_set), book)
            if stored.outcome == "accepted":
                entitlement.apply(parse_fact(stored.fact))
    if chain is None:
        chain = DecisionChain._create(DecisionChain.Opened, id=chain_id, book=book, subject=subject)
    return SubjectState(chain, entitlement or EntitlementState(rule_sets.for_subject(None), book))
