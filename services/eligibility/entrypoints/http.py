"""Eligibility's HTTP API: a book's decisions and progress (the read side's queries), health.

Every route but `/health` and `/metrics` needs an API key (services/runtime/access,
docs/design/http-auth.md): a platform reads the decisions about itself and the workers it reported, the
auditor and the operator read everything, the statistics bureau reads pseudonymised; every read of
decisions is recorded.

Bounds (docs/design/http-bounds.md): every integer in its range before it reaches PostgreSQL (a seq is
a bigint), no control character in a path (400), bodies capped (413) and timed (408) as in payments;
a refusal names the field (422) and never renders the offending input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace

from contracts.messages import BOOK_PATTERN
from services.eligibility.adapters import projection
from services.eligibility.adapters.store import Store
from services.runtime.access.gate import CALLER, GUARDED_RESPONSES, UNRECORDED, AccessGate, Caller, guard
from services.runtime.http_bounds import BODY_REFUSALS, RequestBounds, install_refusal_handlers
from services.runtime.redrive import DeadLetterRedrive, add_redrive_route
from services.runtime.service import SERVING
from services.runtime.telemetry import TracingMiddleware

MAX_DECISIONS_PER_PAGE = 10_000
MAX_SEQ = 2**63 - 1  # intake's seq is a PostgreSQL bigint
SUBJECT_PATTERN = r"^[0-9A-Z]{18}$"  # an identity number or a credit code: 18 digits or capitals
DECISION_ID_PATTERN = r"^[0-9A-Za-z-]{1,64}$"  # a UUID (services.eligibility.domain.decision.decision_id)
ISO_TIME_PATTERN = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"  # a date, or a date and a time
                    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?$")


def create_http(
    store: Store, service_health: Callable[[], dict[str, Any]], tracer: trace.Tracer, gate: AccessGate,
    redrive: DeadLetterRedrive | None = None,
) -> FastAPI:
    """`redrive` None only to describe the API."""
    http = FastAPI(title="flexledger eligibility", version="1", responses=BODY_REFUSALS)

    @http.get("/health", responses={503: {"description": "starting or down"}})
    async def health() -> JSONResponse:
        report = service_health()
        return JSONResponse(report, status_code=200 if report["status"] in SERVING else 503)

    @http.get("/v1/books/{book}/decisions", responses={**GUARDED_RESPONSES, **UNRECORDED})
    async def decisions(
        book: str = Path(pattern=BOOK_PATTERN),
        after_seq: int = Query(0, ge=0, le=MAX_SEQ, description="only decisions of facts with a higher seq"),
        limit: int = Query(MAX_DECISIONS_PER_PAGE, ge=1, le=MAX_DECISIONS_PER_PAGE),
        subject: str | None = Query(None, pattern=SUBJECT_PATTERN, description=(
            "only the decisions about this worker or enterprise or paid to it (identity number or "
            "unified social credit code)")),
        decision_id: str | None = Query(None, pattern=DECISION_ID_PATTERN, description="only this decision"),
        known_as_of: Annotated[str | None, Query(pattern=ISO_TIME_PATTERN, description=(
            "only the decisions recorded at or before this time (ISO 8601 date or date and time; "
            "without a zone, UTC): what was known then"))] = None,
        who: Caller = CALLER,
    ) -> JSONResponse:
        """Decisions in ledger order (by intake seq), as scenarios/FORMAT.md prints them. A platform
        sees only the decisions about its enterprise and the workers it reported."""
        found = await projection.decisions(store.pool, book, after_seq, limit, enterprise=who.enterprise,
                                           subject=subject, decision_id=decision_id,
                                           known_as_of=_moment(known_as_of))
        body = {"book": book, "decisions": found, "truncated": len(found) >= limit}
        return await gate.answer(who, book, body, len(found))

    @http.get("/v1/books/{book}/progress", responses=GUARDED_RESPONSES)
    async def progress(
        book: str = Path(pattern=BOOK_PATTERN), who: Caller = CALLER,
    ) -> dict[str, Any]:
        """`last_seq`: every fact of the book up to this intake seq is decided and readable."""
        return {"book": book, "last_seq": await projection.progress(store.pool, book)}

    add_redrive_route(http, redrive)  # operators: a dead-lettered fact taken in again after a fix
    install_refusal_handlers(http)
    http.add_middleware(RequestBounds)
    guard(http, gate)  # outside the bounds: a caller without a key is refused before its body is read
    http.add_middleware(TracingMiddleware, tracer=tracer)
    return http


def _moment(text: str | None) -> datetime | None:
    """`known_as_of` as a time; one without a zone is UTC (as `audit history --as-of` reads it). The
    pattern let through only ISO 8601 (not pydantic's Unix seconds: "0.5" is refused); a day the
    calendar lacks (2024-02-30) is a 422 like any other bad parameter."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "known_as_of"),
                                       "msg": f"not a time: {exc}", "input": None}]) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
