"""Step 6 of `audit verify`: payments agree with the ledger's decisions (read from payments' own event
table). Every decision payments received is one of the ledger's (id, line and amount); per money line,
what payments ordered net of cancellations and recoveries (receivables raised) never exceeds grants
minus clawbacks, nor does what it paid; each payments book replays with payments' own pure core and
reconciles (trial balance zero). The walking skeleton's one-order-per-decision events are still read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from flexledger.audit.store import Decoder, EventTable, Row, Undecodable, masked, where
from flexledger.audit.verify.money import Line, Money, money_line
from flexledger.audit.verify.report import AFTER_EVERY_EVENT, PAYMENTS, Books, Problem, Report
from services.runtime.settings import Settings

_BOOK_RECORDED = "PaymentsBookStream.Recorded"  # a payments book's record: encoded domain events
_SKELETON_TOPICS = (".PaymentOrderCreated", ".ClawbackRecorded")  # one order or clawback per decision
_TOPICS = (_BOOK_RECORDED, *_SKELETON_TOPICS)


def read_payments(
    settings: Settings, decoder: Decoder, books: Books, report: Report
) -> list[tuple[Row, dict[str, Any]]] | None:
    """The payments events the check reads, decoded (None: payments' event table is missing)."""
    table = EventTable(settings, "payments")
    if not table.exists():
        report.notes.append("payments' event table is missing: the payments check was skipped")
        return None
    events = []
    for row in table.rows():
        if not row.topic.endswith(_TOPICS):
            continue
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            report.add(Problem(f"payments {where(row)}", f"the stored event {exc}: it was altered",
                               (PAYMENTS, row.notification_id)))
            continue
        if books is None or state.get("book") in books:
            events.append((row, state))
    return events


def check_payments(events: list[tuple[Row, dict[str, Any]]], money: Money, report: Report) -> None:
    """Step 6 over the payments events `read_payments` returned, against the ledger's `money`."""
    check = _PaymentsLines(money, report)
    for row, state in events:
        check.event(row, state)
    check.within_entitlement()
    _reconcile(check.books, report)


class _PaymentsLines:
    """What payments did per money line, folded from its events and held against the ledger's money."""

    def __init__(self, money: Money, report: Report) -> None:
        self.money, self.report = money, report
        self.ordered: dict[Line, int] = defaultdict(int)
        self.cancelled: dict[Line, int] = defaultdict(int)
        self.claimed: dict[Line, int] = defaultdict(int)  # receivables raised: recoveries
        self.settled: dict[Line, int] = defaultdict(int)
        self.order_lines: dict[str, Line] = {}
        self.books: dict[str, list[dict[str, Any]]] = defaultdict(list)  # book -> its encoded events

    def event(self, row: Row, state: dict[str, Any]) -> None:
        self.report.counts["payments events"] += 1
        here, order = f"payments {where(row)}", (PAYMENTS, row.notification_id)
        book = str(state["book"])
        if not row.topic.endswith(_BOOK_RECORDED):
            self._skeleton_event(row, state, book, here, order)
            return
        events = state.get("events") or []
        self.books[book].extend(events)
        for ev in events:
            self._domain_event(book, ev, here, order)

    def _domain_event(self, book: str, ev: dict[str, Any], here: str, order: tuple[int, int]) -> None:
        """One domain event of a payments book (services/payments/codec.py's encoding)."""
        kind = ev.get("type")
        if kind == "DecisionReceived":
            line, amount = money_line(book, ev["line"]), int(ev["amount_fen"])
            self.report.counts["payments decisions"] += 1
            if self.money.decisions.get(str(ev["decision_id"])) != (ev["kind"], line, amount):
                what = (
                    f"payments received {ev['kind']} {ev['decision_id']} of {amount} fen, which no decision "
                    "of the ledger matches (id, line and amount)"
                )
                self.report.add(Problem(here, what, order))
        elif kind == "OrderCreated":
            line = money_line(book, ev["line"])
            self.order_lines[str(ev["order_id"])] = line
            self.ordered[line] += int(ev["amount_fen"])
        elif kind == "OrderCancelled":
            self.cancelled[self._order_line(book, ev)] += int(ev["amount_fen"])
        elif kind == "ReceivableRaised":
            self.claimed[money_line(book, ev["line"])] += int(ev["amount_fen"])
        elif kind == "PaymentConfirmed":
            self.settled[self._order_line(book, ev)] += int(ev["amount_fen"])

    def _order_line(self, book: str, ev: dict[str, Any]) -> Line:
        """The line of the order an event names (an order this log never created: the book's unknown line)."""
        return self.order_lines.get(str(ev["order_id"]), money_line(book, {}))

    def _skeleton_event(
        self, row: Row, state: dict[str, Any], book: str, here: str, order: tuple[int, int]
    ) -> None:
        """The walking skeleton's events: one order (grant) or clawback per decision."""
        line, amount = money_line(book, state), int(state["amount_fen"])
        created = row.topic.endswith(".PaymentOrderCreated")
        (self.ordered if created else self.claimed)[line] += amount
        kind = "grant" if created else "clawback"
        if self.money.decisions.get(str(state.get("decision_id"))) != (kind, line, amount):
            self.report.add(Problem(here, f"a {kind} of {amount} fen that no ledger decision matches", order))

    def within_entitlement(self) -> None:
        """Per money line, orders net of cancellations and recoveries, and payments net of recoveries,
        never exceed grants minus clawbacks."""
        for line in sorted(set(self.ordered) | set(self.claimed) | set(self.settled), key=str):
            self.report.counts["payment lines"] += 1
            entitled = self.money.granted.get(line, 0) - self.money.clawed.get(line, 0)
            net_ordered = self.ordered[line] - self.cancelled[line] - self.claimed[line]
            net_paid = self.settled[line] - self.claimed[line]
            book, program, beneficiary, subject, ref, month = line
            name = f"payments line {book}/{program}/{masked(beneficiary)}/{masked(subject)}/{ref}/{month}"
            if net_ordered > entitled:
                what = (
                    f"ordered net of cancellations and recoveries {net_ordered} fen exceeds grants minus "
                    f"clawbacks {entitled} fen"
                )
                self.report.add(Problem(name, what, (PAYMENTS, AFTER_EVERY_EVENT)))
            if net_paid > entitled:
                what = f"paid net of recoveries {net_paid} fen exceeds grants minus clawbacks {entitled} fen"
                self.report.add(Problem(name, what, (PAYMENTS, AFTER_EVERY_EVENT)))


def _reconcile(books: dict[str, list[dict[str, Any]]], report: Report) -> None:
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
            report.add(
                Problem(f"payments book {name}", f"cannot be replayed: {exc}", (PAYMENTS, AFTER_EVERY_EVENT))
            )
            continue
        report.counts["payments books reconciled"] += 1
        for problem in problems:
            report.add(Problem(f"payments book {name}", f"does not reconcile: {problem}",
                               (PAYMENTS, AFTER_EVERY_EVENT)))
