"""Tracing a consumed batch of Kafka records at a cost per trace, not per record.

The mirror of `services.runtime.kafka.publish_batch`, which gives the messages of one trace in an outbox batch
one PRODUCER span: here the records of a consumed batch that carry the same `traceparent` (the same
producer span) get one CONSUMER span, child of it. A single POST's fact has a trace of its own, so a
span of its own (with its offset); the facts of one bulk request share one span
(`messaging.batch.message_count`). Per record, two spans (process and commit) cost eligibility more
CPU than its rules did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from services.runtime.kafka import consumer_span_attributes
from services.runtime.telemetry import context_from


@dataclass(slots=True)
class TraceGroup:
    """The records of a batch that share one producer span, and their CONSUMER span."""

    span: Span
    trace_id: str | None  # hex, as stored on events
    carrier: dict[str, str]  # `traceparent` naming `span`, to store on events and send on
    offsets: list[int] = field(default_factory=list)


def _identity(span: Span) -> tuple[str | None, dict[str, str]]:
    """The span's trace id (hex) and W3C carrier, as `trace_id_hex` and `current_carrier` give them."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None, {}
    carrier = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    if ctx.trace_state:
        carrier["tracestate"] = ctx.trace_state.to_header()
    return f"{ctx.trace_id:032x}", carrier


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return (value or b"").decode("utf-8", "replace")
    return None


class ConsumedBatch:
    """CONSUMER spans of one consumed batch, one per producer span its records name."""

    def __init__(self, tracer: trace.Tracer, topic: str, group: str) -> None:
        self.tracer = tracer
        self.topic = topic
        self.group = group
        self.groups: dict[tuple[str | None, str | None], TraceGroup] = {}

    def group_of(self, record: Any) -> TraceGroup:
        """The trace group of `record` (an aiokafka ConsumerRecord), its span started when new."""
        parent = (_header(record, "traceparent"), _header(record, "tracestate"))
        found = self.groups.get(parent)
        if found is None:
            span = self.tracer.start_span(
                f"{self.topic} process", context=context_from(*parent), kind=SpanKind.CONSUMER,
                attributes=consumer_span_attributes(self.topic, self.group, record.partition),
            )
            found = self.groups[parent] = TraceGroup(span, *_identity(span))
        found.offsets.append(record.offset)
        return found

    @contextmanager
    def child_spans(self, name: str, attributes: dict[str, Any]) -> Iterator[None]:
        """One span named `name` in each trace of the batch (a database commit they share, say)."""
        spans = [
            self.tracer.start_span(name, context=trace.set_span_in_context(group.span), attributes=attributes)
            for group in self.groups.values()
        ]
        try:
            yield
        finally:
            for span in spans:
                span.end()

    def end(self) -> None:
        for group in self.groups.values():
            if len(group.offsets) == 1:
                group.span.set_attribute("messaging.kafka.offset", group.offsets[0])
            else:
                group.span.set_attribute("messaging.batch.message_count", len(group.offsets))
            group.span.end()
