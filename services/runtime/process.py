"""Running one service process: logging to stderr (services/runtime/logs.py), tracing, the HTTP
server, start and stop, and retrying an operation until it succeeds.

A service is anything with `start()`, `stop()` and an ASGI app `http`; `python -m services.<name>`
calls `main` with the service's factory. Uvicorn handles SIGTERM/SIGINT; the service then stops its
consumers and relays before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

import uvicorn
import uvloop
from opentelemetry.sdk.trace import TracerProvider

from services.runtime import memory
from services.runtime.logs import configure_logging
from services.runtime.metrics import RETRIES, retry_operation
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
            RETRIES.labels(retry_operation(what)).inc()
            log.exception("%s failed; retrying in %.2fs", what, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)


async def serve(service: Service, port: int, host: str = "127.0.0.1") -> None:
    """Serve HTTP while the service starts (it may wait for its broker and database: /health says
    `starting` and why, every other path answers 503), then until a signal; then stop it."""
    role: Callable[[], str | None] = getattr(service, "role", lambda: None)  # a ServiceRuntime's
    gate = StartingGate(service.http, standby=lambda: role() == "standby")
    # httptools: uvicorn's C parser (its pure-Python h11 cost more CPU per request than our handlers).
    server = _Server(uvicorn.Config(
        gate, host=host, port=port, log_config=None, access_log=False, lifespan="off", http="httptools",
    ))
    serving = asyncio.create_task(server.serve(), name="http")
    starting = asyncio.create_task(service.start(), name="start")
    trimming = asyncio.create_task(memory.trim_periodically(), name="malloc trim")
    try:
        await asyncio.wait({serving, starting}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a start that failed for good (not "unreachable"): the process exits
            gate.open = True
        await serving  # until a signal
    finally:
        starting.cancel()
        trimming.cancel()
        await asyncio.gather(starting, trimming, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(serving, return_exceptions=True)
        await service.stop()


class _Server(uvicorn.Server):
    """uvicorn raises a caught SIGTERM or SIGINT again once it stopped serving, which ended the process
    before `service.stop()` ran (the broker first, so no message is half-handled). Here the signal
    means "stop serving, then stop the service"; a second one, after serving ended, ends the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


STARTING = b'{"detail": "starting: waiting for the broker or the database"}'
STANDBY = b'{"detail": "standby: waiting for the writer lock, which the active instance holds"}'


class StartingGate:
    """The service's ASGI app, but 503 (Retry-After) for everything except /health until it started:
    its handlers need what the start steps open. A standby says so: it starts once it holds the lock."""

    def __init__(self, app: Any, standby: Callable[[], bool] = lambda: False) -> None:
        self.app = app
        self.standby = standby
        self.open = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.open or scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        body = STANDBY if self.standby() else STARTING
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", b"1"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


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
    memory.limit_arenas()  # before any thread allocates (services/runtime/memory.py)
    settings = Settings.from_env().for_service()
    configure_logging(name, settings.log_format)
    gc.set_threshold(*GC_THRESHOLDS)
    provider = setup_tracing(name, settings)
    service = build(settings, provider)
    log.info("%s starting on %s:%d (kafka %s, postgres %s)", name, settings.http_host, port_of(settings),
             settings.kafka_bootstrap, settings.pg_address)
    try:
        # uvloop: the event loop in C. asyncio's own loop was a visible share of every service's CPU
        # per message and per request.
        uvloop.run(serve(service, port_of(settings), settings.http_host))
    finally:
        provider.shutdown()
