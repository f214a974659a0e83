"""A simulated bank (the Finance Bureau's side) for the demo and the tests.

It consumes disbursement instructions from `flexledger.payments.disbursements.v1` and answers each
batch on `flexledger.payments.settlements.v1` as a bank would: the confirmations in one settlement
message (`SIM-<batch>-paid`) and the returns in another (`SIM-<batch>-returned`). Which entries come
back is the domain's deterministic `BankRule`: beneficiaries listed or ending with one of the
suffixes are returned on their first `returned_attempts` attempts (so a re-queued payment goes
through later); every other entry is paid with confirmation `SIM-<entry id>`.

At least once, like everything here: offsets are committed after the settlements are acknowledged,
and the same instruction always gives the same results, which payments applies once. It never logs a
beneficiary.

    flexledger payments bank-simulator --return-suffix 9        # until Ctrl-C
    flexledger payments bank-simulator --idle-exit 10           # until nothing came for 10 s
    flexledger payments bank-simulator --sandbox                # the sandbox books' bank

It is the bank of the production books (`Settings.production_books`), or with `sandbox` of every other
book: sandbox books have topics of their own (`sandbox.` + the name, contracts.topics.topic_for), which
it reads and writes as a principal of its own, so Finance's never touches them. It connects to Kafka as
`finance`, or `sandbox_finance` (FLEXLEDGER_KAFKA_USERNAME and _PASSWORD when set, else the local
stack's password of that principal from the state dir).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from contracts.cloudevents import CloudEvent
from contracts.messages import DisbursementInstructionV1, SettlementResultV1, SettlementV1
from contracts.topics import DISBURSEMENTS, SETTLEMENTS, Topic, sandbox_twin
from flexledger.devstack.credentials import for_tool
from services.payments.domain import BankRule, DisbursementEntry, SettlementOutcome, simulate_bank
from services.runtime.kafka import client_security
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "/flexledger/bank-simulator"
EVENT_TYPE = "flexledger.payments.settlement.v1"
# The Finance Bureau's principal (flexledger.kafka_access): it reads disbursements in groups named
# `finance.*` and alone may write settlements; `sandbox_finance` the same on the sandbox topics.
PRINCIPAL = "finance"
SANDBOX_PRINCIPAL = "sandbox_finance"


@dataclass(frozen=True)
class Side:
    """Which bank: who it connects as, what it reads and writes, its consumer group by default."""

    principal: str
    disbursements: Topic
    settlements: Topic
    group: str


PRODUCTION = Side(PRINCIPAL, DISBURSEMENTS, SETTLEMENTS, f"{PRINCIPAL}.bank-simulator")
SANDBOX = Side(SANDBOX_PRINCIPAL, sandbox_twin(DISBURSEMENTS), sandbox_twin(SETTLEMENTS),
               f"{SANDBOX_PRINCIPAL}.bank-simulator")


def settle(
    instruction: DisbursementInstructionV1, rule: BankRule, settled_at: datetime
) -> list[SettlementV1]:
    """The bank's answer to one instruction: the paid entries, then the returned ones (each message
    only when it has results)."""
    entries = [
        DisbursementEntry(
            entry_id=e.entry_id, batch_id=instruction.batch_id, order_id=e.order_id,
            beneficiary=e.beneficiary, program=e.program, fiscal_year=e.fiscal_year, amount_fen=e.amount_fen,
            attempt=e.attempt,
        )
        for e in instruction.entries
    ]
    results = simulate_bank(entries, rule)
    out = []
    for outcome in (SettlementOutcome.PAID, SettlementOutcome.RETURNED):
        chosen = [
            SettlementResultV1(entry_id=r.entry_id, outcome=r.outcome.value, confirmation=r.confirmation,
                               reason=r.reason)
            for r in results if r.outcome is outcome
        ]
        if chosen:
            out.append(SettlementV1(
                book=instruction.book, batch_id=instruction.batch_id,
                settlement_id=f"SIM-{instruction.batch_id}-{outcome.value}", settled_at=settled_at,
                results=chosen,
            ))
    return out


class BankSimulator:
    """Consumes instructions (of `books` only, when given) and publishes the settlements: of the
    production books, or with `sandbox` of the sandbox books."""

    def __init__(
        self, settings: Settings, rule: BankRule | None = None, *, books: Collection[str] | None = None,
        sandbox: bool = False, group_id: str | None = None,
    ) -> None:
        self.side = SANDBOX if sandbox else PRODUCTION
        wrong = sorted(book for book in books or () if (book in settings.production_book_set) == sandbox)
        if wrong:  # one bank per side: each side's topics are another principal's
            raise ValueError(f"not {'sandbox' if sandbox else 'production'} books: {', '.join(wrong)} "
                             f"(FLEXLEDGER_PRODUCTION_BOOKS={settings.production_books}); a bank settles "
                             "the production books, or with --sandbox the sandbox books")
        self.settings = settings
        self.rule = rule or BankRule()
        self.books = set(books) if books is not None else None
        self.group_id = group_id or self.side.group
        self.settled_batches = 0
        self.settled_entries = 0

    async def run(self, *, stop: asyncio.Event | None = None, idle_exit_s: float | None = None) -> int:
        """Serve until `stop` is set, or until nothing arrived for `idle_exit_s`; the batches settled."""
        client = for_tool(self.settings, self.side.principal)
        consumer = AIOKafkaConsumer(
            self.side.disbursements.name, bootstrap_servers=client.kafka_bootstrap, group_id=self.group_id,
            enable_auto_commit=False, auto_offset_reset="earliest", **client_security(client),
        )
        producer = AIOKafkaProducer(bootstrap_servers=client.kafka_bootstrap, acks="all",
                                    enable_idempotence=True, **client_security(client))
        await consumer.start()
        try:
            await producer.start()
            try:
                idle_since = time.monotonic()
                while stop is None or not stop.is_set():
                    fetched = await consumer.getmany(timeout_ms=200)
                    records = [r for batch in fetched.values() for r in batch]
                    if not records:
                        if idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                            break
                        continue
                    for record in records:
                        await self._answer(producer, record)
                    await consumer.commit()
                    idle_since = time.monotonic()
            finally:
                await producer.stop()
        finally:
            await consumer.stop()
        return self.settled_batches

    async def _answer(self, producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            instruction = DisbursementInstructionV1.model_validate_json(record.value or b"")
        except ValidationError:
            log.warning("bank simulator: %s[%d]@%d is not a disbursement instruction; skipped",
                        record.topic, record.partition, record.offset)
            return
        if self.books is not None and instruction.book not in self.books:
            return
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or ()}
        for settlement in settle(instruction, self.rule, datetime.now(UTC)):
            event = CloudEvent(
                id=settlement.settlement_id, source=SOURCE, type=EVENT_TYPE,
                subject=f"{settlement.book}/{settlement.batch_id}", time=settlement.settled_at,
                traceparent=headers.get("traceparent"), tracestate=headers.get("tracestate"),
            )
            await producer.send_and_wait(
                self.side.settlements.name, settlement.model_dump_json().encode(),
                key=settlement.key().encode(), headers=[(k, v.encode()) for k, v in event.headers().items()],
            )
            self.settled_entries += len(settlement.results)
        self.settled_batches += 1
        log.info("bank simulator: batch %s settled (%d entries)", instruction.batch_id,
                 len(instruction.entries))
