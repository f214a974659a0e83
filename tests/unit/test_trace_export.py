"""What a service that exports spans sends: the traces its callers sampled and a bounded number of new
ones a second (services/runtime/trace_sampling.py), encoded for Zipkin's v2 API
(services/runtime/zipkin_export.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime.settings import Settings
from services.runtime.telemetry import context_from, current_carrier, setup_tracing
from services.runtime.trace_sampling import TracesPerSecond, exported_traces_sampler
from services.runtime.zipkin_export import ZipkinJsonExporter, zipkin_span


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _traced(sampler: Any) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "flexledger-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def _sampled(span: trace.Span) -> bool:
    return span.get_span_context().trace_flags.sampled


def test_new_traces_are_sampled_in_bursts_of_the_rate_then_as_the_bucket_refills() -> None:
    clock = Clock()
    tracer, _ = _traced(ParentBased(TracesPerSecond(3, clock=clock)))
    assert [_sampled(tracer.start_span("root")) for _ in range(5)] == [True, True, True, False, False]
    clock.now += 0.5  # half a second: one and a half tokens
    assert [_sampled(tracer.start_span("root")) for _ in range(2)] == [True, False]
    clock.now += 60  # a quiet minute refills the bucket, no more
    assert sum(_sampled(tracer.start_span("root")) for _ in range(5)) == 3


def test_an_unsampled_trace_is_recorded_not_exported_and_its_children_follow_the_callers_decision() -> None:
    tracer, exporter = _traced(exported_traces_sampler(1))
    with tracer.start_as_current_span("first"):
        carrier = current_carrier()
    with tracer.start_as_current_span("second", attributes={"flexledger.book": "main"}) as second:
        # The bucket is empty: not sampled, but recorded (its attributes name the book in log lines).
        assert not _sampled(second) and second.is_recording()
        assert second.attributes == {"flexledger.book": "main"}  # type: ignore[attr-defined]
        with tracer.start_as_current_span("second db commit") as commit:
            assert commit.is_recording() and not _sampled(commit)
        unsampled = current_carrier()
    assert _sampled_flag(carrier) == 1 and _sampled_flag(unsampled) == 0
    # Downstream: a sampled caller's child is sampled whatever the bucket holds, an unsampled caller's not.
    child = tracer.start_span("process", context=context_from(carrier["traceparent"]), kind=SpanKind.CONSUMER)
    assert _sampled(child)
    assert not _sampled(tracer.start_span("process", context=context_from(unsampled["traceparent"])))
    child.end()
    assert [s.name for s in exporter.get_finished_spans()] == ["first", "process"]


def _sampled_flag(carrier: dict[str, str]) -> int:
    return int(carrier["traceparent"].split("-")[3], 16) & 1


def test_zero_traces_per_second_samples_every_trace() -> None:
    tracer, _ = _traced(exported_traces_sampler(0))
    assert all(_sampled(tracer.start_span("root")) for _ in range(1000))


def test_only_a_service_that_exports_samples_and_the_sdks_variable_overrides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    exporting = Settings(otel_traces_file=str(tmp_path / "spans.jsonl"), traces_per_s=7)
    assert "TracesPerSecond{7}" in setup_tracing("intake", exporting).sampler.get_description()
    assert "TracesPerSecond" not in setup_tracing("intake", Settings()).sampler.get_description()
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    assert setup_tracing("intake", exporting).sampler.get_description() == "AlwaysOnSampler"


def _finished(build: Any, name: str) -> ReadableSpan:
    tracer, exporter = _traced(None)
    build(tracer)
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def test_a_span_in_zipkins_model_has_its_ids_kind_parent_attributes_status_and_events() -> None:
    attributes = {"flexledger.events": 3, "flexledger.ok": False, "db.system": "postgresql",
                  "ids": ("a", "b")}

    def failed(tracer: trace.Tracer) -> None:
        with (tracer.start_as_current_span("POST /v1/facts", kind=SpanKind.SERVER),
              tracer.start_as_current_span("intake db commit", attributes=attributes) as span):
            span.record_exception(ValueError("no"))
            span.set_status(StatusCode.ERROR, "ValueError")

    span = _finished(failed, "intake db commit")
    endpoint = {"serviceName": "flexledger-test"}
    encoded = zipkin_span(span, endpoint)
    assert span.context is not None and span.parent is not None
    assert encoded["traceId"] == f"{span.context.trace_id:032x}"
    assert encoded["id"] == f"{span.context.span_id:016x}"
    assert encoded["parentId"] == f"{span.parent.span_id:016x}" and "kind" not in encoded  # INTERNAL
    assert encoded["name"] == "intake db commit" and encoded["localEndpoint"] is endpoint
    assert encoded["timestamp"] > 0 and encoded["duration"] >= 0
    assert encoded["tags"] == {"flexledger.events": "3", "flexledger.ok": "false", "db.system": "postgresql",
                               "ids": '["a", "b"]', "otel.status_code": "ERROR", "error": "ValueError"}
    [annotation] = encoded["annotations"]
    assert json.loads(annotation["value"])["exception"]["exception.type"] == "ValueError"


def test_a_root_span_has_no_parent_and_its_kind() -> None:
    span = _finished(lambda tracer: tracer.start_span("GET /x", kind=SpanKind.SERVER).end(), "GET /x")
    encoded = zipkin_span(span, {"serviceName": "s"})
    assert "parentId" not in encoded and encoded["kind"] == "SERVER" and "tags" not in encoded


class _Zipkin(BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []
    status = 202

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Zipkin.received.append((self.path, self.headers["Content-Type"], json.loads(body)))
        self.send_response(_Zipkin.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def zipkin() -> Iterator[str]:
    _Zipkin.received, _Zipkin.status = [], 202
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Zipkin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v2/spans"
    finally:
        server.shutdown()
        server.server_close()


def test_the_exporter_posts_each_batch_as_one_json_array_and_reports_a_refusal(zipkin: str) -> None:
    tracer, finished = _traced(None)
    for n in range(3):
        tracer.start_span(f"span {n}").end()
    spans = list(finished.get_finished_spans())
    exporter = ZipkinJsonExporter(zipkin, timeout_s=5)
    assert exporter.export(spans[:2]) is SpanExportResult.SUCCESS
    assert exporter.export(spans[2:]) is SpanExportResult.SUCCESS  # on the same connection
    _Zipkin.status = 400
    assert exporter.export(spans) is SpanExportResult.FAILURE
    exporter.shutdown()
    assert [(path, kind, [s["name"] for s in body]) for path, kind, body in _Zipkin.received] == [
        ("/api/v2/spans", "application/json", ["span 0", "span 1"]),
        ("/api/v2/spans", "application/json", ["span 2"]),
        ("/api/v2/spans", "application/json", ["span 0", "span 1", "span 2"]),
    ]
    assert _Zipkin.received[0][2][0]["localEndpoint"] == {"serviceName": "flexledger-test"}


def test_an_unreachable_zipkin_fails_the_batch_not_the_service() -> None:
    exporter = ZipkinJsonExporter("http://127.0.0.1:9/api/v2/spans", timeout_s=1)  # the discard port: closed
    span = _finished(lambda tracer: tracer.start_span("lost").end(), "lost")
    assert exporter.export([span]) is SpanExportResult.FAILURE


def test_a_kept_connection_zipkin_closed_is_replaced_and_the_batch_sent(zipkin: str) -> None:
    import http.client

    exporter = ZipkinJsonExporter(zipkin, timeout_s=5)
    exporter._connection = http.client.HTTPConnection("127.0.0.1", 9)  # as a connection closed while idle
    span = _finished(lambda tracer: tracer.start_span("after a pause").end(), "after a pause")
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    assert [s["name"] for s in _Zipkin.received[0][2]] == ["after a pause"]
