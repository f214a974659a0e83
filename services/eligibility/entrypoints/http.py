"""Eligibility's HTTP API: a book's decisions and progress (the read side's queries), health.

Bounds (docs/design/http-bounds.md): every integer in its range before it reaches PostgreSQL (a seq is
a bigint), no control character in a path (400), bodies capped (413) and timed (408) as in payments;
a refusal names the field (422) and never renders the offending input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from opentelemetry import trace

from contracts.messages import BOOK_PATTERN
from services.eligibility.adapters import projection
from services.eligibility.adapters.store import Store
from services.runtime.http_bounds import BODY_REFUSALS, RequestBounds, install_refusal_handlers
from services.runtime.service import SERVING
from services.runtime.telemetry import TracingMiddleware

MAX_DECISIONS_PER_PAGE = 10_000
MAX_SEQ = 2**63 - 1  # intake's seq is a PostgreSQL bigint


def create_http(
    store: Store, service_health: Callable[[], dict[str, Any]], tracer: trace.Tracer
) -> FastAPI:
    http = FastAPI(title="flexledger eligibility", version="1", responses=BODY_REFUSALS)

    @http.get("/health", responses={503: {"description": "starting or down"}})
    async def health() -> JSONResponse:
        report = service_health()
        return JSONResponse(report, status_code=200 if report["status"] in SERVING else 503)

    @http.get("/v1/books/{book}/decisions")
    async def decisions(
        book: str = Path(pattern=BOOK_PATTERN),
        after_seq: int = Query(0, ge=0, le=MAX_SEQ, description="only decisions of facts with a higher seq"),
        limit: int = Query(MAX_DECISIONS_PER_PAGE, ge=1, le=MAX_DECISIONS_PER_PAGE),
    ) -> dict[str, Any]:
        """Decisions in ledger order (by intake seq), as scenarios/FORMAT.md prints them."""
        found = await projection.decisions(store.pool, book, after_seq, limit)
        return {"book": book, "decisions": found, "truncated": len(found) >= limit}

    @http.get("/v1/books/{book}/progress")
    async def progress(book: str = Path(pattern=BOOK_PATTERN)) -> dict[str, Any]:
        """`last_seq`: every fact of the book up to this intake seq is decided and readable."""
        return {"book": book, "last_seq": await projection.progress(store.pool, book)}

    install_refusal_handlers(http)
    http.add_middleware(RequestBounds)
    http.add_middleware(TracingMiddleware, tracer=tracer)
    return http
