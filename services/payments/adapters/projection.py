"""Payments' read side: query tables per book, folded from the notification log, exactly once.

The projection keeps its own copy of each book (`PaymentsBook`, folded from the same events as the
write side, up to its own position in the log) and, for every batch of notifications, rewrites the
rows of what the batch touched from that copy with the domain's own reports (`RunningTotals`, which
keeps `programme_totals` per programme and year by re-counting only the orders and claims touched, and
`beneficiary_balance`) — so a figure on the read side is computed exactly as the domain defines it.
Rows and the follower's position commit in one transaction (`services.runtime.outbox.LogFollower`). If that
transaction fails, the same notifications come again: they are not folded twice (the copy knows how
far it got), and the rows they touched are written with the retry. The copy spills its idle lines
as the write side's book does (services/payments/domain/spill.py), once the rows that
touched them are committed.

Tables (schema `payments`): `payments_books`, `payments_book_orders`, `payments_programme_totals`
(per programme and fiscal year), `payments_beneficiary_balances`, `payments_accounts` (the general
ledger: balance per account), `payments_disbursement_entries`, `payments_refusals`. They hold
beneficiaries in clear (they answer queries by them); access to them is a role question (issue 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services.payments.adapters.metrics import PaymentsMetrics
from services.payments.aggregates import PaymentsBookStream
from services.payments.application import prefetch_decided
from services.payments.codec import decode
from services.payments.domain import (
    Account,
    AccountKind,
    PaymentsBook,
    RunningTotals,
    beneficiary_balance,
    postings_for,
)
from services.payments.domain import events as e
from services.runtime.outbox import Batch, Connection

NAME = "projection:payments_view"
SCHEMA = "payments"
DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_books (
    book text PRIMARY KEY,
    stream_version integer NOT NULL,
    domain_events bigint NOT NULL,
    batches integer NOT NULL,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_book_orders (
    book text NOT NULL,
    order_id text NOT NULL,
    decision_id text NOT NULL,
    program text NOT NULL,
    fiscal_year integer NOT NULL,
    beneficiary text NOT NULL,
    subject text,
    ref text,
    month text,
    granted_fen bigint NOT NULL,
    amount_fen bigint NOT NULL,
    cancelled_fen bigint NOT NULL,
    offset_fen bigint NOT NULL,
    paid_fen bigint NOT NULL,
    in_transit_fen bigint NOT NULL,
    unpaid_fen bigint NOT NULL,
    state text NOT NULL,
    awaiting_reason text,
    attempts integer NOT NULL,
    last_return_reason text,
    rule_set text,
    trace_id text,
    created_at timestamptz NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (book, order_id)
);
-- The platforms whose own an order is (docs/design/http-auth.md): the enterprise the deciding fact
-- named, else the worker's employers when it was decided (null: neither, or an older order).
ALTER TABLE {SCHEMA}.payments_book_orders ADD COLUMN IF NOT EXISTS platforms text[];
CREATE INDEX IF NOT EXISTS payments_book_orders_by_position ON {SCHEMA}.payments_book_orders (book, position);
CREATE INDEX IF NOT EXISTS payments_book_orders_by_beneficiary
    ON {SCHEMA}.payments_book_orders (book, beneficiary);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_programme_totals (
    book text NOT NULL,
    program text NOT NULL,
    fiscal_year integer NOT NULL,
    appropriated_fen bigint NOT NULL,
    committed_fen bigint NOT NULL,
    paid_by_bank_fen bigint NOT NULL,
    paid_by_offset_fen bigint NOT NULL,
    recovered_fen bigint NOT NULL,
    receivables_outstanding_fen bigint NOT NULL,
    awaiting_budget_fen bigint NOT NULL,
    awaiting_budget_orders integer NOT NULL,
    PRIMARY KEY (book, program, fiscal_year)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_beneficiary_balances (
    book text NOT NULL,
    beneficiary text NOT NULL,
    awaiting_budget_fen bigint NOT NULL,
    payable_fen bigint NOT NULL,
    in_transit_fen bigint NOT NULL,
    paid_by_bank_fen bigint NOT NULL,
    paid_by_offset_fen bigint NOT NULL,
    receivable_fen bigint NOT NULL,
    recovered_fen bigint NOT NULL,
    last_return_reason text,
    PRIMARY KEY (book, beneficiary)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_accounts (
    book text NOT NULL,
    account text NOT NULL,
    kind text NOT NULL,
    program text,
    fiscal_year integer,
    balance_fen bigint NOT NULL,
    PRIMARY KEY (book, account)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_disbursement_entries (
    book text NOT NULL,
    entry_id text NOT NULL,
    batch_id text NOT NULL,
    order_id text NOT NULL,
    beneficiary text NOT NULL,
    program text NOT NULL,
    fiscal_year integer NOT NULL,
    amount_fen bigint NOT NULL,
    attempt integer NOT NULL,
    cut_at timestamptz NOT NULL,
    outcome text,
    confirmation text,
    return_reason text,
    settled_at timestamptz,
    PRIMARY KEY (book, entry_id)
);
CREATE INDEX IF NOT EXISTS payments_disbursement_entries_by_order
    ON {SCHEMA}.payments_disbursement_entries (book, order_id);
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_refusals (
    book text NOT NULL,
    position bigint NOT NULL,
    cause_kind text NOT NULL,
    cause_id text,
    reason text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (book, position, cause_id)
);
"""

_ORDER_COLUMNS = (
    "book", "order_id", "decision_id", "program", "fiscal_year", "beneficiary", "subject", "ref", "month",
    "granted_fen", "amount_fen", "cancelled_fen", "offset_fen", "paid_fen", "in_transit_fen", "unpaid_fen",
    "state", "awaiting_reason", "attempts", "last_return_reason", "rule_set", "trace_id", "created_at",
    "position", "platforms",
)
_ORDER_MUTABLE = (
    "amount_fen", "cancelled_fen", "offset_fen", "paid_fen", "in_transit_fen", "unpaid_fen", "state",
    "awaiting_reason", "attempts", "last_return_reason",
)
_TOTALS_COLUMNS = (
    "book", "program", "fiscal_year", "appropriated_fen", "committed_fen", "paid_by_bank_fen",
    "paid_by_offset_fen", "recovered_fen", "receivables_outstanding_fen", "awaiting_budget_fen",
    "awaiting_budget_orders",
)
_BALANCE_COLUMNS = (
    "book", "beneficiary", "awaiting_budget_fen", "payable_fen", "in_transit_fen", "paid_by_bank_fen",
    "paid_by_offset_fen", "receivable_fen", "recovered_fen", "last_return_reason",
)
_ENTRY_COLUMNS = (
    "book", "entry_id", "batch_id", "order_id", "beneficiary", "program", "fiscal_year", "amount_fen",
    "attempt", "cut_at", "outcome", "confirmation", "return_reason", "settled_at",
)


def _upsert(table: str, columns: tuple[str, ...], keys: tuple[str, ...], mutable: tuple[str, ...]) -> str:
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in mutable)
    return (f"INSERT INTO {SCHEMA}.{table} ({', '.join(columns)}) VALUES ({values}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")


_UPSERT_ORDER = _upsert("payments_book_orders", _ORDER_COLUMNS, ("book", "order_id"), _ORDER_MUTABLE)
_UPSERT_TOTALS = _upsert("payments_programme_totals", _TOTALS_COLUMNS, ("book", "program", "fiscal_year"),
                         _TOTALS_COLUMNS[3:])
_UPSERT_BALANCE = _upsert("payments_beneficiary_balances", _BALANCE_COLUMNS, ("book", "beneficiary"),
                          _BALANCE_COLUMNS[2:])
_UPSERT_ENTRY = _upsert("payments_disbursement_entries", _ENTRY_COLUMNS, ("book", "entry_id"),
                        ("outcome", "confirmation", "return_reason", "settled_at"))
_UPSERT_ACCOUNT = _upsert("payments_accounts", ("book", "account", "kind", "program", "fiscal_year",
                                                "balance_fen"), ("book", "account"), ("balance_fen",))
_UPSERT_BOOK = _upsert("payments_books", ("book", "stream_version", "domain_events", "batches", "position",
                                          "updated_at"), ("book",),
                       ("stream_version", "domain_events", "batches", "position", "updated_at"))
_INSERT_REFUSAL = (
    f"INSERT INTO {SCHEMA}.payments_refusals (book, position, cause_kind, cause_id, reason, recorded_at) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
)


async def create_tables(pool: asyncpg.Pool) -> None:
    await pool.execute(DDL)


_OrderMeta = tuple[str | None, str | None, int, list[str] | None]
_NO_META: _OrderMeta = (None, None, 0, None)


def _platforms(cause: dict[str, Any]) -> list[str] | None:
    """Whose own an order is besides its beneficiary and subject: the enterprise the deciding fact
    named, else the employers of its worker then (DecisionV1.employers); None: nobody's."""
    if (enterprise := cause.get("enterprise")) is not None:
        return [enterprise]
    employers = cause.get("employers")
    return list(employers) if employers else None


@dataclass
class _Touched:
    """What the notifications handed since the last committed transaction changed, per book."""

    books: dict[str, tuple[int, int, datetime]] = field(default_factory=dict)  # version, position, at
    orders: set[tuple[str, str]] = field(default_factory=set)
    # (book, order id) -> (rule set, trace id, position, platforms) of the decision that created it
    order_meta: dict[tuple[str, str], _OrderMeta] = field(default_factory=dict)
    claims: set[tuple[str, str]] = field(default_factory=set)
    beneficiaries: set[tuple[str, str]] = field(default_factory=set)
    programmes: set[tuple[str, str, int]] = field(default_factory=set)  # (book, program, fiscal year)
    accounts: set[tuple[str, Account]] = field(default_factory=set)
    entries: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    refusals: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Rows:
    books: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    totals: list[tuple[Any, ...]] = field(default_factory=list)
    balances: list[tuple[Any, ...]] = field(default_factory=list)
    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    refusals: list[tuple[Any, ...]] = field(default_factory=list)


class PaymentsProjection:
    name = NAME

    def __init__(
        self, metrics: PaymentsMetrics | None = None, new_book: Callable[[str], PaymentsBook] = PaymentsBook
    ) -> None:
        self.metrics = metrics  # counts what is folded live (not the start-up scan)
        self.new_book = new_book  # the copy of a book (the service's spills; by default one that keeps all)
        self.books: dict[str, PaymentsBook] = {}
        self.totals: dict[str, RunningTotals] = {}  # per book, made when its rows are first written
        self.cut_at: dict[tuple[str, str], datetime] = {}  # (book, batch id) -> when it was cut
        self.folded = 0  # the last notification id folded into `books`
        self._handed = 0  # the last notification id of the batch last handed to us
        self._touched = _Touched()
        self._replay_until = 0

    # ---- start-up: the copy of every book up to the follower's recorded position ----------------

    def start_at(self, position: int) -> None:
        """Before the start-up scan: the follower's recorded position, up to which `observe` folds."""
        self._replay_until = self.folded = self._handed = position
        self._touched = _Touched()
        self.books.clear()
        self.totals.clear()
        self.cut_at.clear()

    def observe(self, batch: Batch) -> None:
        """Called for every page of notifications of the start-up scan, in order."""
        batch = [(notification_id, stored) for notification_id, stored in batch
                 if notification_id <= self._replay_until]
        self._prefetch(batch)
        for notification_id, stored in batch:
            self._fold(notification_id, stored, None)
        self._spill_idle()

    def _prefetch(self, batch: Batch) -> None:
        prefetch_decided([stored for _, stored in batch], self.books.get)

    def _spill_idle(self) -> None:
        """Spill each copy's idle lines (only once no uncommitted rows are about them)."""
        for name, book in self.books.items():
            parts = book.spill_idle()
            running = self.totals.get(name)
            if running is not None:
                running.forget([o.order_id for p in parts for o in p.orders],
                               [c.claim_id for p in parts for c in p.claims])

    # ---- the follower's handler ---------------------------------------------------------------

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        if batch[0][0] > self._handed:  # the previous transaction committed: start a new set
            self._touched = _Touched()
            await asyncio.to_thread(self._spill_idle)
        self._handed = batch[-1][0]
        rows = await asyncio.to_thread(self._rows_for, batch)
        for statement, values in (
            (_UPSERT_ORDER, rows.orders), (_UPSERT_TOTALS, rows.totals), (_UPSERT_BALANCE, rows.balances),
            (_UPSERT_ACCOUNT, rows.accounts), (_UPSERT_ENTRY, rows.entries), (_INSERT_REFUSAL, rows.refusals),
            (_UPSERT_BOOK, rows.books),
        ):
            if values:
                await conn.executemany(statement, values)

    def _rows_for(self, batch: Batch) -> _Rows:
        self._prefetch([(i, stored) for i, stored in batch if i > self.folded])
        for notification_id, stored in batch:
            if notification_id > self.folded:
                self._fold(notification_id, stored, self._touched)
                self.folded = notification_id
        return self._rows(self._touched)

    def _fold(self, notification_id: int, stored: Any, touched: _Touched | None) -> None:
        if isinstance(stored, PaymentsBookStream.Opened):
            self.books[stored.book] = self.new_book(stored.book)
            self.totals.pop(stored.book, None)
            return
        if not isinstance(stored, PaymentsBookStream.Recorded):
            return  # the walking skeleton's events
        name = stored.book
        book = self.books[name]
        events = [decode(data) for data in stored.events]
        for event in events:
            book.apply(event)
            if isinstance(event, e.BatchCut):
                self.cut_at[(name, event.batch_id)] = event.at
            if touched is not None:
                self._touch(name, book, event, touched)
        if touched is None:
            return
        if self.metrics is not None:
            self.metrics.count(name, book, events)
        touched.books[name] = (stored.originator_version, notification_id, stored.timestamp)
        if stored.cause.get("kind") == "decision":
            for event in events:
                if isinstance(event, e.OrderCreated):
                    touched.order_meta[(name, event.order_id)] = (
                        stored.cause.get("rule_set"), stored.trace_id, notification_id,
                        _platforms(stored.cause),
                    )
        refusals = [(stored.cause.get("decision_id") or stored.cause.get("settlement_id"), stored.refusal)]
        if not stored.refusal:
            refusals = [(r["entry_id"], r["reason"]) for r in stored.cause.get("refused") or ()]
        for cause_id, reason in refusals:
            if reason:
                touched.refusals.append(
                    (name, notification_id, stored.cause.get("kind", "?"), cause_id or "-", reason,
                     stored.timestamp)
                )
                if self.metrics is not None:
                    self.metrics.refused(name, stored.cause.get("kind", "unknown"))

    @staticmethod
    def _touch(name: str, book: PaymentsBook, event: e.PaymentsEvent, t: _Touched) -> None:
        def order(order_id: str) -> None:
            o = book.orders[order_id]
            t.orders.add((name, order_id))
            t.beneficiaries.add((name, o.beneficiary))
            t.programmes.add((name, o.program, o.fiscal_year))

        def claim(claim_id: str) -> None:
            c = book.claims[claim_id]
            t.claims.add((name, claim_id))
            t.beneficiaries.add((name, c.beneficiary))
            t.programmes.add((name, c.line.program, c.fiscal_year))

        if (order_id := getattr(event, "order_id", None)) is not None:
            order(order_id)
        if (claim_id := getattr(event, "claim_id", None)) is not None:
            claim(claim_id)
        match event:
            case e.DecisionReceived():
                t.beneficiaries.add((name, event.line.beneficiary))
            case e.AppropriationSet():
                t.programmes.add((name, event.program, event.fiscal_year))
            case e.BatchCut():
                for entry in event.entries:
                    order(entry.order_id)
                    t.entries.setdefault((name, entry.entry_id), {})
            case e.PaymentConfirmed():
                t.entries.setdefault((name, event.entry_id), {}).update(
                    outcome="paid", confirmation=event.confirmation, settled_at=event.at)
            case e.PaymentReturned():
                t.entries.setdefault((name, event.entry_id), {}).update(
                    outcome="returned", return_reason=event.reason, settled_at=event.at)
            case e.RepaymentReceived():
                t.beneficiaries.add((name, event.beneficiary))
                for allocation in event.allocations:
                    claim(allocation.claim_id)
            case _:
                pass
        for posting in postings_for(event):
            for leg in posting.legs:
                t.accounts.add((name, leg.account))

    def _count(self, t: _Touched) -> None:
        """Bring each touched book's running programme totals up to date: a book's first count scans
        it once; after that only the orders and claims the notifications touched are counted again
        (counting one again is harmless, so a retried transaction's set is simply counted anew)."""
        orders: dict[str, list[str]] = {}
        claims: dict[str, list[str]] = {}
        for name, order_id in t.orders:
            orders.setdefault(name, []).append(order_id)
        for name, claim_id in t.claims:
            claims.setdefault(name, []).append(claim_id)
        for name in {name for name, _, _ in t.programmes}:
            running = self.totals.get(name)
            if running is None:
                self.totals[name] = RunningTotals(self.books[name])
            else:
                running.refresh(orders.get(name, ()), claims.get(name, ()))

    def _rows(self, t: _Touched) -> _Rows:
        rows = _Rows()
        for name, (version, position, at) in t.books.items():
            book = self.books[name]
            rows.books.append((name, version, book.event_count, book.batch_count, position, at))
        for name, order_id in t.orders:
            o = self.books[name].orders[order_id]
            rule_set, trace_id, position, platforms = t.order_meta.get((name, order_id), _NO_META)
            rows.orders.append((
                name, o.order_id, o.decision_id, o.program, o.fiscal_year, o.beneficiary, o.line.subject,
                o.line.ref, o.line.month, o.granted_fen, o.amount_fen, o.cancelled_fen, o.offset_fen,
                o.paid_fen, o.in_transit_fen, o.unpaid_fen, o.state.value, o.awaiting_reason, o.attempts,
                o.last_return_reason, rule_set, trace_id, o.created_at, position, platforms,
            ))
        self._count(t)
        for name, program, year in t.programmes:
            if (r := self.totals[name].row(program, year)) is not None:
                rows.totals.append((
                    name, program, year, r.appropriated_fen, r.committed_fen, r.paid_by_bank_fen,
                    r.paid_by_offset_fen, r.recovered_fen, r.receivables_outstanding_fen,
                    r.awaiting_budget_fen, r.awaiting_budget_orders,
                ))
        for name, beneficiary in t.beneficiaries:
            b = beneficiary_balance(self.books[name], beneficiary)
            rows.balances.append((
                name, beneficiary, b.awaiting_budget_fen, b.payable_fen, b.in_transit_fen, b.paid_by_bank_fen,
                b.paid_by_offset_fen, b.receivable_fen, b.recovered_fen, b.last_return_reason,
            ))
        for name, account in t.accounts:
            scoped = account.kind in (AccountKind.BUDGET, AccountKind.CLAWBACKS)
            rows.accounts.append((
                name, str(account), account.kind.value, account.program if scoped else None,
                account.fiscal_year if scoped else None, self.books[name].accounts.balance_fen(account),
            ))
        for (name, entry_id), detail in t.entries.items():
            book = self.books[name]
            entry = book.entries[entry_id]
            cut_at = self.cut_at[(name, entry.batch_id)]
            rows.entries.append((
                name, entry_id, entry.batch_id, entry.order_id, entry.beneficiary, entry.program,
                entry.fiscal_year, entry.amount_fen, entry.attempt, cut_at, detail.get("outcome"),
                detail.get("confirmation"), detail.get("return_reason"), detail.get("settled_at"),
            ))
        rows.refusals = list(t.refusals)
        return rows


# ---- queries ----------------------------------------------------------------------------------------

_TOTAL_SUMS = ", ".join(f"sum({c})::bigint AS {c}" for c in _TOTALS_COLUMNS[3:])


async def totals(pool: asyncpg.Pool, book: str, fiscal_year: int | None) -> list[dict[str, Any]]:
    """Per programme (all fiscal years summed unless one is given), as the domain's report defines."""
    rows = await pool.fetch(
        f"SELECT program, {_TOTAL_SUMS} FROM {SCHEMA}.payments_programme_totals "
        "WHERE book = $1 AND ($2::integer IS NULL OR fiscal_year = $2) GROUP BY program ORDER BY program",
        book, fiscal_year,
    )
    out = []
    for r in rows:
        paid = r["paid_by_bank_fen"] + r["paid_by_offset_fen"]
        row = dict(r)
        out.append({
            "program": row.pop("program"), "fiscal_year": fiscal_year, **row, "paid_fen": paid,
            "available_fen": r["appropriated_fen"] - r["committed_fen"] - paid,
        })
    return out


async def employs(pool: asyncpg.Pool, book: str, enterprise: str, worker: str) -> bool:
    """Whether an order paid to `worker` is `enterprise`'s own (`_OWN_ORDER`): its worker, for payments."""
    return bool(await pool.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.payments_book_orders "
        "WHERE book = $1 AND beneficiary = $2 AND $3 = ANY(platforms))", book, worker, enterprise,
    ))


async def balance(
    pool: asyncpg.Pool, book: str, beneficiary: str, *, enterprise: str | None = None,
) -> dict[str, Any] | None:
    """Where `beneficiary` stands; with `enterprise` (a platform), only its own orders are listed."""
    row = await pool.fetchrow(
        f"SELECT {', '.join(_BALANCE_COLUMNS[2:])} FROM {SCHEMA}.payments_beneficiary_balances "
        "WHERE book = $1 AND beneficiary = $2", book, beneficiary,
    )
    if row is None:
        return None
    out = dict(row)
    out["net_due_fen"] = (out["awaiting_budget_fen"] + out["payable_fen"] + out["in_transit_fen"]
                          - out["receivable_fen"])
    own = f" AND {_OWN_ORDER}" if enterprise is not None else ""
    orders = await pool.fetch(
        f"SELECT order_id, program, fiscal_year, amount_fen, state, awaiting_reason, attempts, "
        f"last_return_reason FROM {SCHEMA}.payments_book_orders WHERE book = $1 AND beneficiary = $2{own} "
        "ORDER BY position, order_id", book, beneficiary, *([enterprise] if enterprise is not None else []),
    )
    return {"book": book, "beneficiary": beneficiary, **out, "orders": [dict(o) for o in orders]}


async def trial_balance(pool: asyncpg.Pool, book: str) -> dict[str, Any]:
    """The general ledger by account group: budgets and clawbacks per programme and year, payables and
    receivables summed over beneficiaries (no identity numbers here), and the total, which must be 0."""
    rows = await pool.fetch(
        f"SELECT kind, program, fiscal_year, count(*) AS accounts, "
        "coalesce(sum(balance_fen) FILTER (WHERE balance_fen > 0), 0)::bigint AS debit_fen, "
        "coalesce(-sum(balance_fen) FILTER (WHERE balance_fen < 0), 0)::bigint AS credit_fen "
        f"FROM {SCHEMA}.payments_accounts WHERE book = $1 "
        "GROUP BY kind, program, fiscal_year ORDER BY kind, program, fiscal_year", book,
    )
    accounts = []
    for r in rows:
        scope = f":{r['program']}:{r['fiscal_year']}" if r["program"] is not None else ""
        accounts.append({"account": f"{r['kind']}{scope}", "accounts": r["accounts"],
                         "debit_fen": r["debit_fen"], "credit_fen": r["credit_fen"]})
    debit = sum(a["debit_fen"] for a in accounts)
    credit = sum(a["credit_fen"] for a in accounts)
    return {"book": book, "total_debit_fen": debit, "total_credit_fen": credit,
            "trial_balance_fen": debit - credit, "balanced": debit == credit, "accounts": accounts}


# A platform's orders: those paid to its enterprise or about it, and those decided on a fact naming it
# or, for a fact naming no enterprise, about a worker it had named in an accepted fact (its worker).
_OWN_ORDER = "(beneficiary = $3 OR subject = $3 OR $3 = ANY(platforms))"


async def orders(
    pool: asyncpg.Pool, book: str, limit: int, *, enterprise: str | None = None,
) -> list[dict[str, Any]]:
    """The book's payment orders in the order they were created (the skeleton's shape, plus state);
    with `enterprise`, only a platform's own (`_OWN_ORDER`)."""
    own = f" AND {_OWN_ORDER}" if enterprise is not None else ""
    rows = await pool.fetch(
        f"SELECT {', '.join(c for c in _ORDER_COLUMNS if c not in ('position', 'platforms'))} "
        f"FROM {SCHEMA}.payments_book_orders WHERE book = $1{own} ORDER BY position, order_id LIMIT $2",
        book, limit, *([enterprise] if enterprise is not None else []),
    )
    out = []
    for r in rows:
        row = dict(r)
        created_at = row.pop("created_at")
        out.append({**row, "event": "order_created", "recorded_at": created_at.isoformat()})
    return out


async def entries(pool: asyncpg.Pool, book: str, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {', '.join(_ENTRY_COLUMNS[1:])} FROM {SCHEMA}.payments_disbursement_entries "
        "WHERE book = $1 ORDER BY batch_id, entry_id LIMIT $2", book, limit,
    )
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(r).items()} for r in rows]


async def book_progress(pool: asyncpg.Pool, book: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        f"SELECT stream_version, domain_events, batches, position FROM {SCHEMA}.payments_books "
        "WHERE book = $1", book,
    )
    refusals = await pool.fetch(
        f"SELECT position, cause_kind, cause_id, reason FROM {SCHEMA}.payments_refusals "
        "WHERE book = $1 ORDER BY position", book,
    )
    base = dict(row) if row is not None else {"stream_version": 0, "domain_events": 0, "batches": 0,
                                               "position": 0}
    return {"book": book, **base, "refusals": [dict(r) for r in refusals]}
