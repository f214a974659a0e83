"""Payments' HTTP API: a book's payment orders (read side), health."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse
from opentelemetry import trace

from contracts.messages import BOOK_PATTERN
from contracts.telemetry import TracingMiddleware

MAX_ORDERS_PER_PAGE = 10_000


class PaymentsPort(Protocol):
    async def orders(self, book: str, limit: int) -> list[dict[str, Any]]: ...

    def health(self) -> dict[str, Any]: ...


def create_http(service: PaymentsPort, tracer: trace.Tracer) -> FastAPI:
    http = FastAPI(title="flexledger payments", version="1")

    @http.get("/health")
    async def health() -> JSONResponse:
        report = service.health()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    @http.get("/v1/books/{book}/orders")
    async def orders(
        book: str = Path(pattern=BOOK_PATTERN),
        limit: int = Query(MAX_ORDERS_PER_PAGE, ge=1, le=MAX_ORDERS_PER_PAGE),
    ) -> dict[str, Any]:
        """Payment orders and clawbacks of a book, in the order payments recorded them."""
        return {"book": book, "orders": await service.orders(book, limit)}

    http.add_middleware(TracingMiddleware, tracer=tracer)
    return http
