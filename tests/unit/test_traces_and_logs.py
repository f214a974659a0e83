"""Operators' view of one fact: JSON log lines joined to traces, the `traceparent` response header, and
`flexledger trace`'s span tree (from Zipkin v2 spans)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flexledger.trace import render, span_tree
from services.runtime.logs import SpanContextFilter, json_formatter
from services.runtime.telemetry import BOOK_ATTRIBUTE, TracingMiddleware, get_tracer

W = "320213197804121019"


def _json_logger(stream: io.StringIO) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(SpanContextFilter("eligibility"))
    logger = logging.getLogger("test.traces_and_logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_a_json_log_line_inside_a_span_carries_its_trace_span_service_and_book_masked() -> None:
    stream = io.StringIO()
    logger = _json_logger(stream)
    tracer = get_tracer(TracerProvider(), "test")
    with tracer.start_as_current_span("work", attributes={BOOK_ATTRIBUTE: "main"}) as span:
        logger.info("decided for worker %s", W)
        ctx = span.get_span_context()
    logger.info("outside any span")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace_id"] == f"{ctx.trace_id:032x}" and inside["span_id"] == f"{ctx.span_id:016x}"
    assert inside["service"] == "eligibility" and inside["book"] == "main"
    assert inside["level"] == "INFO" and inside["logger"] == "test.traces_and_logs" and "time" in inside
    assert inside["message"] == "decided for worker 3202**********1019"
    assert outside["service"] == "eligibility" and "trace_id" not in outside and "book" not in outside


def test_a_json_log_line_masks_identity_numbers_in_its_traceback() -> None:
    stream = io.StringIO()
    logger = _json_logger(stream)
    try:
        raise ValueError(f"DETAIL: Failing row contains ({W}, 100000)")
    except ValueError:
        logger.exception("recording failed")
    line = stream.getvalue()
    assert W not in line and "3202**********1019" in json.loads(line)["exc_info"]


def test_every_traced_response_names_its_span_in_a_traceparent_header() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 201,  # type: ignore[operator]
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    traced = TracingMiddleware(app, get_tracer(provider, "test"))  # type: ignore[arg-type]

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=traced)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/v1/facts", headers={
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})

    response = asyncio.run(call())
    (span,) = exporter.get_finished_spans()
    assert span.context is not None
    assert response.headers["traceparent"] == (
        f"00-0af7651916cd43dd8448eb211c80319c-{span.context.span_id:016x}-01")
    assert response.headers["content-type"] == "application/json"


def _span(span_id: str, parent: str | None, service: str, name: str, ts: int, duration_us: int,
          **tags: str) -> dict[str, object]:
    span: dict[str, object] = {"traceId": "ab" * 16, "id": span_id, "name": name, "timestamp": ts,
                               "duration": duration_us, "localEndpoint": {"serviceName": service},
                               "tags": tags}
    if parent is not None:
        span["parentId"] = parent
    return span


def test_the_span_tree_puts_children_under_their_parent_in_start_order_with_errors() -> None:
    spans = [  # in no particular order, as Zipkin may return them
        _span("c", "b", "flexledger-eligibility", "facts process", 300, 900),
        _span("a", None, "flexledger-intake", "POST /v1/facts", 100, 12_500),
        _span("e", "c", "flexledger-eligibility", "eligibility db commit", 400, 2_000,
              **{"otel.status_code": "ERROR", "error": "deadlock detected"}),
        _span("b", "a", "flexledger-intake", "facts publish", 200, 1_000),
        _span("d", "a", "flexledger-intake", "intake db commit", 150, 3_000),
    ]
    lines = span_tree(spans)
    assert [(line.depth, line.service, line.operation) for line in lines] == [
        (0, "intake", "POST /v1/facts"),
        (1, "intake", "intake db commit"),
        (1, "intake", "facts publish"),
        (2, "eligibility", "facts process"),
        (3, "eligibility", "eligibility db commit"),
    ]
    text = render(lines)
    assert text[0].startswith("POST /v1/facts") and text[0].endswith("12.5 ms")
    assert text[4].startswith("      eligibility db commit") and text[4].endswith("ERROR deadlock detected")
    assert len({line.index(" ms") for line in text}) == 1  # the durations line up


def test_a_span_whose_parent_is_missing_is_shown_as_a_root() -> None:
    lines = span_tree([_span("x", "gone", "flexledger-payments", "orders publish", 1, 10)])
    assert [(line.depth, line.service) for line in lines] == [(0, "payments")]
