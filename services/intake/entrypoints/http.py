"""Intake's HTTP API: submit one fact to a book, read a book's progress, health.

Status codes: 201 accepted; 200 identical resubmission (the original result, nothing recorded);
400 rejected with a reason (recorded: the ledger shows a `rejected` decision); 409 the fact id was
used before with other content (recorded as a rejection too); 413 body too large; 503 starting.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace

from contracts.messages import BOOK_PATTERN, DEFAULT_BOOK, valid_book
from contracts.telemetry import TracingMiddleware
from services.intake.application import Result

MAX_BODY_BYTES = 64 * 1024
BOOK_HEADER = "X-Flexledger-Book"


class IntakePort(Protocol):
    ready: bool

    async def submit(self, book: str, raw: Any) -> Result: ...

    def last_seq(self, book: str) -> int: ...

    def health(self) -> dict[str, Any]: ...


def _status(result: Result) -> int:
    if result.replayed:
        return 200
    if result.outcome == "accepted":
        return 201
    return 409 if result.conflict else 400


def _body(result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {"outcome": result.outcome, "fact_id": result.fact_id, "seq": result.seq}
    if result.reason is not None:
        out["reason"] = result.reason
    if result.replayed:
        out["duplicate"] = True
    return out


def _refused(status: int, reason: str) -> JSONResponse:
    """Refused before intake looked at it: nothing is recorded."""
    return JSONResponse({"outcome": "refused", "reason": reason}, status_code=status)


def create_http(service: IntakePort, tracer: trace.Tracer) -> FastAPI:
    http = FastAPI(title="flexledger intake", version="1")

    @http.get("/health")
    async def health() -> JSONResponse:
        report = service.health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @http.post("/v1/facts", status_code=201)
    async def submit_fact(
        request: Request, book: str = Header(DEFAULT_BOOK, alias=BOOK_HEADER, pattern=BOOK_PATTERN),
    ) -> JSONResponse:
        """Submit one fact (a JSON object, scenarios/FORMAT.md) to a book."""
        if not service.ready:
            return _refused(503, "intake is starting")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refused(413, f"a fact is at most {MAX_BODY_BYTES} bytes")
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return _refused(400, "the body is not valid JSON (UTF-8)")
        result = await service.submit(book, raw)
        return JSONResponse(_body(result), status_code=_status(result))

    @http.get("/v1/books/{book}/progress")
    async def progress(book: str) -> JSONResponse:
        if not valid_book(book):
            return _refused(400, f"book must match {BOOK_PATTERN}")
        return JSONResponse({"book": book, "last_seq": service.last_seq(book)})

    http.add_middleware(TracingMiddleware, tracer=tracer)
    return http
