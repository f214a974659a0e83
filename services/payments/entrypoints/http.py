"""Payments' HTTP API (OpenAPI at /openapi.json): operator commands and the read side of each book.

Commands (answered from the write side, after the commit):
- `POST /v1/books/{book}/appropriations` {program, fiscal_year, amount_fen, reference?}: the
  appropriation is now that total; 200 with what changed (orders released from the awaiting queue);
  409 when it is below what the budget has already committed or paid.
- `POST /v1/books/{book}/repayments` {beneficiary, amount_fen, reference}: money a beneficiary paid
  back; 409 when it is more than it owes.

Reads (query tables of the projection; they follow the commits within milliseconds):
`GET .../totals` (per programme), `.../balances/{beneficiary}`, `.../trial-balance`, `.../orders`,
`.../entries` (disbursement entries and their settlements), `.../progress` (the projection's position
for the book and the refused messages). `GET .../reconciliation` checks the live book itself.

Every route but `/health` and `/metrics` needs an API key (services/runtime/access,
docs/design/http-auth.md): appropriations and repayments are Finance's (and the operator's); a platform
reads its own balance and orders only; the statistics bureau reads orders and entries pseudonymised;
every read of personal data (balances, orders, entries) is recorded in the access store. A platform's
worker (for its balance) is a worker with an order that is the platform's own (`projection.employs`).

Bounds (docs/design/http-bounds.md): bodies at most 16 KiB (413) arriving within 30 s (408), no control
character in a path (400), strict JSON types and every value in its range (422 naming the field, from
the schema or from the use case's `domain.bounds`); a refusal records nothing.

Identity numbers: a beneficiary in a path is masked in the request's span (`url.path`); refusal
reasons are masked; access logs are off (services.runtime.process).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Query
from fastapi.responses import JSONResponse
from opentelemetry import trace

from contracts.identifiers import mask_identifiers
from contracts.messages import BOOK_PATTERN
from services.payments.adapters import projection
from services.payments.adapters.stores import PaymentsStores
from services.payments.application import PaymentsApplication, RecordOutcome, Step
from services.payments.domain.bounds import (
    BENEFICIARY_PATTERN,
    FIRST_FISCAL_YEAR,
    LAST_FISCAL_YEAR,
    InvalidCommand,
)
from services.payments.entrypoints.http_models import (
    APPROPRIATION_LINKS,
    REPAYMENT_LINKS,
    AppropriationIn,
    AppropriationResult,
    RepaymentIn,
    RepaymentResult,
    command_responses,
    status_of,
)
from services.runtime.access.gate import (
    CALLER,
    GUARDED_RESPONSES,
    UNRECORDED,
    AccessGate,
    Caller,
    guard,
    refused,
)
from services.runtime.http_bounds import BODY_REFUSALS, Refusal, RequestBounds, install_refusal_handlers
from services.runtime.redrive import DeadLetterRedrive, add_redrive_route
from services.runtime.service import SERVING
from services.runtime.telemetry import (
    ASGIApp,
    Receive,
    Send,
    TracingMiddleware,
    current_carrier,
    trace_id_hex,
)

MAX_ROWS_PER_PAGE = 10_000

def _invalid(exc: InvalidCommand) -> JSONResponse:
    """The use case's refusal of a value, in the shape of FastAPI's 422."""
    return JSONResponse({"detail": [{"loc": ["body", exc.field], "msg": exc.reason, "type": "value_error"}]},
                        status_code=422)


class MaskBeneficiaryPath:
    """Inside the tracing middleware: the request span's `url.path` without the beneficiary."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and "/balances/" in path:
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute("url.path", mask_identifiers(path))
                span.update_name(f"{scope.get('method', 'GET')} {mask_identifiers(path)}")
        await self.app(scope, receive, send)


# An operator command: the application's use case, given the request's trace id and W3C carrier.
Command = Callable[[PaymentsApplication, str | None, dict[str, str]], Step]


BOOK_PATH = Path(pattern=BOOK_PATTERN, description="'main' or a sandbox book")


def create_http(
    stores: PaymentsStores, tracer: trace.Tracer, changed: Callable[[], None],
    health_report: Callable[[], dict[str, Any]], gate: AccessGate, redrive: DeadLetterRedrive | None = None,
) -> FastAPI:
    """The API over `stores`; `changed` after a command recorded something (wakes the relays and the
    batching loop); `health_report` is the service's state; `gate` who may call what; `redrive` the
    operators' dead-letter re-drive (None only to describe the API)."""
    http = FastAPI(title="flexledger payments", version="1", responses=BODY_REFUSALS)

    @http.get("/health", responses={503: {"description": "starting or down"}})
    async def health() -> JSONResponse:
        report = health_report()
        return JSONResponse(report, status_code=200 if report["status"] in SERVING else 503)

    http.include_router(_commands(stores, changed), responses=GUARDED_RESPONSES)
    http.include_router(_reads(stores, gate), responses=GUARDED_RESPONSES)
    add_redrive_route(http, redrive)
    install_refusal_handlers(http)
    http.add_middleware(RequestBounds)
    http.add_middleware(MaskBeneficiaryPath)
    guard(http, gate)
    http.add_middleware(TracingMiddleware, tracer=tracer)
    return http


def _commands(stores: PaymentsStores, changed: Callable[[], None]) -> APIRouter:
    """Operator commands, answered from the write side after the commit."""
    router = APIRouter()

    async def run(command: Command) -> JSONResponse:
        """Run an operator command in the request's trace (the event store spans its commit)."""
        trace_id, carrier = trace_id_hex(), current_carrier()
        try:
            result = await asyncio.to_thread(command, stores.app, trace_id, carrier)
        except InvalidCommand as exc:
            return _invalid(exc)
        if result.outcome is RecordOutcome.RECORDED:
            changed()
        outcome = result.outcome.value
        return JSONResponse({"outcome": outcome, **result.detail}, status_code=status_of(outcome))

    @router.post("/v1/books/{book}/appropriations", responses=command_responses(
        AppropriationResult, "below what the budget has already committed or paid; nothing recorded",
        APPROPRIATION_LINKS))
    async def appropriate(
        body: AppropriationIn, book: str = BOOK_PATH, who: Caller = CALLER,
    ) -> JSONResponse:
        """Set the appropriation of a programme for a fiscal year (a total). Orders awaiting that budget
        are released in the order they arrived, as far as it reaches."""
        return await run(lambda app, trace_id, carrier: app.set_appropriation(
            book, body.program, body.fiscal_year, body.amount_fen, reference=body.reference,
            trace_id=trace_id, carrier=carrier,
        ))

    @router.post("/v1/books/{book}/repayments", responses=command_responses(
        RepaymentResult, "more than the beneficiary owes, or a book without payments; nothing recorded",
        REPAYMENT_LINKS))
    async def repay(body: RepaymentIn, book: str = BOOK_PATH, who: Caller = CALLER) -> JSONResponse:
        """Record money a beneficiary paid back (allocated to its oldest claims first)."""
        return await run(lambda app, trace_id, carrier: app.record_repayment(
            book, body.beneficiary, body.amount_fen, body.reference, trace_id=trace_id, carrier=carrier,
        ))

    return router


def _reads(stores: PaymentsStores, gate: AccessGate) -> APIRouter:
    """The read side: the projection's query tables, and the live book's reconciliation."""
    router = APIRouter()

    @router.get("/v1/books/{book}/totals")
    async def totals(
        book: str = BOOK_PATH,
        fiscal_year: int | None = Query(None, ge=FIRST_FISCAL_YEAR, le=LAST_FISCAL_YEAR),
        who: Caller = CALLER,
    ) -> dict[str, Any]:
        """Per programme: appropriated, committed, paid (by bank, by offset), available, recovered,
        receivables outstanding, awaiting budget (amount and orders); all fiscal years unless one is given."""
        rows = await projection.totals(stores.pool, book, fiscal_year)
        accounts = await projection.trial_balance(stores.pool, book)
        return {"book": book, "fiscal_year": fiscal_year, "programmes": rows,
                "trial_balance_fen": accounts["trial_balance_fen"]}

    @router.get("/v1/books/{book}/balances/{beneficiary}", responses={
        **UNRECORDED,
        200: {"description": "the beneficiary's balance"},
        404: {"model": Refusal, "description": "no payments for this beneficiary in this book"}})
    async def balance(
        book: str = BOOK_PATH,
        beneficiary: str = Path(pattern=BENEFICIARY_PATTERN,
                                description="resident identity number or unified social credit code"),
        who: Caller = CALLER,
    ) -> JSONResponse:
        """Where one beneficiary stands: awaiting budget, payable, in transit, paid, receivable,
        recovered, `net_due_fen` (positive: the city owes it), the last bank return, its orders.
        A platform may ask only for its own enterprise and its workers (with its own orders listed)."""
        platform = who.enterprise
        if platform is not None and beneficiary != platform and not await projection.employs(
                stores.pool, book, platform, beneficiary):
            return refused(403, f"a platform key may read only its own balance and its workers' ({platform})")
        found = await projection.balance(stores.pool, book, beneficiary, enterprise=platform)
        if found is None:
            return JSONResponse({"detail": "no payments for this beneficiary in this book"}, status_code=404)
        return await gate.answer(who, book, found, len(found["orders"]))

    @router.get("/v1/books/{book}/trial-balance")
    async def trial_balance(book: str = BOOK_PATH, who: Caller = CALLER) -> dict[str, Any]:
        """The accounts by group; `trial_balance_fen` is 0 in a sound book."""
        return await projection.trial_balance(stores.pool, book)

    @router.get("/v1/books/{book}/orders", responses=UNRECORDED)
    async def orders(
        book: str = BOOK_PATH, limit: int = Query(MAX_ROWS_PER_PAGE, ge=1, le=MAX_ROWS_PER_PAGE),
        who: Caller = CALLER,
    ) -> JSONResponse:
        """Payment orders of a book, in the order payments created them, with their state. A platform
        sees only its own: paid to its enterprise or about it, or decided on its facts or for its workers."""
        found = await projection.orders(stores.pool, book, limit, enterprise=who.enterprise)
        return await gate.answer(who, book, {"book": book, "orders": found}, len(found))

    @router.get("/v1/books/{book}/entries", responses=UNRECORDED)
    async def entries(
        book: str = BOOK_PATH, limit: int = Query(MAX_ROWS_PER_PAGE, ge=1, le=MAX_ROWS_PER_PAGE),
        who: Caller = CALLER,
    ) -> JSONResponse:
        """Disbursement entries (by batch) and what the bank said about each."""
        found = await projection.entries(stores.pool, book, limit)
        return await gate.answer(who, book, {"book": book, "entries": found}, len(found))

    @router.get("/v1/books/{book}/progress")
    async def progress(book: str = BOOK_PATH, who: Caller = CALLER) -> dict[str, Any]:
        """How far the read side is (the book's stream version) and the messages the book refused."""
        found = await projection.book_progress(stores.pool, book)
        found["refusals"] = [
            {**r, "reason": mask_identifiers(r["reason"]), "cause_id": mask_identifiers(r["cause_id"])}
            for r in found["refusals"]
        ]
        return found

    @router.get("/v1/books/{book}/reconciliation")
    async def reconciliation(book: str = BOOK_PATH, who: Caller = CALLER) -> dict[str, Any]:
        """The live book checked against itself: trial balance and `reconcile` (empty `problems`;
        identity numbers in them masked)."""
        return await asyncio.to_thread(stores.app.reconciliation, book)

    return router
