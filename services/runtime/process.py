"""Running one service process: logging to stderr (services/runtime/logs.py), tracing, the HTTP
server, start and stop, and retrying an operation until it succeeds.

A service is anything with `start()`, `stop()` and an ASGI app `http`; `python -m services.<name>`
calls `main` with the service's factory. Uvicorn handles SIGTERM/SIGINT; the service then stops its
consumers and relays before the process exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import uvicorn
import uvloop
from opentelemetry.sdk.trace import TracerProvider

from services.runtime.logs import configure_logging
from services.runtime.settings import Settings
from services.runtime.telemetry import setup_tracing

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_BACKOFF_MAX_S = 10.0


class Service(Protocol):
    name: str
    http: Any  # an ASGI application

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def until_done(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` until it returns; log and back off (capped) between failures."""
    backoff_s = 0.05
    while True:
        try:
            return await attempt()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying in %.2fs", what, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)


async def serve(service: Service, port: int, host: str = "127.0.0.1") -> None:
    """Start the service, serve HTTP until a signal, then stop it."""
    # httptools: uvicorn's C parser (its pure-Python h11 cost more CPU per request than our handlers).
    server = uvicorn.Server(uvicorn.Config(
        service.http, host=host, port=port, log_config=None, access_log=False, lifespan="off",
        http="httptools",
    ))
    await service.start()
    try:
        await server.serve()
    finally:
        await service.stop()


# Young collections every 100,000 net allocations instead of 700. A service's batches allocate tens of
# thousands of short-lived objects; at 700, collections ran in the middle of every batch and promoted
# what was still in flight, and the old generation filled with it, so full collections (which scan the
# whole long-lived state: 100-460 ms pauses in eligibility and intake) ran every few seconds and made
# the latency tail. Now the temporaries are mostly dead when the young generation is collected.
GC_THRESHOLDS = (100_000, 50, 100)


def main(
    name: str, build: Callable[[Settings, TracerProvider], Service], port_of: Callable[[Settings], int]
) -> None:
    # A service connects as the runtime role, which cannot UPDATE or DELETE event tables (audit.md).
    settings = Settings.from_env().for_service()
    configure_logging(name, settings.log_format)
    gc.set_threshold(*GC_THRESHOLDS)
    provider = setup_tracing(name, settings)
    service = build(settings, provider)
    log.info("%s starting on 127.0.0.1:%d (kafka %s, postgres %s:%d)", name, port_of(settings),
             settings.kafka_bootstrap, settings.pg_host, settings.pg_port)
    try:
        # uvloop: the event loop in C. asyncio's own loop was a visible share of every service's CPU
        # per message and per request.
        uvloop.run(serve(service, port_of(settings)))
    finally:
        provider.shutdown()
