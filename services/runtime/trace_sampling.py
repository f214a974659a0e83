"""Which traces a service exports: every trace its caller sampled, and new ones up to a rate per second.

Exporting one single-POSTed fact's trace (4-9 spans across the three services) cost about 0.2-0.4 ms of
CPU, most of the stack's whole 0.55 ms per fact, when the budget for metrics and tracing is a tenth of
that (bench/README.md, "Exported tracing"). So a service that exports samples at most `traces_per_s`
new traces a second (a token bucket, as Jaeger's rate-limiting sampler): a quiet stack (the demo, a
developer's curl, the e2e tests) exports every trace; a busy one a bounded number a second, so the
cost per fact falls as the load grows.

The decision is the trace's, not each service's (`ParentBased`): it travels in `traceparent`'s sampled
flag, over HTTP, on stored events and on Kafka headers, so a sampled fact is traced through all three
services and an unsampled one by none. A caller that wants its request traced sends a `traceparent`
with the sampled flag (`00-<trace id>-<span id>-01`). Spans of unsampled traces are still recorded,
only not exported: they cost what every span cost before export existed, the services keep their span
attributes (log lines inside a request name its book) and trace ids reach the events as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


def _parent_trace_state(parent_context: Context | None) -> TraceState | None:
    parent = trace.get_current_span(parent_context).get_span_context()
    return parent.trace_state if parent.is_valid else None


class RecordOnly(Sampler):
    """Records the span without sampling it: the batch processor does not export it."""

    def should_sample(
        self, parent_context: Context | None, trace_id: int, name: str, kind: SpanKind | None = None,
        attributes: Attributes = None, links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY, attributes, _parent_trace_state(parent_context))

    def get_description(self) -> str:
        return "RecordOnly"


class TracesPerSecond(Sampler):
    """Samples new traces (root spans) while a token bucket holding `per_s` tokens, refilled at `per_s`
    a second, has one: bursts of up to `per_s` traces, and at most `per_s` a second over time. The rest
    are recorded only."""

    def __init__(self, per_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_s <= 0:
            raise ValueError("traces per second must be positive")
        self.per_s = per_s
        self._clock = clock
        self._tokens = float(per_s)
        self._refilled_at = clock()
        self._lock = threading.Lock()  # spans start on the event loop and in `to_thread` workers

    def should_sample(
        self, parent_context: Context | None, trace_id: int, name: str, kind: SpanKind | None = None,
        attributes: Attributes = None, links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self._take() else Decision.RECORD_ONLY
        return SamplingResult(decision, attributes, _parent_trace_state(parent_context))

    def _take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.per_s), self._tokens + (now - self._refilled_at) * self.per_s)
            self._refilled_at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def get_description(self) -> str:
        return f"TracesPerSecond{{{self.per_s}}}"


def exported_traces_sampler(traces_per_s: int) -> Sampler:
    """The sampler of a service that exports: its callers' decisions, and `traces_per_s` new traces a
    second (0: every trace)."""
    record_only = RecordOnly()
    return ParentBased(ALWAYS_ON if traces_per_s == 0 else TracesPerSecond(traces_per_s),
                       remote_parent_not_sampled=record_only, local_parent_not_sampled=record_only)
