"""Prometheus metrics of a service process (prometheus-client), served on `GET /metrics`.

What every service has is defined here, once: HTTP requests by route template and status, the outbox
followers' batches, backlog and failures, the Kafka consumers' lag, batches and rebalances, dead
letters, retries. Each service registers its own counters (facts, decisions, orders, money) in its
own `adapters/metrics.py`. Cheap by construction: counted per batch, never per message, on the hot
paths; gauges that need a look at the database or the broker (backlog, lag) are sampled by the health
watch (`services.runtime.health`) every few seconds, not computed per event.

Names and labels follow Prometheus conventions (`flexledger_..._total`, `_seconds`, `_fen`). No label
ever holds an identity number, a fact id or a raw path: routes are templates, reasons are kinds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from faststream import BaseMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# ---- HTTP -----------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "flexledger_http_requests_total", "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "flexledger_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# ---- outbox followers (relays and projections) ----------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "flexledger_outbox_backlog_events", "Events recorded but not yet handled by a log follower "
    "(notification log head minus the follower's position).", ["service", "follower"],
)
OUTBOX_POSITION = Gauge(
    "flexledger_outbox_position", "Notification id a log follower has handled up to.",
    ["service", "follower"],
)
OUTBOX_BATCH = Histogram(
    "flexledger_outbox_batch_events", "Events in one batch handled by a log follower.", ["follower"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
)
OUTBOX_FAILURES = Counter(
    "flexledger_outbox_step_failures_total", "Failed batches of a log follower (retried with backoff).",
    ["follower"],
)

# ---- Kafka consumers --------------------------------------------------------------------------------

CONSUMER_LAG = Gauge(
    "flexledger_kafka_consumer_lag_messages", "Messages on a partition not yet handled by the consumer "
    "group (the partition's high watermark minus the next offset to handle).",
    ["service", "group", "topic", "partition"],
)
CONSUMER_HANDLED_OFFSET = Gauge(
    "flexledger_kafka_consumer_handled_offset", "The next offset the consumer group will handle on a "
    "partition (its last handled offset + 1).", ["service", "group", "topic", "partition"],
)
CONSUMER_BATCH = Histogram(
    "flexledger_kafka_consumer_batch_messages", "Records handed to a handler at once.", ["topic"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500),
)
CONSUMER_REBALANCES = Counter(
    "flexledger_kafka_consumer_rebalances_total", "Consumer group generations this process joined "
    "(each one a rebalance; sampled, so two within one sampling interval count once).",
    ["service", "group"],
)

# ---- failures -------------------------------------------------------------------------------------

DEAD_LETTERS = Counter(
    "flexledger_dead_letters_total", "Messages kept as dead letters instead of being taken in, by source "
    "topic and kind of reason.", ["service", "topic", "reason"],
)
RETRIES = Counter(
    "flexledger_retries_total", "Failed attempts of an operation retried until it succeeds (the database "
    "or the broker was away).", ["operation"],
)


def dead_letter_reason(reason: str) -> str:
    """The kind of a dead letter's reason, for a label (the reason itself names fields and offsets)."""
    if "flexledger_mac" in reason:
        return "not_authentic"
    if "schema_version" in reason:
        return "unknown_schema_version"
    if "belongs on" in reason:
        return "wrong_topic"
    return "invalid"


def retry_operation(what: str) -> str:
    """The operation of an `until_done` description ("processing 12 facts from ..."): its first word."""
    return what.split(" ", 1)[0] or "operation"


# ---- consumers: what each consumer handled, recorded by a broker middleware ------------------------

class ConsumerProgress:
    """The next offset to handle per (topic, partition), as this process's handlers finished them: the
    consumer position Kafka would commit. A FastStream middleware (`middleware`) records it once per
    message (once per batch for batch subscribers) after the handler returned or failed; either way the
    offset is committed (AckPolicy.ACK)."""

    def __init__(self) -> None:
        self.handled: dict[tuple[str, int], int] = {}

    def receive(self, raw: Any) -> None:
        """A batch handed to a handler: a partition seen for the first time is known from its first
        record on (so a handler stuck on the very first batch shows as lag)."""
        for record in raw if isinstance(raw, tuple) else (raw,):
            self.handled.setdefault((record.topic, record.partition), record.offset)

    def record(self, raw: Any) -> None:
        records = raw if isinstance(raw, tuple) else (raw,)
        if not records:
            return
        for record in records:  # ascending offsets per partition: the last one wins
            self.handled[(record.topic, record.partition)] = record.offset + 1
        CONSUMER_BATCH.labels(records[0].topic).observe(len(records))

    def middleware(self) -> Callable[..., BaseMiddleware]:
        progress = self

        class Recorded(BaseMiddleware):
            async def on_receive(self) -> None:
                progress.receive(self.msg)

            async def after_processed(self, *_: Any) -> bool | None:
                progress.record(self.msg)
                return False

        return Recorded


# ---- the HTTP side: /metrics, and a middleware that counts requests ----------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UNMATCHED = "unmatched"  # a path no route matched (a 404): never the path itself


class HttpMetricsMiddleware:
    """ASGI middleware counting each request by method, route template and status, with its latency.
    `/metrics` and `/health` are scraped and polled: not counted."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in ("/metrics", "/health"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app raises before answering

        async def send_with_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope.get("method", "GET")
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


def serve_metrics(http: FastAPI, service: str, *, count_requests: bool = True) -> None:
    """Add `GET /metrics` (the Prometheus text format, unauthenticated like /health: it holds no
    personal data) and, with `count_requests`, the request-counting middleware to `http`."""

    @http.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if count_requests:
        http.add_middleware(HttpMetricsMiddleware, service=service)
