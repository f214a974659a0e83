"""What exporting spans to Zipkin costs a service, in CPU per fact, apart from everything else.

A single POSTed fact that leads to a payment order makes 9 spans across the three services
(tests/e2e/test_trace.py names them; one without a decision makes 4-5). Spans are created whether or
not they are exported (trace ids reach the events either way). This creates one such chain of 9 spans,
with the same kinds of attributes, for N facts in one process, under each set-up in turn, and prints the
process's CPU (all threads: the exporter's thread included) per fact:

- not exported: a recording span each, no processor (a service with no exporter configured);
- not sampled: exporting, but the trace is one the services' sampler does not sample
  (services/runtime/trace_sampling.py): recorded, not exported;
- exported by the SDK's `ZipkinExporter` (opentelemetry-exporter-zipkin-json), before 2026-12-03;
- exported by the services' `ZipkinJsonExporter` (services/runtime/zipkin_export.py), both behind the
  SDK's `BatchSpanProcessor`, to a real Zipkin server (its own CPU printed apart).

A bulk request's facts share their spans, so there the cost per fact is a fraction of this.

    .venv/bin/python bench/trace_export_bench.py --facts 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.runtime.settings import Settings  # noqa: E402
from services.runtime.trace_sampling import exported_traces_sampler  # noqa: E402
from services.runtime.zipkin_export import ZipkinJsonExporter  # noqa: E402

SPANS = (  # (name, kind) of one fact's trace, each the child of the one before (a close enough shape)
    ("POST /v1/facts", SpanKind.SERVER), ("intake db commit", SpanKind.INTERNAL),
    ("flexledger.intake.facts.v1 publish", SpanKind.PRODUCER),
    ("flexledger.intake.facts.v1 process", SpanKind.CONSUMER), ("eligibility db commit", SpanKind.INTERNAL),
    ("flexledger.eligibility.decisions.v1 publish", SpanKind.PRODUCER),
    ("flexledger.eligibility.decisions.v1 process", SpanKind.CONSUMER),
    ("payments db commit", SpanKind.INTERNAL), ("flexledger.payments.orders.v1 publish", SpanKind.PRODUCER),
)
CHUNK = 200  # facts between two flushes: their 1,800 spans fit the processor's queue (2,048)
RESOURCE = Resource.create({"service.name": "flexledger-bench"})


def cpu_per_fact_us(provider: TracerProvider, facts: int) -> float:
    tracer = provider.get_tracer("bench")
    started = time.process_time()
    for n in range(facts):
        stack = []
        parent = None
        for name, kind in SPANS:
            span = tracer.start_span(name, context=parent, kind=kind, attributes={
                "messaging.system": "kafka", "messaging.destination.name": name.split(" ")[0],
                "messaging.kafka.offset": n, "flexledger.book": "main", "flexledger.fact_id": f"f-{n}",
            })
            parent = trace.set_span_in_context(span)
            stack.append(span)
        for span in reversed(stack):
            span.end()
        if n % CHUNK == CHUNK - 1:
            provider.force_flush()
    provider.shutdown()  # flushes the rest
    return (time.process_time() - started) * 1e6 / facts


def exporting(exporter: SpanExporter, traces_per_s: int = 0) -> TracerProvider:
    provider = TracerProvider(resource=RESOURCE, sampler=exported_traces_sampler(traces_per_s))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def main() -> None:
    from opentelemetry.exporter.zipkin.json import ZipkinExporter

    from flexledger.devstack import health, zipkin
    from flexledger.devstack.processes import pid_alive

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--zipkin-port", type=int, default=39_911)
    args = parser.parse_args()
    settings = Settings(zipkin_port=args.zipkin_port, state_dir=str(ROOT / "var" / "bench-traces"))
    endpoint = zipkin.spans_endpoint(settings)
    setups: dict[str, Callable[[], TracerProvider]] = {
        "not exported (recorded, no processor)": lambda: TracerProvider(resource=RESOURCE),
        # One trace a second: the first fact's is sampled, the others are not.
        "not sampled (recorded, not exported)": lambda: exporting(ZipkinJsonExporter(endpoint, 5), 1),
        "exported: SDK ZipkinExporter": lambda: exporting(ZipkinExporter(endpoint=endpoint)),
        "exported: ZipkinJsonExporter": lambda: exporting(ZipkinJsonExporter(endpoint, timeout_s=5)),
    }
    zipkin.start_zipkin(settings)
    try:
        health.wait_healthy(zipkin.PART, settings, 300)
        pid = zipkin.zipkin_pid(settings)
        print(f"{args.facts:,} facts, {len(SPANS)} spans each; load average {os.getloadavg()[0]:.1f}")
        for name, setup in setups.items():
            zipkin_before = _cpu_s(pid)
            us = cpu_per_fact_us(setup(), args.facts)
            zipkin_us = (_cpu_s(pid) - zipkin_before) * 1e6 / args.facts if pid and pid_alive(pid) else 0.0
            viewer = f"   (Zipkin itself {zipkin_us:.0f} µs more)" if name.startswith("exported") else ""
            print(f"  {name:40s} {us:8.1f} µs CPU per fact{viewer}")
    finally:
        zipkin.stop_zipkin(settings)


def _cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
