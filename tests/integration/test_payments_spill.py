"""Payments' books spill idle lines to PostgreSQL (services/payments/spill.py) and decide exactly
as a book that keeps everything: on the real PostgreSQL, without Kafka in between."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import Tracking

from contracts.decisions import DecisionV1
from contracts.messages import SettlementResultV1, SettlementV1
from services.payments.application import PaymentsApplication, RecordOutcome
from services.payments.config import PaymentsConfig
from services.payments.domain import BatchPolicy, reconcile
from services.payments.domain.lines import Line
from services.payments.spill import TABLE, SpillLost
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
AT = datetime(2024, 3, 5, 10, tzinfo=CST)
WORKERS = [f"3202131978041210{n:02d}" for n in range(6)]
CONFIG = PaymentsConfig(default_appropriations={"*": 10_000_000},
                        batch_policy=BatchPolicy(max_entries=100, max_wait=timedelta(0)))


def decision(book: str, kind: str, worker: str, month: str, amount_fen: int) -> DecisionV1:
    return DecisionV1(book=book, decision_id=str(uuid.uuid4()), rule_set="wuxi-2021-26/1", after="f1",
                      kind=kind, program="social_insurance", beneficiary=worker, subject=worker, month=month,
                      amount_fen=amount_fen, recorded_at=AT)


class Source:
    def __init__(self) -> None:
        self.name, self.offset = f"kafka:test-{uuid.uuid4().hex}:0", 0

    def next(self) -> Tracking:
        self.offset += 1
        return Tracking(self.name, self.offset)


def pay_everything(app: PaymentsApplication, book: str, source: Source, settlement_id: str) -> SettlementV1:
    app.cut_batches(datetime.now(CST))
    entries = [entry for entry in app._books[book].book.entries.values()
               if entry.entry_id not in app._books[book].book.settlements]
    results = [SettlementResultV1(entry_id=e.entry_id, outcome="paid", confirmation=f"C-{e.entry_id}")
               for e in entries]
    settlement = SettlementV1(book=book, batch_id=entries[0].batch_id, settlement_id=settlement_id,
                              settled_at=datetime.now(CST), results=results)
    assert app.record_settlement(settlement, source.next()) is RecordOutcome.RECORDED
    return settlement


def test_a_book_that_spills_decides_as_one_that_keeps_everything(infra: Settings) -> None:
    keeping = PaymentsApplication(infra, config=CONFIG)
    spilling = PaymentsApplication(replace(infra, payments_book_orders_in_memory=0), config=CONFIG)
    kept_book, spilt_book = f"pay-{uuid.uuid4().hex[:16]}", f"pay-{uuid.uuid4().hex[:16]}"
    sources = {kept_book: Source(), spilt_book: Source()}
    apps = {kept_book: keeping, spilt_book: spilling}

    def both(make: str, *args: object) -> list[RecordOutcome]:
        """The same command on both books; their outcomes."""
        outcomes = []
        for book, app in apps.items():
            if make == "decision":
                kind, worker, month, amount_fen, decision_id = args
                d = decision(book, str(kind), str(worker), str(month), int(str(amount_fen)))
                d = d.model_copy(update={"decision_id": decision_id})
                outcomes.append(app.record_decision(d, sources[book].next(), AT))
            else:
                settlement = pay_everything(app, book, sources[book], str(args[0]))
                outcomes.append(app.record_settlement(settlement, sources[book].next()))  # again: once
        return outcomes

    try:
        grants = {worker: str(uuid.uuid4()) for worker in WORKERS}
        for worker, decision_id in grants.items():
            outcomes = both("decision", "grant", worker, "2024-01", 50_000, decision_id)
            assert outcomes == [RecordOutcome.RECORDED] * 2
        assert both("settle", "S1") == [RecordOutcome.REPUBLISHED] * 2  # everyone paid: all idle
        spilt = spilling._books[spilt_book].book
        assert spilt.in_memory() == 0 and spilt.spilled.parts == len(WORKERS)
        held = {"books": 1, "lines_in_memory": 0, "orders_in_memory": 0, "lines_spilled": len(WORKERS)}
        assert spilling.memory() == held  # what /health reports

        # Read back: a redelivered grant is known, a clawback after payment raises a claim, a new grant
        # is offset against it, and a settlement of a spilled entry again changes nothing.
        worker = WORKERS[2]
        again = both("decision", "grant", worker, "2024-01", 50_000, grants[worker])
        assert again == [RecordOutcome.REPUBLISHED] * 2
        assert both("decision", "clawback", worker, "2024-01", 20_000, str(uuid.uuid4())) == [
            RecordOutcome.RECORDED] * 2
        assert both("decision", "grant", worker, "2024-02", 50_000, str(uuid.uuid4())) == [
            RecordOutcome.RECORDED] * 2
        assert both("settle", "S2") == [RecordOutcome.REPUBLISHED] * 2
        first_entry = min(keeping._books[kept_book].book.entries)
        for book, app in apps.items():
            entry = first_entry.replace(kept_book, book)
            repeat = SettlementV1(book=book, batch_id=entry.rsplit("-", 1)[0], settlement_id="S1-again",
                                  settled_at=datetime.now(CST),
                                  results=[SettlementResultV1(entry_id=entry, outcome="paid",
                                                              confirmation="x")])
            assert app.record_settlement(repeat, sources[book].next()) is RecordOutcome.REPUBLISHED

        kept = keeping._books[kept_book].book
        assert spilt.in_memory() == 0
        assert spilt.accounts.balances() == kept.accounts.balances()
        assert spilt.order_count() == kept.order_count() == len(WORKERS) + 1
        report = spilling.reconciliation(spilt_book)
        assert (report["problems"], report["orders"]) == ([], len(WORKERS) + 1)

        # What is spilled is sealed: no identity number in a key or a state.
        with spilling._spills._datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(f"SELECT key, state FROM payments.{TABLE}")
            rows = curs.fetchall()
        assert rows
        assert not any(w in row["key"] or w.encode() in bytes(row["state"]) for row in rows for w in WORKERS)

        # Spilled parts gone behind the book's back: it refuses to take a beneficiary for new, and is
        # reloaded from its stream, so a decision delivered again is still known.
        with spilling._spills._datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(f"DELETE FROM payments.{TABLE} WHERE scope = %s", (f"book:{spilt_book}",))
        redelivered = decision(spilt_book, "grant", WORKERS[0], "2024-01", 50_000)
        redelivered = redelivered.model_copy(update={"decision_id": grants[WORKERS[0]]})
        with pytest.raises(SpillLost):
            spilling.record_decision(redelivered, sources[spilt_book].next(), AT)
        again_outcome = spilling.record_decision(redelivered, sources[spilt_book].next(), AT)
        assert again_outcome is RecordOutcome.REPUBLISHED
        assert spilling._books[spilt_book].book.accounts.balances() == kept.accounts.balances()

        # A fresh process rebuilds the book, spilling as it goes: the same book.
        spilling.close()
        spilling = PaymentsApplication(replace(infra, payments_book_orders_in_memory=0), config=CONFIG)
        spilling.rebuild()
        rebuilt = spilling._books[spilt_book].book
        assert rebuilt.in_memory() == 0 and rebuilt.accounts.balances() == kept.accounts.balances()
        assert reconcile(rebuilt) == []
        apps[spilt_book] = spilling
        assert both("decision", "grant", worker, "2024-02", 1, str(uuid.uuid4()))[1] is RecordOutcome.RECORDED
        first_line = Line("social_insurance", WORKERS[0], WORKERS[0], None, "2024-01")
        assert rebuilt.has_applied(grants[WORKERS[0]], first_line)
    finally:
        keeping.close()
        spilling.close()
