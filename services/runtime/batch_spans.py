"""Tracing a consumed batch of Kafka records, and the one rule for tracing a commit.

The mirror of `services.runtime.publishing.publish_batch`, which gives the messages of one trace in an outbox
batch one PRODUCER span: here the records of a consumed batch that carry the same `traceparent` (the
same producer span) get one CONSUMER span, child of it (`group_of`). A single POST's fact has a trace
of its own, so a span of its own (with its offset); the facts of one bulk request share one span
(`messaging.batch.message_count`). Per record, two spans (process and commit) cost eligibility more
CPU than its rules did. A handler that reports on each record (payments: each decision's id and
result) gives each record a span of its own instead (`own_group`); either way each record's trace
continues from its producer's span.

Commit spans — one rule for every service: a commit is spanned `<service> db commit` in each trace it
commits for.
- Work done inside one trace (an HTTP request, one consumed message, a loop's own span) runs with that
  span current, and the event store spans the commit as its child (`ServiceApplication._record`):
  the caller does nothing.
- A consumed batch commits for many traces at once. Its CONSUMER spans are started here, never made
  current, so the store adds no span of its own; the handler wraps the commit in `child_spans`, which
  gives each of the batch's traces (or the ones it names) its commit span.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from services.runtime.consuming import consumer_span_attributes
from services.runtime.telemetry import context_from, traceparent_of


@dataclass(slots=True)
class TraceGroup:
    """Records of a batch that share one CONSUMER span (those of one producer span, or one record)."""

    span: Span
    trace_id: str | None  # hex, as stored on events
    carrier: dict[str, str]  # `traceparent` naming `span`, to store on events and send on
    offsets: list[int] = field(default_factory=list)


def _identity(span: Span) -> tuple[str | None, dict[str, str]]:
    """The span's trace id (hex) and W3C carrier, as `trace_id_hex` and `current_carrier` give them."""
    ctx = span.get_span_context()
    traceparent = traceparent_of(span)
    if traceparent is None:
        return None, {}
    carrier = {"traceparent": traceparent}
    if ctx.trace_state:
        carrier["tracestate"] = ctx.trace_state.to_header()
    return f"{ctx.trace_id:032x}", carrier


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return (value or b"").decode("utf-8", "replace")
    return None


def _parent(record: Any) -> tuple[str | None, str | None]:
    """The producer span `record` names: its (traceparent, tracestate) headers."""
    return _header(record, "traceparent"), _header(record, "tracestate")


class ConsumedBatch:
    """CONSUMER spans of one consumed batch: one per producer span its records name, or one per record."""

    def __init__(self, tracer: trace.Tracer, group: str) -> None:
        self.tracer = tracer
        self.group = group
        self.groups: list[TraceGroup] = []  # every group of the batch, in the order they began
        self._by_parent: dict[tuple[str, str | None, str | None], TraceGroup] = {}  # by topic, parent

    def group_of(self, record: Any) -> TraceGroup:
        """The trace group of `record` (an aiokafka ConsumerRecord) and the other records of its producer
        span; its span started when new."""
        parent = _parent(record)
        found = self._by_parent.get((record.topic, *parent))
        if found is None:
            found = self._by_parent[(record.topic, *parent)] = self._start(record, parent)
        found.offsets.append(record.offset)
        return found

    def own_group(self, record: Any) -> TraceGroup:
        """A trace group of `record` alone: its own CONSUMER span, child of its producer's span."""
        found = self._start(record, _parent(record))
        found.offsets.append(record.offset)
        return found

    def _start(self, record: Any, parent: tuple[str | None, str | None]) -> TraceGroup:
        # A batch may hold records of a production topic and of its sandbox twin: each span names its own.
        span = self.tracer.start_span(
            f"{record.topic} process", context=context_from(*parent), kind=SpanKind.CONSUMER,
            attributes=consumer_span_attributes(record.topic, self.group, record.partition),
        )
        started = TraceGroup(span, *_identity(span))
        self.groups.append(started)
        return started

    @contextmanager
    def child_spans(
        self, name: str, attributes: dict[str, Any], groups: Iterable[TraceGroup] | None = None
    ) -> Iterator[None]:
        """One span named `name` in the trace of each of `groups` (default: every group of the batch),
        for the block: a database commit they share, say."""
        spans = [
            self.tracer.start_span(name, context=trace.set_span_in_context(group.span), attributes=attributes)
            for group in (self.groups if groups is None else groups)
        ]
        try:
            yield
        finally:
            for span in spans:
                span.end()

    def end(self) -> None:
        for group in self.groups:
            if len(group.offsets) == 1:
                group.span.set_attribute("messaging.kafka.offset", group.offsets[0])
            else:
                group.span.set_attribute("messaging.batch.message_count", len(group.offsets))
            group.span.end()
