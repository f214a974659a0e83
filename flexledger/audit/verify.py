"""`flexledger audit verify`: hold eligibility's stored ledger to its own evidence.

It reads eligibility's events table, in notification order, and checks:
1. every row decrypts and decodes (a changed byte fails AES-GCM's authentication: tampering);
2. every stream's versions run 1, 2, 3, ... (a gap is a deleted event), its id is the keyed id of the
   book and subject it holds (a moved row), and its hash chain links (`chain.link_hash` link by link,
   as `chain.verify_chain` does for a whole stream: an altered or deleted event breaks it);
3. every fact's decisions re-derive exactly from the stream's earlier facts under their rule set;
4. the signed checkpoints: each signature verifies with the public key, and the running digest of the
   stored rows up to each checkpoint still equals the signed one (count and digest);
5. intake's log as a second witness: every seq intake recorded, up to what eligibility reports as
   processed, has its event (this names a deleted event even at the end of a stream);
6. payments agree with decisions: per money line, what payments ordered net of clawbacks never
   exceeds grants minus clawbacks, and every order answers a grant of that amount;
7. the services' runtime role cannot UPDATE, DELETE or TRUNCATE an event table.

Problems name the event (notification id, stream with the subject masked, version). Exit 1 on any.

How (docs/design/audit.md, "audit verify"): steps 1-3 need only each stream's own rows, so `PARTS`
forked processes run them, each over its share of the streams (a byte of the stream id picks the
part), while this process checks the checkpoints over every row (4, from the state hashes PostgreSQL
computes), reads intake's and payments' logs and checks the roles (7); steps 5 and 6 then use the
merged results.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

import psycopg

from contracts.facts import FactShapeError
from contracts.identifiers import mask_identifiers
from flexledger.audit.replay import SubjectReplay, same_decisions
from flexledger.audit.store import (
    CHECKPOINT_SIGNED,
    OPENED,
    PROCESSED,
    SERVICE_SCHEMAS,
    Decoder,
    EventTable,
    Row,
    StreamIds,
    Undecodable,
    masked,
    where,
)
from services.eligibility.aggregates import chain_content
from services.eligibility.domain.chain import GENESIS, link_hash
from services.eligibility.domain.checkpoint import GENESIS as LOG_GENESIS
from services.eligibility.domain.checkpoint import check
from services.runtime.settings import Settings

PARTS = 2  # processes that share the streams (the machine this is measured on has 2 cores)
Books = frozenset[str] | None  # only these books (None: every book)
Line = tuple[
    str, str | None, str | None, str | None, str | None, str | None
]  # book, program, ben., subj., ref, month


@dataclass(frozen=True)
class Problem:
    where: str
    what: str
    order: tuple[int, int] = (9, 0)  # (check, notification id): the report lists problems in this order

    def __str__(self) -> str:
        # Texts from other cores (payments' reconcile) may name a beneficiary: operators see it masked.
        return mask_identifiers(f"{self.where}: {self.what}")


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: p.order)


@dataclass
class _Stream:
    book: str | None = None
    subject: str | None = None
    version: int = 0
    head: str = GENESIS
    replay: SubjectReplay | None = None
    broken: bool = False  # an earlier event could not be read: the chain cannot be followed


@dataclass
class _Checkpoint:
    label: str  # how a report names it
    content: dict[str, Any]


def _checkpoints(
    table: EventTable, decoder: Decoder, public_key: str, published: list[dict[str, Any]], report: Report
) -> list[_Checkpoint]:
    """The checkpoints recorded in the ledger, and those given as published (the topic's copy), each
    with a valid signature; problems for the others."""
    candidates: list[_Checkpoint] = []
    for row in table.rows(topic=CHECKPOINT_SIGNED):
        try:
            candidates.append(_Checkpoint(where(row), decoder.decode(row)))
        except Undecodable as exc:
            report.add(Problem(where(row), f"checkpoint {exc}: tampered", (1, row.notification_id)))
    candidates += [_Checkpoint("published checkpoint", dict(c)) for c in published]
    found, seen = [], set()
    for cp in candidates:
        up_to = cp.content.get("up_to_notification_id")
        problems = check(public_key, cp.content)
        if problems:
            report.add(
                Problem(
                    cp.label,
                    f"checkpoint up to notification {up_to}: " + "; ".join(problems),
                    (1, int(up_to or 0)),
                )
            )
            continue
        if (up_to, cp.content["signature"]) not in seen:
            seen.add((up_to, cp.content["signature"]))
            found.append(cp)
    return found


_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


class _HashedLogDigest:
    """`checkpoint.LogDigest`, fed each row's state as its SHA-256, which PostgreSQL computes: the digest
    pass then fetches 32 bytes a row instead of the row (held to LogDigest by the unit tests)."""

    def __init__(self) -> None:
        self.value, self.count = bytes.fromhex(LOG_GENESIS), 0

    def add(self, number: int, originator_id: str, version: int, topic: str, state_hash: bytes) -> None:
        entry = [number, originator_id, version, topic, state_hash.hex()]
        self.value = sha256(self.value + sha256(_CANONICAL(entry).encode()).digest()).digest()
        self.count += 1

    @property
    def digest(self) -> str:
        return self.value.hex()


class _Digests:
    """The running digest of the stored rows, remembered at each checkpoint's notification id."""

    def __init__(self, marks: list[int]) -> None:
        self.log = _HashedLogDigest()
        self.marks = sorted(set(marks))
        self.at: dict[int, tuple[str, int]] = {}
        self._next = 0

    def _settle(self, before: int) -> None:
        while self._next < len(self.marks) and self.marks[self._next] < before:
            self.at[self.marks[self._next]] = (self.log.digest, self.log.count)
            self._next += 1

    def add(self, row: Row) -> None:  # row.state: the stored state's SHA-256
        self._settle(row.notification_id)
        self.log.add(row.notification_id, row.originator_id, row.version, row.topic, row.state)

    def finish(self) -> None:
        self._settle(2**63)


def _line(book: str, d: dict[str, Any]) -> Line:
    return (book, d.get("program"), d.get("beneficiary"), d.get("subject"), d.get("ref"), d.get("month"))


@dataclass
class _Money:
    granted: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    clawed: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    decisions: dict[str, tuple[str, Line, int]] = field(default_factory=dict)  # id -> (kind, line, amount)
    seqs: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # book -> seqs processed


def _check_digests(
    table: EventTable, decoder: Decoder, public_key: str, published: list[dict[str, Any]], report: Report
) -> None:
    """Step 4: each checkpoint's signature, and the running digest of every stored row up to it."""
    checkpoints = _checkpoints(table, decoder, public_key, published, report)
    up_tos = [int(c.content["up_to_notification_id"]) for c in checkpoints]
    digests = _Digests(up_tos)
    for row in table.rows(up_to=max(up_tos, default=0), hashed=True):
        digests.add(row)
    digests.finish()
    for cp in checkpoints:
        up_to, signed_count = int(cp.content["up_to_notification_id"]), int(cp.content["event_count"])
        digest, count = digests.at.get(up_to, (None, 0))
        report.counts["checkpoints"] += 1
        if digest == cp.content["digest"] and count == signed_count:
            continue
        earlier = [
            int(c.content["up_to_notification_id"])
            for c in checkpoints
            if int(c.content["up_to_notification_id"]) < up_to
            and digests.at.get(int(c.content["up_to_notification_id"]), (None,))[0] == c.content["digest"]
        ]
        since = max(earlier, default=0)
        report.add(
            Problem(
                cp.label,
                f"the stored rows up to notification {up_to} no longer match the checkpoint signed at "
                f"{cp.content['signed_at']}: {count} events now, {signed_count} signed, digest differs — "
                f"a row between notification {since + 1} and {up_to} was altered, deleted or inserted",
                (1, up_to),
            )
        )
    if not checkpoints:
        report.notes.append(
            "no signed checkpoint yet: tampering before the first checkpoint is caught only by "
            "the hash chains"
        )


def _streams(settings: Settings, book: Books, part: tuple[int, int] | None) -> tuple[Report, _Money]:
    """Steps 1-3 over the streams of one part (`part` = (k, n): every row of the streams in part k of
    n, in notification order; None: every stream): every row decodes, versions run on, stream ids are
    keyed, chains link, facts re-derive. Runs in a worker process: takes and returns plain data."""
    report, money = Report(), _Money()
    decoder, stream_id = Decoder(settings), StreamIds(settings)
    streams: dict[str, _Stream] = defaultdict(_Stream)
    counts = report.counts
    for row in EventTable(settings, "eligibility").rows(part=part):
        counts["events"] += 1
        stream = streams[row.originator_id]
        if row.version != stream.version + 1:
            _version_gap(row, stream, book, report)
        stream.version = row.version
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            report.add(
                Problem(
                    where(row, {"book": stream.book, "subject": stream.subject}),
                    f"the stored event {exc}: it was altered",
                    (0, row.notification_id),
                )
            )
            stream.broken = True
            counts["undecodable"] += 1
            continue
        if row.topic == OPENED:
            stream.book, stream.subject = state.get("book"), state.get("subject")
            if (
                stream.book is not None
                and stream.subject is not None
                and str(stream_id(stream.book, stream.subject)) != row.originator_id
            ):
                report.add(
                    Problem(
                        where(row, state),
                        "this stream's id is not the keyed id of its book and "
                        "subject: the row was moved or forged",
                        (0, row.notification_id),
                    )
                )
            counts["streams"] += 1
            continue
        if row.topic != PROCESSED:
            continue  # checkpoints (step 4), and events of other kinds
        if book is not None and state.get("book") not in book:
            continue
        _processed(row, state, stream, money, report)
    return report, money


def _version_gap(row: Row, stream: _Stream, book: Books, report: Report) -> None:
    if row.version <= stream.version:
        what = f"version {row.version} stored again after version {stream.version}"
    else:
        missing = ", ".join(str(v) for v in range(stream.version + 1, min(row.version, stream.version + 6)))
        what = (
            f"version {missing}{'…' if row.version - stream.version > 6 else ''} of this stream is "
            f"missing: a stored event was deleted (the stream jumps from version {stream.version} "
            f"to {row.version} here)"
        )
    if book is None or stream.book is None or stream.book in book:
        here = where(row, {"book": stream.book, "subject": stream.subject})
        report.add(Problem(here, what, (0, row.notification_id)))
    stream.broken = True


def _merge(report: Report, parts: list[tuple[Report, _Money]]) -> _Money:
    """The parts' findings in one report, and their money in one account."""
    money = _Money()
    for part_report, part_money in parts:
        for name, count in part_report.counts.items():
            report.counts[name] += count
        report.problems += part_report.problems
        report.notes += part_report.notes
        for line, amount in part_money.granted.items():
            money.granted[line] += amount
        for line, amount in part_money.clawed.items():
            money.clawed[line] += amount
        money.decisions.update(part_money.decisions)
        for book, seqs in part_money.seqs.items():
            money.seqs[book] |= seqs
    report.counts["books"] = len(money.seqs)
    return money


def _processed(row: Row, state: dict[str, Any], stream: _Stream, money: _Money, report: Report) -> None:
    counts = report.counts

    def problem(what: str, check: int = 0) -> None:  # named only when needed: masking costs
        report.add(Problem(where(row, state), what, (check, row.notification_id)))

    if (stream.book, stream.subject) != (state.get("book"), state.get("subject")) and stream.book is not None:
        problem("the event names another book or subject than its stream")
    try:
        content = chain_content(state)
    except KeyError as exc:
        problem(f"the event lacks {exc}: it was altered")
        stream.broken = True
        return
    # The hash chain (chain.verify_chain, one link at a time): the link to the previous event, and this
    # event's content under its own hash.
    if not stream.broken and state.get("prev_hash") != stream.head:
        problem(
            "its previous-hash does not link to the stream's previous event: an earlier "
            "event was altered, deleted or inserted"
        )
    if link_hash(str(state.get("prev_hash")), content) != state.get("hash"):
        problem("its content does not match its hash: the event was altered")
    counts["links"] += 1
    counts["facts"] += 1
    stream.head = str(state.get("hash"))
    stream.broken = False
    book = str(state["book"])
    money.seqs[book].add(int(state["seq"]))
    decisions = state.get("decisions") or []
    counts["decisions"] += len(decisions)
    for d in decisions:
        counts[f"decisions.{d.get('kind')}"] += 1
        if d.get("kind") in ("grant", "clawback"):
            line = _line(book, d)
            target = money.granted if d["kind"] == "grant" else money.clawed
            target[line] += int(d["amount_fen"])
            money.decisions[str(d["decision_id"])] = (d["kind"], line, int(d["amount_fen"]))
    try:
        if stream.replay is None:
            stream.replay = SubjectReplay(str(state["rule_set"]), book)
        derived = stream.replay.decide(state)
    except (LookupError, FactShapeError, KeyError, ValueError, TypeError) as exc:
        problem(f"its fact cannot be replayed: {exc}", 2)
        stream.replay = None
        return
    counts["re-derived"] += 1
    if not same_decisions(decisions, derived):
        stored_ids = [d.get("decision_id") for d in decisions]
        derived_ids = [d.get("decision_id") for d in derived]
        problem(
            f"its decisions do not re-derive from the stored facts (stored {stored_ids}, "
            f"re-derived {derived_ids})",
            2,
        )


@dataclass
class _Intake:
    watermarks: dict[str, int]  # book -> the last seq eligibility reports processed
    recorded: dict[str, dict[int, str | None]]  # book -> seq -> fact id, as intake recorded them


def _intake_recorded(settings: Settings, decoder: Decoder, book: Books, report: Report) -> _Intake | None:
    """Intake's recorded seqs and eligibility's processed watermarks (None: the check cannot run)."""
    table = EventTable(settings, "intake")
    if not table.exists():
        report.notes.append("intake's event table is missing: the intake cross-check was skipped")
        return None
    try:
        with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
            watermarks: dict[str, int] = dict(
                conn.execute("SELECT book, last_seq FROM eligibility.eligibility_progress").fetchall()
            )
    except psycopg.Error:
        report.notes.append("eligibility's progress table is unreadable: the intake cross-check was skipped")
        return None
    recorded: dict[str, dict[int, str | None]] = defaultdict(dict)
    for row in table.rows():
        if not row.topic.endswith(("FactSubmission.Recorded", "FactSubmission.ReuseRejected")):
            continue
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            report.add(
                Problem(
                    f"intake {where(row)}",
                    f"the stored event {exc}: it was altered",
                    (3, row.notification_id),
                )
            )
            continue
        if book is None or state.get("book") in book:
            recorded[str(state["book"])][int(state["seq"])] = state.get("fact_id")
    return _Intake(watermarks, recorded)


def _intake_witness(intake: _Intake, money: _Money, report: Report) -> None:
    """Step 5: every seq intake recorded, up to eligibility's processed watermark, has its event."""
    for intake_book, seqs in sorted(intake.recorded.items()):
        report.counts["intake seqs"] += len(seqs)
        watermark = int(intake.watermarks.get(intake_book, 0))
        processed = money.seqs.get(intake_book, set())
        for seq in sorted(s for s in seqs if s <= watermark and s not in processed):
            report.add(
                Problem(
                    f"book {intake_book}, seq {seq} (fact {seqs[seq]})",
                    "intake recorded this fact and eligibility reported it processed, but eligibility "
                    "holds no event for it: its ledger event was deleted",
                    (0, 2**62 + seq),
                )
            )


@dataclass
class _PaymentsLines:
    ordered: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    cancelled: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    claimed: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    settled: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    order_lines: dict[str, Line] = field(default_factory=dict)
    books: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def _payments_line(book: str, line: dict[str, Any]) -> Line:
    return (book, line.get("program"), line.get("beneficiary"), line.get("subject"), line.get("ref"),
            line.get("month"))


def _payments_domain_event(book: str, ev: dict[str, Any], where_: str, order: tuple[int, int],
                           money: _Money, lines: _PaymentsLines, report: Report) -> None:
    """One domain event of the payments book (services/payments/codec.py's encoding)."""
    kind = ev.get("type")
    if kind == "DecisionReceived":
        line, amount = _payments_line(book, ev["line"]), int(ev["amount_fen"])
        report.counts["payments decisions"] += 1
        if money.decisions.get(str(ev["decision_id"])) != (ev["kind"], line, amount):
            report.add(Problem(where_, f"payments received {ev['kind']} {ev['decision_id']} of {amount} fen, "
                               "which no decision of the ledger matches (id, line and amount)", order))
    elif kind == "OrderCreated":
        line = _payments_line(book, ev["line"])
        lines.order_lines[str(ev["order_id"])] = line
        lines.ordered[line] += int(ev["amount_fen"])
    elif kind == "OrderCancelled":
        lines.cancelled[lines.order_lines.get(str(ev["order_id"]), (book, None, None, None, None, None))] += \
            int(ev["amount_fen"])
    elif kind == "ReceivableRaised":
        lines.claimed[_payments_line(book, ev["line"])] += int(ev["amount_fen"])
    elif kind == "PaymentConfirmed":
        lines.settled[lines.order_lines.get(str(ev["order_id"]), (book, None, None, None, None, None))] += \
            int(ev["amount_fen"])


# The payments book's records, and the walking skeleton's one-order-per-decision events.
_PAYMENTS_TOPICS = ("PaymentsBookStream.Recorded", ".PaymentOrderCreated", ".ClawbackRecorded")


def _payments_events(
    settings: Settings, decoder: Decoder, book: Books, report: Report
) -> list[tuple[Row, dict[str, Any]]] | None:
    """The payments events the check reads, decoded (None: payments' event table is missing)."""
    table = EventTable(settings, "payments")
    if not table.exists():
        report.notes.append("payments' event table is missing: the payments check was skipped")
        return None
    events = []
    for row in table.rows():
        if not row.topic.endswith(_PAYMENTS_TOPICS):
            continue
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            report.add(Problem(f"payments {where(row)}", f"the stored event {exc}: it was altered",
                               (4, row.notification_id)))
            continue
        if book is None or state.get("book") in book:
            events.append((row, state))
    return events


def _payments(payments: list[tuple[Row, dict[str, Any]]], money: _Money, report: Report) -> None:
    """Step 6: per money line, what payments ordered net of cancellations and recoveries (receivables
    raised) never exceeds grants minus clawbacks of the ledger, nor does what it paid; every decision
    payments received is one of the ledger's; and each payments book reconciles (trial balance zero)."""
    lines = _PaymentsLines()
    for row, state in payments:
        book_record = row.topic.endswith("PaymentsBookStream.Recorded")
        report.counts["payments events"] += 1
        here, order = f"payments {where(row)}", (4, row.notification_id)
        if book_record:
            events = state.get("events") or []
            lines.books[str(state["book"])].extend(events)
            for ev in events:
                _payments_domain_event(str(state["book"]), ev, here, order, money, lines, report)
            continue
        # The walking skeleton's events: one order (grant) or clawback per decision.
        line, amount = _line(str(state["book"]), state), int(state["amount_fen"])
        created = row.topic.endswith(".PaymentOrderCreated")
        (lines.ordered if created else lines.claimed)[line] += amount
        kind = "grant" if created else "clawback"
        if money.decisions.get(str(state.get("decision_id"))) != (kind, line, amount):
            report.add(Problem(here, f"a {kind} of {amount} fen that no ledger decision matches", order))
    for line in sorted(set(lines.ordered) | set(lines.claimed) | set(lines.settled), key=str):
        report.counts["payment lines"] += 1
        entitled = money.granted.get(line, 0) - money.clawed.get(line, 0)
        net_ordered = lines.ordered[line] - lines.cancelled[line] - lines.claimed[line]
        net_paid = lines.settled[line] - lines.claimed[line]
        book_, program, beneficiary, subject, ref, month = line
        name = f"payments line {book_}/{program}/{masked(beneficiary)}/{masked(subject)}/{ref}/{month}"
        if net_ordered > entitled:
            report.add(Problem(name, f"ordered net of cancellations and recoveries {net_ordered} fen exceeds "
                               f"grants minus clawbacks {entitled} fen", (4, 2**62)))
        if net_paid > entitled:
            report.add(Problem(name, f"paid net of recoveries {net_paid} fen exceeds grants minus clawbacks "
                               f"{entitled} fen", (4, 2**62)))
    _payments_reconcile(lines.books, report)


def _payments_reconcile(books: dict[str, list[dict[str, Any]]], report: Report) -> None:
    """Replay each payments book with payments' own pure core and reconcile it (trial balance 0)."""
    if not books:
        return
    try:
        from services.payments.codec import decode
        from services.payments.domain import PaymentsBook, reconcile
    except ImportError as exc:
        report.notes.append(f"payments' core is not importable ({exc}): books not reconciled")
        return
    for name, encoded in sorted(books.items()):
        try:
            problems = reconcile(PaymentsBook.replay((decode(ev) for ev in encoded), name))
        except Exception as exc:  # a foreign core: report, do not crash the audit
            report.add(Problem(f"payments book {name}", f"cannot be replayed: {exc}", (4, 2**62)))
            continue
        report.counts["payments books reconciled"] += 1
        for problem in problems:
            report.add(Problem(f"payments book {name}", f"does not reconcile: {problem}", (4, 2**62)))


def _roles(settings: Settings, report: Report) -> None:
    """The runtime role cannot UPDATE, DELETE or TRUNCATE an event table, nor own one."""
    role = settings.pg_app_user
    if not role:
        report.notes.append("no runtime role configured (pg_app_user): the role check was skipped")
        return
    with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            report.notes.append(f"role {role} does not exist: the role check was skipped")
            return
        for schema in SERVICE_SCHEMAS:
            table = f'"{schema}"."{schema}_events"'
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if not (found and found[0]):
                continue
            owner, can_change = conn.execute(
                "SELECT pg_get_userbyid(relowner), has_table_privilege(%s, %s::regclass, "
                "'UPDATE, DELETE, TRUNCATE') FROM pg_class WHERE oid = %s::regclass",
                (role, table, table),
            ).fetchone() or (None, False)
            report.counts["event tables"] += 1
            if owner == role or can_change:
                report.add(
                    Problem(
                        f"table {schema}.{schema}_events",
                        f"the services' role {role} can UPDATE, DELETE or TRUNCATE it",
                        (5, 0),
                    )
                )


@contextmanager
def _few_collections() -> Iterator[None]:
    """The pass allocates millions of short-lived objects (freed by reference counting) while it keeps a
    large and growing state (a rules state per stream): at the default thresholds the cyclic collector
    traverses that state over and over (10-20% of the time). Forked workers inherit the setting, and
    what is loaded already is frozen out of the collections (and of copy-on-write in the workers)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def verify(
    settings: Settings,
    *,
    books: Books = None,
    public_key: str,
    published: list[dict[str, Any]] | None = None,
) -> Report:
    """Every check; `published`: checkpoints as received from the topic, held to the ledger as well as
    those the ledger recorded (deleting recorded checkpoints then hides nothing)."""
    report = Report()
    decoder = Decoder(settings)
    # Steps 1-3 in PARTS forked processes, each over its share of the streams (a stream's checks need
    # only its own rows), while this one checks the checkpoints over every row, reads intake's and
    # payments' logs and the roles; then the checks that need the streams' results.
    fork = multiprocessing.get_context("fork")
    with _few_collections(), ProcessPoolExecutor(PARTS, mp_context=fork) as pool:
        parts = [pool.submit(_streams, settings, books, (k, PARTS)) for k in range(PARTS)]
        _check_digests(EventTable(settings, "eligibility"), decoder, public_key, published or [], report)
        intake = _intake_recorded(settings, decoder, books, report)
        payments = _payments_events(settings, decoder, books, report)
        _roles(settings, report)
        money = _merge(report, [part.result() for part in parts])
    if intake is not None:
        _intake_witness(intake, money, report)
    if payments is not None:
        _payments(payments, money, report)
    return report


__all__ = ["Problem", "Report", "verify"]
