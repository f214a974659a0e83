"""`flexledger trace FACT_ID|TRACE_ID`: one fact's span tree in the terminal, read from Zipkin's API.

A TRACE_ID (32 hex digits: intake's `trace_id` field and `traceparent` response header, a decision's or
an order's `trace_id`) is shown as it is. Anything else is a fact id: the trace whose span carries
`flexledger.fact_id=<id>` (intake tags the request span of every single `POST /v1/facts` with it)
is found with Zipkin's tag query (`annotationQuery`); a fact sent in a bulk request shares the
request's trace, named by the bulk response's `trace_id` (and each decision's `trace_id`).

Each line: the service, the operation (span name), its duration, and `ERROR ...` for a failed span,
indented under its parent; children in the order they started.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import typer

from contracts.identifiers import mask_identifiers
from flexledger import output
from flexledger.devstack import zipkin
from flexledger.exits import Exit, fail
from services.runtime.settings import Settings
from services.runtime.telemetry import FACT_ID_ATTRIBUTE

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
LOOKBACK_MS = 7 * 24 * 3600 * 1000  # how far back a fact id is looked for (Zipkin's default is 1 day)
FOUND_MAX = 10
SERVICE_PREFIX = "flexledger-"  # every service's `service.name` (services/runtime/telemetry.py)


class TraceNotFound(Exception):
    pass


@dataclass(frozen=True)
class SpanLine:
    depth: int
    service: str
    operation: str
    duration_ms: float
    error: str | None

    @property
    def label(self) -> str:
        return f"{'  ' * self.depth}{self.operation}"


def render(lines: Sequence[SpanLine]) -> list[str]:
    """The tree as text: operation (indented), service and duration in aligned columns, then any error."""
    width = max((len(line.label) for line in lines), default=0)
    service_width = max((len(line.service) for line in lines), default=0)
    out = []
    for line in lines:
        text = f"{line.label:<{width}}  {line.service:<{service_width}}  {line.duration_ms:9.1f} ms"
        out.append(text if line.error is None else f"{text}  ERROR {line.error}")
    return out


# ---- the span tree (pure) -------------------------------------------------------------------------


def _error(span: dict[str, Any]) -> str | None:
    tags = span.get("tags") or {}
    if "error" in tags:
        return tags["error"] or "error"
    return "error" if tags.get("otel.status_code") == "ERROR" else None


def _service(span: dict[str, Any]) -> str:
    name: str = (span.get("localEndpoint") or {}).get("serviceName") or "?"
    return name.removeprefix(SERVICE_PREFIX)


def span_tree(spans: Sequence[dict[str, Any]]) -> list[SpanLine]:
    """Zipkin v2 spans of one trace as indented lines: roots (spans whose parent is not in the trace)
    first, each followed by its children, all in the order they started."""
    ids = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span.get("parentId")
        children.setdefault(parent if parent in ids else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: (s.get("timestamp", 0), s.get("name", "")))
    lines: list[SpanLine] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            lines.append(SpanLine(depth, _service(span), span.get("name", "?"),
                                  span.get("duration", 0) / 1000, _error(span)))
            walk(span["id"], depth + 1)

    walk(None, 0)
    return lines


# ---- Zipkin's API ---------------------------------------------------------------------------------


def trace_ids_of_fact(client: httpx.Client, fact_id: str) -> list[str]:
    """The traces whose spans carry the fact id (masked, as intake tags it), newest first."""
    params: dict[str, str | int] = {
        "annotationQuery": f"{FACT_ID_ATTRIBUTE}={mask_identifiers(fact_id)}",
        "endTs": int(time.time() * 1000), "lookback": LOOKBACK_MS, "limit": FOUND_MAX,
    }
    response = client.get("/api/v2/traces", params=params)
    response.raise_for_status()
    traces: list[list[dict[str, Any]]] = response.json()
    started = sorted(((min(s.get("timestamp", 0) for s in t), t[0]["traceId"]) for t in traces if t),
                     reverse=True)
    return [trace_id for _, trace_id in started]


# A busy stack exports at most FLEXLEDGER_TRACES_PER_S new traces a second (runtime/trace_sampling.py).
NOT_SAMPLED = ("or it was not sampled: a `traceparent` whose last field is even, e.g. -00 or -02, was not "
               "exported; resend with `traceparent: 00-<trace id>-<span id>-01` to have it traced")


def fetch_trace(client: httpx.Client, trace_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v2/trace/{trace_id}")
    if response.status_code == 404:
        raise TraceNotFound(f"Zipkin has no trace {trace_id} ({NOT_SAMPLED})")
    response.raise_for_status()
    spans: list[dict[str, Any]] = response.json()
    return spans


def resolve(client: httpx.Client, fact_or_trace: str) -> tuple[str, list[str]]:
    """(the trace to show, the other traces of the same fact id: resubmissions)."""
    wanted = fact_or_trace.strip().lower()
    if TRACE_ID.match(wanted):
        return wanted, []
    found = trace_ids_of_fact(client, fact_or_trace.strip())
    if not found:
        raise TraceNotFound(
            f"no trace with {FACT_ID_ATTRIBUTE}={mask_identifiers(fact_or_trace)} in Zipkin (a fact sent in "
            "bulk is in its request's trace: use the bulk response's trace_id, or a decision's; "
            f"{NOT_SAMPLED})")
    return found[0], found[1:]


# ---- the command ----------------------------------------------------------------------------------


def trace_command(
    fact_or_trace: str = typer.Argument(..., metavar="FACT_ID|TRACE_ID",
                                        help="a fact id, or a trace id (32 hex digits)"),
    zipkin_url: str = typer.Option("", "--zipkin", help="Zipkin's base URL [default: the local stack's]"),
    wait_s: float = typer.Option(0.0, "--wait", help="Seconds to keep looking while the spans arrive"),
    as_json: bool = typer.Option(False, "--json", help="Print the trace id and Zipkin's spans as JSON"),
) -> None:
    """Print one fact's trace: service, operation, duration and errors of every span, as a tree. Exit
    status 5 when no trace is found, 3 when Zipkin cannot be reached."""
    base = zipkin_url or zipkin.base_url(Settings.from_env())
    deadline = time.monotonic() + wait_s
    with httpx.Client(base_url=base, timeout=10) as client:
        while True:
            try:
                trace_id, others = resolve(client, fact_or_trace)
                spans = fetch_trace(client, trace_id)
                break
            except TraceNotFound as exc:
                if time.monotonic() >= deadline:
                    fail(str(exc), Exit.NOT_FOUND)
                time.sleep(1.0)
            except httpx.HTTPError as exc:
                fail(f"Zipkin at {base}: {exc} (is the stack up? `flexledger dev up`)", Exit.UNREACHABLE)
    if as_json:
        output.print_json({"trace_id": trace_id, "url": f"{base}/zipkin/traces/{trace_id}", "spans": spans})
        return
    typer.echo(f"trace {trace_id}  {base}/zipkin/traces/{trace_id}")
    for text in render(span_tree(spans)):
        typer.echo(text)
    if others:
        typer.echo(f"the same fact id is also in {len(others)} earlier trace(s): {', '.join(others)}")
