"""The payments service's pure parts: the event codec, settings, masking, the relays' messages and
the projection's rows (against a stand-in connection). The running service is tested in
tests/integration/test_payments.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from contracts.decisions import DecisionV1
from contracts.identifiers import mask_identifiers
from contracts.messages import DisbursementInstructionV1, PaymentOrderV1, SettlementV1
from flexledger.bank_simulator import settle
from services.payments.adapters import projection as proj
from services.payments.adapters.relay import disbursement_messages, order_messages
from services.payments.aggregates import PaymentsBookStream
from services.payments.codec import EVENT_TYPES, decode, encode
from services.payments.config import ConfigError, PaymentsConfig, parse_appropriation_defaults
from services.payments.domain import (
    BankRule,
    BatchPolicy,
    PaymentsBook,
    beneficiary_balance,
    postings_for,
    programme_totals,
    simulate_bank,
)
from services.payments.domain import events as e
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import Settings

CST = timezone(timedelta(hours=8))
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=CST)
ENTERPRISE = "91320213MA1XY0001L"
WORKER = "320211198509232025"
NOW = BatchPolicy(max_entries=100, max_wait=timedelta(0))


def decision(
    decision_id: str, kind: str, amount_fen: int, *, beneficiary: str = WORKER,
    program: str = "social_insurance", month: str | None = "2024-01", book: str = "main",
) -> DecisionV1:
    return DecisionV1.model_validate({
        "book": book, "decision_id": decision_id, "rule_set": "wuxi-2021-26/1", "after": "f1", "kind": kind,
        "program": program, "beneficiary": beneficiary, "subject": WORKER, "ref": None, "month": month,
        "amount_fen": amount_fen,
    })


def history() -> list[tuple[str, list[e.PaymentsEvent]]]:
    """A book's life touching every event type, as (cause kind, events) commands."""
    book = PaymentsBook()
    out: list[tuple[str, list[e.PaymentsEvent]]] = []
    out.append(("appropriation", book.set_appropriation("social_insurance", 2024, 100_000, T0)))
    out.append(("decision", book.apply_decision(decision("g1", "grant", 60_000), T0)))
    waits = decision("g2", "grant", 60_000, month="2024-02")
    out.append(("decision", book.apply_decision(waits, T0)))
    cuts = book.cut_batches(NOW, T0)
    out.append(("batch_cut", cuts))
    cut = cuts[0]
    assert isinstance(cut, e.BatchCut)
    out.append(("settlement", book.settle_all(simulate_bank(cut.entries, BankRule(suffixes=("25",))), T0)))
    cuts = book.cut_batches(NOW, T0)
    out.append(("batch_cut", cuts))
    assert isinstance(cuts[0], e.BatchCut)
    out.append(("settlement", book.settle_all(simulate_bank(cuts[0].entries), T0)))
    out.append(("decision", book.apply_decision(decision("c1", "clawback", 60_000), T0)))  # claim
    out.append(("decision", book.apply_decision(decision("c2", "clawback", 10_000, month="2024-02"), T0)))
    out.append(("appropriation", book.set_appropriation("social_insurance", 2024, 200_000, T0)))  # release
    out.append(("decision", book.apply_decision(
        decision("g3", "grant", 30_000, beneficiary=WORKER, program="training", month=None), T0)))
    out.append(("repayment", book.record_repayment(WORKER, 1, "BANK-1", T0)))
    return out


def test_every_domain_event_survives_encoding_as_json() -> None:
    seen = set()
    for _, events in history():
        for event in events:
            data = json.loads(json.dumps(encode(event), ensure_ascii=False))
            assert decode(data) == event
            seen.add(type(event).__name__)
    assert seen == set(EVENT_TYPES)


def test_default_appropriations_parse_and_refuse_typos() -> None:
    assert parse_appropriation_defaults("") == {}
    assert parse_appropriation_defaults(" training=5000, *=100 ") == {"training": 5000, "*": 100}
    for wrong in ("training", "training=-1", "Training=1", "a=1,a=2", "a=1.5"):
        with pytest.raises(ConfigError):
            parse_appropriation_defaults(wrong)
    config = PaymentsConfig.from_settings(Settings(payments_default_appropriations="training=5,*=7"))
    assert (config.default_appropriation("training"), config.default_appropriation("talent")) == (5, 7)
    assert PaymentsConfig.from_settings(Settings()).default_appropriation("talent") == 0
    by_count = PaymentsConfig.from_settings(Settings(payments_batch_max_wait_s=-1)).batch_policy
    assert by_count == BatchPolicy(500, None)
    with pytest.raises(ConfigError):
        PaymentsConfig.from_settings(Settings(payments_batch_max_entries=50_000))


def test_redaction_masks_identity_numbers_not_credit_codes() -> None:
    text = f"clawback of 5 on social_insurance/{WORKER}/{WORKER}/-/2024-01 to {ENTERPRISE}"
    assert WORKER not in mask_identifiers(text) and "3202**********2025" in mask_identifiers(text)
    assert ENTERPRISE in mask_identifiers(text)  # public registry data, as in the logs
    plain = "batch main-B000001-00001 of order 6f1c2d1e"
    assert mask_identifiers(plain) == plain


def _recorded(book: str, commands: list[tuple[str, list[e.PaymentsEvent]]]) -> list[tuple[int, Any]]:
    stream = PaymentsBookStream.open(book)
    for kind, events in commands:
        cause: dict[str, Any] = {"kind": kind, "rule_set": "wuxi-2021-26/1"}
        if kind == "appropriation":
            cause |= {"program": "social_insurance", "fiscal_year": 2024}
        stream.record(cause, [encode(ev) for ev in events], None, "ab" * 16, {})
    return list(enumerate(stream.collect_events(), start=1))


def test_relays_publish_orders_clawbacks_and_instructions() -> None:
    stored = _recorded("main", history())
    keys = PartitionKeys(b"k" * 32)
    messages = [m for _, s in stored for m in order_messages(s, keys)]
    orders = [m.body for m in messages]
    assert all(isinstance(o, PaymentOrderV1) for o in orders)
    for message in messages:  # keyed by a pseudonym of the beneficiary, never the number itself
        beneficiary = message.body.beneficiary  # type: ignore[attr-defined]
        assert message.key == keys("main", beneficiary) and beneficiary not in message.key
    summary = [(o.event, o.order_id, o.status, o.cancelled_fen, o.claimed_fen)  # type: ignore[attr-defined]
               for o in orders]
    assert summary == [
        ("order_created", "g1", "committed", None, None),
        ("order_created", "g2", "awaiting_budget", None, None),
        ("clawback_recorded", "c1", None, 0, 60_000),
        ("clawback_recorded", "c2", None, 10_000, 0),
        ("order_created", "g3", "awaiting_budget", None, None),  # no training appropriation
    ]
    instructions = [m for _, s in stored for m in disbursement_messages(s)]
    assert [m.event.id for m in instructions] == ["main-B000001", "main-B000002"]
    first = instructions[0].body
    assert isinstance(first, DisbursementInstructionV1) and first.total_fen == 60_000
    assert instructions[0].key == "main-B000001"


def test_the_simulated_bank_answers_paid_and_returned_in_two_settlements() -> None:
    book = PaymentsBook()
    book.set_appropriation("social_insurance", 2024, 1_000_000, T0)
    book.apply_decision(decision("g1", "grant", 10_000, beneficiary=WORKER), T0)
    book.apply_decision(decision("g2", "grant", 20_000, beneficiary="320213197804121019"), T0)
    [cut] = book.cut_batches(NOW, T0)
    assert isinstance(cut, e.BatchCut)
    from services.payments.adapters.relay import instruction

    answers = settle(instruction("main", cut), BankRule(suffixes=("1019",)), T0)
    assert [(s.settlement_id, [r.outcome for r in s.results]) for s in answers] == [
        ("SIM-main-B000001-paid", ["paid"]), ("SIM-main-B000001-returned", ["returned"]),
    ]
    assert all(isinstance(s, SettlementV1) for s in answers)


class _Conn:
    def __init__(self) -> None:
        self.written: dict[str, list[tuple[Any, ...]]] = {}

    async def executemany(self, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
        table = statement.split(" INTO ")[1].split(" ")[0].split(".")[1]
        self.written.setdefault(table, []).extend(rows)


def test_projection_rows_are_the_domain_reports_and_survive_a_failed_transaction() -> None:
    stored = _recorded("main", history())
    view = proj.PaymentsProjection()
    view.start_at(0)
    first = _Conn()
    asyncio.run(view(first, stored[:5]))  # pretend this transaction failed: the same batch comes again
    again = _Conn()
    asyncio.run(view(again, stored[:5]))
    assert sorted(again.written["payments_book_orders"]) == sorted(first.written["payments_book_orders"])
    rest = _Conn()
    asyncio.run(view(rest, stored[5:]))

    replica = PaymentsBook.replay(decode(d) for _, s in stored if hasattr(s, "events") for d in s.events)
    latest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for conn in (again, rest):
        for row in conn.written.get("payments_programme_totals", []):
            latest[row[:3]] = row
    for year in (2024,):
        for t in programme_totals(replica, year):
            assert latest[("main", t.program, year)][3:] == (
                t.appropriated_fen, t.committed_fen, t.paid_by_bank_fen, t.paid_by_offset_fen,
                t.recovered_fen, t.receivables_outstanding_fen, t.awaiting_budget_fen,
                t.awaiting_budget_orders,
            )
    balances = {row[1]: row for conn in (again, rest)
                for row in conn.written["payments_beneficiary_balances"]}
    b = beneficiary_balance(replica, WORKER)
    assert balances[WORKER][2:9] == (b.awaiting_budget_fen, b.payable_fen, b.in_transit_fen,
                                     b.paid_by_bank_fen, b.paid_by_offset_fen, b.receivable_fen,
                                     b.recovered_fen)
    accounts = {row[1]: row[5] for conn in (again, rest) for row in conn.written["payments_accounts"]}
    assert sum(accounts.values()) == 0
    touched = {leg.account for _, s in stored if hasattr(s, "events") for d in s.events
               for posting in postings_for(decode(d)) for leg in posting.legs}
    assert accounts == {str(a): replica.accounts.balance_fen(a) for a in touched}
    entries = {row[1]: row for conn in (again, rest) for row in conn.written["payments_disbursement_entries"]}
    assert {k: v[10] for k, v in entries.items()} == {
        "main-B000001-00001": "returned", "main-B000002-00001": "paid",
    }
    assert datetime.now(UTC) > T0
