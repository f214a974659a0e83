"""Where payments keeps its state: the event store (`PaymentsApplication`, which holds every book in
memory) and a pool for the query tables and the log followers' positions (`services.runtime.store`).

Start-up, in order: `open`, then `rebuild_books` — every book from the event store, in one pass over the
notification log that also rebuilds the projection's copy up to its recorded position — and only then
does anything consume.
"""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import trace

from services.payments.adapters import projection
from services.payments.application import PaymentsApplication
from services.payments.config import PaymentsConfig
from services.runtime.outbox import follower_position
from services.runtime.settings import Settings
from services.runtime.store import ServiceStore

log = logging.getLogger(__name__)
# Each of the four followers holds one (its NOTIFY listener); their steps and the HTTP reads share the rest.
POOL_SIZE_MAX = 7
PaymentsStores = ServiceStore[PaymentsApplication]


def payments_stores(
    settings: Settings, tracer_provider: trace.TracerProvider | None, config: PaymentsConfig
) -> PaymentsStores:
    return ServiceStore(
        lambda: PaymentsApplication(settings, tracer_provider, config), settings.pg_dsn(),
        pool_size_max=POOL_SIZE_MAX, tables=[projection.create_tables],
    )


async def rebuild_books(stores: PaymentsStores, view: projection.PaymentsProjection) -> None:
    """Every book from the event store, and `view`'s copy of each up to the projection's position."""
    app = stores.app
    view.start_at(await follower_position(stores.pool, app.name, view.name))
    t0 = asyncio.get_running_loop().time()
    await asyncio.to_thread(app.clear_spills)  # the one writer starts: what processes before it left
    last = await asyncio.to_thread(app.rebuild, view.observe)
    log.info("payments: %d books rebuilt from the event store (up to notification %d) in %.2fs",
             len(app.books()), last, asyncio.get_running_loop().time() - t0)
