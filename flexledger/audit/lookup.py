"""Finding a decision by what an auditor holds: any unique prefix of its id, or a payment order, a
disbursement entry or a bank confirmation that came from it (`audit lookup`, `audit replay PREFIX`).

The read tables (eligibility's decisions, payments' orders and disbursement entries) are the index;
what a decision says is then read from the ledger's events (`audit replay`). A prefix that names two
decisions is refused with both: ids are never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from flexledger.audit.store import PROCESSED, Decoder, EventTable, Undecodable
from services.runtime.settings import Settings

FULL_ID = 36  # a decision id is a UUID in its text form
SHOWN = 5  # ambiguous matches listed


class Ambiguous(LookupError):
    def __init__(self, prefix: str, matches: list[str]) -> None:
        shown = ", ".join(matches[:SHOWN]) + (" …" if len(matches) > SHOWN else "")
        super().__init__(f"{prefix!r} names {len(matches)} decisions: {shown}; give more of the id")
        self.matches = matches


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _query(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of a read table; none when the table does not exist (a service never started)."""
    with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
        try:
            return list(conn.execute(sql, args).fetchall())
        except psycopg.errors.UndefinedTable:
            return []


def resolve_decision(settings: Settings, prefix: str, book: str | None = None) -> str | None:
    """The full id of the one decision whose id starts with `prefix` (None: no such decision).
    Ambiguous when it names more than one. The read side is asked first, then the ledger itself."""
    prefix = prefix.strip().lower()
    if len(prefix) >= FULL_ID:
        return prefix
    sql = "SELECT decision_id FROM eligibility.eligibility_decisions WHERE decision_id LIKE %s"
    args: tuple[Any, ...] = (_like(prefix),)
    if book is not None:
        sql, args = sql + " AND book = %s", (*args, book)
    found = sorted({row[0] for row in _query(settings, sql + " LIMIT 100", *args)})
    if not found:
        found = _scan(settings, prefix, book)
    if len(found) > 1:
        raise Ambiguous(prefix, found)
    return found[0] if found else None


def _scan(settings: Settings, prefix: str, book: str | None) -> list[str]:
    """Decision ids starting with `prefix`, read from the ledger's events (the read side lags or is
    gone)."""
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    found: set[str] = set()
    for row in table.rows(topic=PROCESSED):
        try:
            state = decoder.decode(row)
        except Undecodable:
            continue
        if book is None or state.get("book") == book:
            found.update(str(d.get("decision_id")) for d in state.get("decisions") or []
                         if str(d.get("decision_id")).startswith(prefix))
    return sorted(found)


@dataclass
class Trail:
    """From what the auditor gave back to the decision: each step's kind, id and what it says."""

    given: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def decision_id(self) -> str | None:
        return next((s["id"] for s in self.steps if s["kind"] == "decision"), None)


def _entries(settings: Settings, given: str) -> list[tuple[Any, ...]]:
    return _query(
        settings,
        "SELECT book, entry_id, order_id, batch_id, confirmation, outcome, amount_fen, attempt "
        "FROM payments.payments_disbursement_entries WHERE entry_id LIKE %s OR confirmation = %s "
        "LIMIT 100",
        _like(given), given,
    )


def _orders(settings: Settings, given: str, exact: bool) -> list[tuple[Any, ...]]:
    return _query(
        settings,
        "SELECT book, order_id, decision_id, program, fiscal_year, amount_fen, state "
        f"FROM payments.payments_book_orders WHERE order_id {'=' if exact else 'LIKE'} %s LIMIT 100",
        given if exact else _like(given),
    )


def trail(settings: Settings, given: str) -> Trail:
    """The way from a bank confirmation, a disbursement entry id, a payment order id or a decision id
    (or a unique prefix of an id) back to the decision. LookupError when it names nothing; Ambiguous
    when it names several of one kind."""
    given = given.strip()
    found = Trail(given)
    entries = _entries(settings, given)
    if len({(r[0], r[1]) for r in entries}) > 1:
        raise Ambiguous(given, sorted(f"{r[0]}/{r[1]}" for r in entries))
    order_id: str | None = None
    if entries:
        book, entry_id, order_id, batch_id, confirmation, outcome, amount, attempt = entries[0]
        found.steps.append({"kind": "disbursement entry", "id": entry_id, "book": book, "batch": batch_id,
                            "confirmation": confirmation, "outcome": outcome, "amount_fen": amount,
                            "attempt": attempt})
    orders = _orders(settings, order_id or given, exact=order_id is not None)
    if len({(r[0], r[1]) for r in orders}) > 1:
        raise Ambiguous(given, sorted(f"{r[0]}/{r[1]}" for r in orders))
    decision_id: str | None = None
    if orders:
        book, order, decision_id, program, year, amount, state = orders[0]
        found.steps.append({"kind": "payment order", "id": order, "book": book, "program": program,
                            "fiscal_year": year, "amount_fen": amount, "state": state})
    decision_id = decision_id or resolve_decision(settings, given)
    if decision_id is None:
        raise LookupError(f"{given!r} is no decision, payment order, disbursement entry or bank confirmation")
    found.steps.append({"kind": "decision", "id": decision_id})
    return found
