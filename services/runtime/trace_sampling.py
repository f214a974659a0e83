"""Which traces a service exports: every trace its caller chose, and new ones up to a rate per second.

Exporting one single-POSTed fact's trace (9 spans across the three services) cost about 0.2-0.4 ms of
CPU, most of the stack's whole 0.55 ms per fact; the budget for metrics and tracing is a tenth of that
(bench/README.md, "Exported tracing"). So a service that exports starts at most `traces_per_s` new
traces a second (a token bucket, as Jaeger's rate-limiting sampler): a quiet stack (the demo, a
developer's curl, the e2e tests) has every trace; a busy one exports a bounded number a second, so the
cost per fact falls as the load grows (10 traces/s ≈ 2-4 ms of CPU a second, whatever the load).

The decision is the trace's, not each service's (`ParentBased`): it travels in `traceparent`'s sampled
flag, over HTTP, on stored events and on Kafka headers, so a sampled fact is traced through all three
services and an unsampled one by none. An unsampled span still has its ids: trace ids reach the events,
answers and logs as before; only its attributes and its export are skipped. A caller that wants one
request traced sends a `traceparent` with the sampled flag (`00-<trace id>-<span id>-01`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class TracesPerSecond(Sampler):
    """Samples new traces (root spans) while a token bucket holding `per_s` tokens, refilled at `per_s`
    a second, has one: bursts of up to `per_s` traces, and at most `per_s` a second over time."""

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
        if not self._take():
            return SamplingResult(Decision.DROP, None, trace_state)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)

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
    return ParentBased(ALWAYS_ON if traces_per_s == 0 else TracesPerSecond(traces_per_s))
