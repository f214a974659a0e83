"""`POST /v1/facts` in process (no server, no database): a well-formed request is answered by the
short route (`_SingleFactRoute`) exactly as FastAPI's route would, a malformed book header still gets
FastAPI's 422, and either way there is one SERVER span named by the route, child of the caller's
traceparent."""

from __future__ import annotations

import json

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from stand_in_intake import W1, monthly_report

from services.intake.application import Incoming, Result
from services.intake.domain.limits import Limits, RateDecision
from services.intake.entrypoints.http import Ports, create_http
from services.runtime.access.gate import AccessGate
from services.runtime.access.principals import Principal
from services.runtime.settings import Settings

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


class Port:
    """Keys and writer: every key is the operator's; every fact is accepted as seq 7 (and remembered)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, Incoming]] = []

    async def authenticate(self, authorization: str | None) -> Principal | None:
        return Principal("operator", "k1") if authorization == "Bearer good" else None

    def take_rate(self, principal: Principal, cost: int) -> RateDecision:
        return RateDecision(True, 0.0)

    async def submit_many(
        self, book: str, items: list[Incoming], *, wait_s: float | None = None
    ) -> list[Result]:
        raise NotImplementedError

    async def submit_one(self, book: str, item: Incoming, *, wait_s: float | None = None) -> Result:
        self.submitted.append((book, item))
        return Result("accepted", item.raw.get("id"), 7)



async def _post(body: bytes, **headers: str) -> tuple[httpx.Response, Port, InMemorySpanExporter]:
    port, spans = Port(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    ports = Ports(ready=lambda: True, limits=Limits(), keys=port, writer=port, last_seq=lambda _: 0)
    gate = AccessGate("intake", Settings())  # not opened: the submissions check their keys themselves
    app = create_http(ports, lambda: {"status": "ok"}, provider.get_tracer("test"), gate)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as client:
        response = await client.post("/v1/facts", content=body, headers=headers)
    return response, port, spans


async def test_accepted_in_its_book_with_one_server_span() -> None:
    fact = monthly_report("r1", worker=W1)
    response, port, spans = await _post(json.dumps(fact).encode(), authorization="Bearer good",
                                        **{"X-Flexledger-Book": "sandbox-1", "traceparent": TRACEPARENT})
    assert response.status_code == 201
    # The caller's trace, continued: in the body's field and the response's own `traceparent`.
    assert response.json() == {"outcome": "accepted", "fact_id": "r1", "seq": 7, "trace_id": TRACE_ID}
    assert [(book, item.raw) for book, item in port.submitted] == [("sandbox-1", fact)]
    (span,) = spans.get_finished_spans()
    assert span.kind == SpanKind.SERVER and span.name == "POST /v1/facts"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert response.headers["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/facts"
    assert span.attributes["http.response.status_code"] == 201
    # What `flexledger trace r1` finds the trace by, and the book its log lines name.
    assert span.attributes["flexledger.fact_id"] == "r1" and span.attributes["flexledger.book"] == "sandbox-1"


async def test_default_book_and_refusals_name_the_field() -> None:
    response, port, _ = await _post(json.dumps(monthly_report("r1")).encode(), authorization="Bearer good")
    assert response.status_code == 201 and port.submitted[0][0] == "main"
    response, port, _ = await _post(b"{}", authorization="Bearer bad")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["where"] == "Authorization" and not port.submitted
    response, _, _ = await _post(b"{}", authorization="Bearer good", **{"content-type": "text/plain"})
    assert response.status_code == 415 and response.json()["outcome"] == "refused"


async def test_malformed_book_header_gets_fastapis_422() -> None:
    response, port, spans = await _post(b"{}", authorization="Bearer good",
                                        **{"X-Flexledger-Book": "Bad Book"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["header", "X-Flexledger-Book"] and error["type"] == "string_pattern_mismatch"
    assert not port.submitted
    (span,) = spans.get_finished_spans()
    assert span.name == "POST /v1/facts"
