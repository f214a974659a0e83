"""Spans to Zipkin's v2 JSON API, encoded with as little Python per span as the format allows.

The SDK's `ZipkinExporter` (opentelemetry-exporter-zipkin-json) took 21-26 µs of CPU per span to
encode on this machine, more than creating the span: it copies the resource's and the instrumentation
scope's attributes into the tags of every span and marks every span `debug`. Zipkin names the service
in `localEndpoint` already, so this exporter sends a span's own attributes, its status and its events
(9 µs per span, 411 bytes instead of 755), encodes each batch in one call of pydantic-core's JSON
encoder (a third of `json.dumps`'s CPU) and POSTs it over one kept-alive connection (bench/README.md,
"Exported tracing"). Its protobuf sibling (opentelemetry-exporter-zipkin-proto-http) requires
protobuf 3, which the OTLP exporter's protobuf >= 5 excludes.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import pydantic_core
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

log = logging.getLogger(__name__)

_CONNECTIONS = {"http": http.client.HTTPConnection, "https": http.client.HTTPSConnection}
_KINDS = {SpanKind.SERVER: "SERVER", SpanKind.CLIENT: "CLIENT", SpanKind.PRODUCER: "PRODUCER",
          SpanKind.CONSUMER: "CONSUMER"}  # INTERNAL has no Zipkin kind


def _tag(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(list(value))  # a sequence, as the SDK's exporter writes it


def zipkin_span(span: ReadableSpan, endpoint: dict[str, str]) -> dict[str, Any]:
    """One span in Zipkin's v2 model (https://zipkin.io/zipkin-api/#/default/post_spans)."""
    ctx = span.context
    start, end = span.start_time or 0, span.end_time or 0
    encoded: dict[str, Any] = {
        "traceId": f"{ctx.trace_id:032x}", "id": f"{ctx.span_id:016x}", "name": span.name,
        "timestamp": (start + 500) // 1000, "duration": (end - start + 500) // 1000,
        "localEndpoint": endpoint,
    }
    if span.parent is not None:
        encoded["parentId"] = f"{span.parent.span_id:016x}"
    if (kind := _KINDS.get(span.kind)) is not None:
        encoded["kind"] = kind
    tags = {key: _tag(value) for key, value in (span.attributes or {}).items()}
    if span.status.status_code is not StatusCode.UNSET:
        tags["otel.status_code"] = span.status.status_code.name
        if span.status.status_code is StatusCode.ERROR:
            tags["error"] = span.status.description or ""  # what `flexledger trace` prints
    if tags:
        encoded["tags"] = tags
    if span.events:
        encoded["annotations"] = [
            {"timestamp": (event.timestamp + 500) // 1000,
             "value": json.dumps({event.name: {k: _tag(v) for k, v in (event.attributes or {}).items()}})}
            for event in span.events
        ]
    return encoded


class ZipkinJsonExporter(SpanExporter):
    """Batches of spans POSTed to `endpoint` (http(s)://host:port/api/v2/spans), one connection kept open."""

    def __init__(self, endpoint: str, timeout_s: float) -> None:
        url = urlsplit(endpoint)
        if url.scheme not in _CONNECTIONS or url.hostname is None:
            raise ValueError(f"a Zipkin endpoint is http(s)://host:port/path, not {endpoint!r}")
        self._connect = _CONNECTIONS[url.scheme]
        self._host, self._port, self._path = url.hostname, url.port, url.path or "/"
        self._timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None
        self._endpoints: dict[str, dict[str, str]] = {}  # by service name: shared by its spans

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        body = pydantic_core.to_json([zipkin_span(span, self._endpoint_of(span)) for span in spans])
        try:
            status = self._post(body)
        except (OSError, http.client.HTTPException):
            # Most often the kept connection, closed by Zipkin while idle: once more, on a new one.
            self._close()
            try:
                status = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                self._close()  # the next batch connects again
                log.warning("spans not sent to Zipkin (%d dropped): %s", len(spans), exc)
                return SpanExportResult.FAILURE
        if status not in (200, 202):
            log.warning("Zipkin refused %d spans: HTTP %d", len(spans), status)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _endpoint_of(self, span: ReadableSpan) -> dict[str, str]:
        name = str(span.resource.attributes.get("service.name", "unknown_service"))
        if (endpoint := self._endpoints.get(name)) is None:
            endpoint = self._endpoints[name] = {"serviceName": name}
        return endpoint

    def _post(self, body: bytes) -> int:
        if self._connection is None:
            self._connection = self._connect(self._host, self._port, timeout=self._timeout_s)
        self._connection.request("POST", self._path, body, {"Content-Type": "application/json"})
        response = self._connection.getresponse()
        response.read()  # the connection serves the next batch only once the answer is read
        if response.will_close:
            self._close()
        return response.status

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def shutdown(self) -> None:
        self._close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
