"""The batching loop: cuts disbursement batches when the policy makes them due.

The policy itself is pure (`services.payments.domain.batching`); the application says which books
have a batch due and when the next falls due (`due_books`) and cuts them (`cut_batches`). This loop
only decides when to ask: it sleeps until the next batch falls due by time, or until a change wakes it
(a consumed decision or settlement, an operator command: they may fill a batch or make a first order
ready); with nothing ready it sleeps until a change — no tick. It never publishes: the disbursement
relay follows the notification log, and is woken after a cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from opentelemetry import trace

from contracts.identifiers import mask_identifiers
from services.payments.adapters.stores import PaymentsStores
from services.runtime.telemetry import current_carrier, trace_id_hex

log = logging.getLogger(__name__)
RETRY_BACKOFF_MAX_S = 5.0


class BatchingLoop:
    def __init__(self, stores: PaymentsStores, tracer: trace.Tracer, wake_relays: Callable[[], None]) -> None:
        self.stores = stores
        self.tracer = tracer
        self.wake_relays = wake_relays
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something changed: look again now."""
        self._wake.set()

    async def run(self) -> None:
        backoff_s = 0.1
        while True:
            self._wake.clear()
            try:
                next_at = await self.cut_due()
                backoff_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("payments batching failed (%s); retrying in %.1fs", mask_identifiers(repr(exc)),
                          backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)
                continue
            wait_s = None if next_at is None else max(0.0, (next_at - datetime.now(UTC)).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    async def cut_due(self) -> datetime | None:
        """Cut the batches due now; when to look again (None: not before a change)."""
        app = self.stores.app
        now = datetime.now(UTC)
        due, next_at = await asyncio.to_thread(app.due_books, now)
        if not due:
            return next_at
        with self.tracer.start_as_current_span(
            "payments batch cut", attributes={"flexledger.books": len(due)}
        ) as span:
            trace_id, carrier = trace_id_hex(span), current_carrier()
            cut = await asyncio.to_thread(app.cut_batches, now, trace_id, carrier, due)
            span.set_attribute("flexledger.batches", len(cut))
        if not cut:
            return next_at
        log.info("payments: %d disbursement batch(es) cut", len(cut))
        self.wake_relays()
        return now  # at once: what is left in the books just cut falls due later
