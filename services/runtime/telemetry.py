"""OpenTelemetry for every process: where spans go, and how trace context crosses HTTP and Kafka.

Export (first that applies): OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (a collector,
deploy/compose.yaml); Zipkin's JSON API when OTEL_EXPORTER_ZIPKIN_ENDPOINT is set (the local stack's
Zipkin, which `flexledger dev up` starts and points the services at; `zipkin_export`); JSON lines to
the file OTEL_TRACES_FILE; otherwise spans are created (trace ids still reach the events) but not
exported. A service that exports sends the traces its callers sampled and at most `traces_per_s` new
ones a second; the other traces' spans are recorded, not sent (`trace_sampling`). OTEL_TRACES_SAMPLER,
when set, names the SDK's sampler instead.

Context is propagated by hand, W3C `traceparent`/`tracestate`, so that we choose every span
attribute: identity numbers never appear in clear (use `contracts.identifiers.mask`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.runtime.settings import Settings
from services.runtime.trace_sampling import exported_traces_sampler
from services.runtime.zipkin_export import ZipkinJsonExporter

_PROPAGATOR = TraceContextTextMapPropagator()
INSTRUMENTATION = "flexledger"
ZIPKIN_TIMEOUT_S = 5  # one export; the batch processor drops the batch after it, never the service
FACT_ID_ATTRIBUTE = "flexledger.fact_id"  # on the span that received one fact: `flexledger trace` finds it
BOOK_ATTRIBUTE = "flexledger.book"  # the book a span worked for (logs written inside it name it too)


class JsonLinesSpanExporter(SpanExporter):
    """One JSON object per finished span, appended to a file (for machines without a collector)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(json.loads(span.to_json()), ensure_ascii=False) + "\n" for span in spans)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _otlp_traces_url(endpoint: str) -> str:
    # The variable names the collector's base URL; the exporter wants the traces path itself.
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def setup_tracing(service_name: str, settings: Settings) -> TracerProvider:
    """A TracerProvider for one service process, exporting as the module docstring says."""
    exporter = _exporter(settings)
    sampler = None  # the SDK's: OTEL_TRACES_SAMPLER, else every trace its callers did not drop
    if exporter is not None and not os.environ.get("OTEL_TRACES_SAMPLER"):
        sampler = exported_traces_sampler(settings.traces_per_s)
    resource = Resource.create({"service.name": f"flexledger-{service_name}"})
    provider = TracerProvider(resource=resource, sampler=sampler)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=_otlp_traces_url(settings.otel_exporter_otlp_endpoint))
    if settings.otel_exporter_zipkin_endpoint:
        return ZipkinJsonExporter(settings.otel_exporter_zipkin_endpoint, ZIPKIN_TIMEOUT_S)
    if settings.otel_traces_file:
        return JsonLinesSpanExporter(settings.otel_traces_file)
    return None


def get_tracer(provider: trace.TracerProvider | None, name: str) -> trace.Tracer:
    return trace.get_tracer(f"{INSTRUMENTATION}.{name}", tracer_provider=provider)


def current_carrier() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, to store on an event or send on."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context:
    """The remote parent carried by `traceparent`; an empty context when there is none."""
    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier) if traceparent else Context()


def context_from_headers(headers: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract({k.lower(): v for k, v in headers.items()})


def carrier_of(headers: Mapping[str, str]) -> dict[str, str]:
    """The W3C trace context `headers` carry, as `current_carrier` would give it ({} when they carry
    none, or none that parses): to store with what a received message caused."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context_from_headers(headers))
    return carrier


def trace_id_hex(span: Span | None = None) -> str | None:
    """The 32-hex-digit trace id of `span` (default: the current span), None when not recording."""
    ctx = (span or trace.get_current_span()).get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def traceparent_of(span: Span) -> str | None:
    """The W3C `traceparent` naming `span` itself (None for a span that is not recording)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


class TracingMiddleware:
    """ASGI middleware: one SERVER span per HTTP request, child of the caller's `traceparent`; the
    response names that span in its own `traceparent` header, so a caller (or an operator holding the
    response) can find the trace of what it caused (`flexledger trace TRACE_ID`).

    Its attributes are the method, route path and status only: paths and bodies may hold personal data
    elsewhere, so nothing else from the request is recorded here (a route adds what it knows to be
    safe: intake, the book and the masked fact id)."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/health":
            await self.app(scope, receive, send)
            return
        traceparent = tracestate = None
        for name, value in scope.get("headers", ()):  # only the two headers it needs: no dict per request
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":
                tracestate = value.decode("latin-1")
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        with self.tracer.start_as_current_span(
            f"{method} {path}", context=context_from(traceparent, tracestate), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            own = traceparent_of(span)
            response_header = own.encode("latin-1") if own is not None else None

            async def send_with_status(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if response_header is not None:
                        message["headers"] = [*message.get("headers", ()), (b"traceparent", response_header)]
                await send(message)

            await self.app(scope, receive, send_with_status)
            # Name by the route template (low cardinality), known once the router has matched it.
            if (template := getattr(scope.get("route"), "path", None)) is not None:
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
