"""What exporting spans to Zipkin costs a service, in CPU per fact, apart from everything else.

A single POSTed fact makes 9 spans across the three services (tests/e2e/test_trace.py names them); each
is created whether or not it is exported (trace ids reach the events either way). This creates the same
spans, with the same kinds of attributes, for N facts in one process, twice: not exported, then
exported by the services' exporter (`BatchSpanProcessor` + `ZipkinExporter`, as on `flexledger dev up`)
to a real Zipkin server, and prints the process's CPU (all threads: the exporter's thread included) per
fact for both. The difference is the cost of exporting; Zipkin's own CPU is printed apart. A bulk
request's facts share their spans, so there the cost per fact is a fraction of this.

    .venv/bin/python bench/trace_export_bench.py --facts 20000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SPANS = (  # (name, kind) of one fact's trace, each the child of the one before (a close enough shape)
    ("POST /v1/facts", SpanKind.SERVER), ("intake db commit", SpanKind.INTERNAL),
    ("flexledger.intake.facts.v1 publish", SpanKind.PRODUCER),
    ("flexledger.intake.facts.v1 process", SpanKind.CONSUMER), ("eligibility db commit", SpanKind.INTERNAL),
    ("flexledger.eligibility.decisions.v1 publish", SpanKind.PRODUCER),
    ("flexledger.eligibility.decisions.v1 process", SpanKind.CONSUMER),
    ("payments db commit", SpanKind.INTERNAL), ("flexledger.payments.orders.v1 publish", SpanKind.PRODUCER),
)
CHUNK = 200  # facts between two flushes: their 1,800 spans fit the processor's queue (2,048)


def cpu_per_fact_us(provider: TracerProvider, facts: int) -> float:
    tracer = provider.get_tracer("bench")
    started = time.process_time()
    for n in range(facts):
        stack = []
        for name, kind in SPANS:
            span = tracer.start_span(name, kind=kind, attributes={
                "messaging.system": "kafka", "messaging.destination.name": name.split(" ")[0],
                "messaging.kafka.offset": n, "flexledger.book": "main", "flexledger.fact_id": f"f-{n}",
            })
            stack.append(span)
        for span in reversed(stack):
            span.end()
        if n % CHUNK == CHUNK - 1:
            provider.force_flush()
    provider.shutdown()  # flushes the rest
    return (time.process_time() - started) * 1e6 / facts


def main() -> None:
    from opentelemetry.exporter.zipkin.json import ZipkinExporter

    from flexledger.devstack import health, zipkin
    from flexledger.devstack.processes import pid_alive

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--zipkin-port", type=int, default=39_911)
    args = parser.parse_args()
    settings = Settings(zipkin_port=args.zipkin_port, state_dir=str(ROOT / "var" / "bench-traces"))
    zipkin.start_zipkin(settings)
    try:
        health.wait_healthy(zipkin.PART, settings, 300)
        resource = Resource.create({"service.name": "flexledger-bench"})
        bare = cpu_per_fact_us(TracerProvider(resource=resource), args.facts)
        exported = TracerProvider(resource=resource)
        exported.add_span_processor(BatchSpanProcessor(ZipkinExporter(endpoint=zipkin.spans_endpoint(settings))))
        pid = zipkin.zipkin_pid(settings)
        zipkin_before = _cpu_s(pid)
        with_export = cpu_per_fact_us(exported, args.facts)
        zipkin_us = (_cpu_s(pid) - zipkin_before) * 1e6 / args.facts if pid and pid_alive(pid) else 0.0
    finally:
        zipkin.stop_zipkin(settings)
    print(f"{args.facts:,} facts, {len(SPANS)} spans each")
    print(f"  spans created, not exported   {bare:8.1f} µs CPU per fact")
    print(f"  spans exported to Zipkin      {with_export:8.1f} µs CPU per fact "
          f"(+{with_export - bare:.1f} µs: the cost of exporting)")
    print(f"  Zipkin server itself          {zipkin_us:8.1f} µs CPU per fact (another process)")


def _cpu_s(pid: int | None) -> float:
    import os

    if pid is None:
        return 0.0
    stat = Path(f"/proc/{pid}/stat").read_text()
    rest = stat[stat.rfind(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
