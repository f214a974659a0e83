"""Intake's HTTP API (OpenAPI at /openapi.json, docs at /docs): facts one at a time or in bulk.

Every request but `/health` carries `Authorization: Bearer flk_...` (docs/design/intake-auth.md; the
keys and the endpoint table: services/runtime/access, docs/design/http-auth.md). Bodies are read
as raw bytes through `limits.parse_json_body` / `bulk.parse_bulk`, never as a framework-parsed dict,
so that hostile input gets a 4xx with a reason and never reaches a place where it could fail.

`POST /v1/facts` answers, in this order of checks:
503 starting or busy · 413 body too large · 401 no valid key · 415 not JSON · 408 body too slow ·
429 rate limit (Retry-After) · 400 unreadable body (nothing recorded) · 403 not this key's fact
(nothing recorded) · 400 `at` later than its receipt plus the clock skew (nothing recorded) · then,
with its id in the key's scope, the fact's own outcome: 201 accepted; 200 identical resubmission
(the original result, nothing recorded); 403 a worker not this platform's (nothing recorded); 400
rejected with the reason naming the field (recorded); 409 the id was used before with other content
(recorded as a rejection too, once: the same content again is answered 409, nothing recorded).

`POST /v1/facts/bulk` (application/x-ndjson, or text/csv of monthly_report) answers 200 with one
result per row, or refuses the whole request (401/408/413/415/429/400/503) recording nothing. Rows
are recorded in one transaction, in order.

`POST /v1/facts` is the busiest route, so a well-formed one skips FastAPI's routing and parameter
solving (`_SingleFactRoute`); FastAPI still documents it and answers a malformed book header (422).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, Protocol

from fastapi import FastAPI, Header, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from opentelemetry import trace
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from contracts.facts import FACT_TYPES
from contracts.identifiers import mask_identifiers
from contracts.messages import BOOK_HTTP_HEADER, BOOK_PATTERN, DEFAULT_BOOK, valid_book
from services.intake.adapters.group_commit import Busy
from services.intake.application import Incoming, Result
from services.intake.domain.authorization import UNAUTHENTICATED, authorize
from services.intake.domain.bulk import BULK_MEDIA_TYPES, CSV_COLUMNS, Row, parse_bulk
from services.intake.domain.clock_skew import future_at_problem
from services.intake.domain.fact_ids import scope_of
from services.intake.domain.limits import (
    BadInput,
    BadValue,
    Limits,
    RateDecision,
    TooLarge,
    UnsupportedMediaType,
    check_size,
    media_type,
    parse_json_body,
)
from services.runtime.access.gate import BEARER, CALLER, GUARDED_RESPONSES, AccessGate, Caller, guard
from services.runtime.access.policy import endpoint, refusal
from services.runtime.access.principals import Principal
from services.runtime.redrive import DeadLetterRedrive, add_redrive_route
from services.runtime.service import SERVING
from services.runtime.settings import Settings
from services.runtime.telemetry import (
    BOOK_ATTRIBUTE,
    FACT_ID_ATTRIBUTE,
    ASGIApp,
    Receive,
    Scope,
    Send,
    TracingMiddleware,
    trace_id_hex,
)

log = logging.getLogger(__name__)
FACTS_PATH = "/v1/facts"
BULK_PATH = "/v1/facts/bulk"
JSON_MEDIA_TYPES = ("application/json",)
RecordFact = Callable[[Request, str], Awaitable[JSONResponse]]


class Keys(Protocol):
    """Who is asking, and how much they may submit (adapters/key_ring.py)."""

    async def authenticate(self, authorization: str | None) -> Principal | None: ...

    def take_rate(self, principal: Principal, cost: int) -> RateDecision: ...


class Writer(Protocol):
    """Where submissions are recorded (adapters/group_commit.py); Busy when it is not free in time."""

    async def submit_many(
        self, book: str, items: list[Incoming], *, wait_s: float | None = None
    ) -> list[Result]: ...

    async def submit_one(self, book: str, item: Incoming, *, wait_s: float | None = None) -> Result: ...


@dataclass(frozen=True, slots=True)
class Ports:
    """What the submission routes call."""

    ready: Callable[[], bool]  # False: 503 (starting, or the writer lock is lost)
    limits: Limits
    keys: Keys
    writer: Writer
    last_seq: Callable[[str], int]  # a book's last recorded seq
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # the receipt time


# ---- response models (each status has one; FastAPI's own 422 for a malformed book header) --------


class FactResult(BaseModel):
    """What became of one fact: 201 accepted, 200 replayed (`duplicate`), 400 rejected, 409 id reused."""

    outcome: Literal["accepted", "rejected"]
    fact_id: str | None = Field(description="the fact's id in the ledger (its idempotency key): the id as "
                                            "sent, in the sender's scope for a platform or an agency "
                                            "(`<enterprise or agency>/<id>`); null if it had none")
    seq: int = Field(description="the book's recording sequence number of the (original) submission")
    reason: str | None = Field(None, description="why it was rejected, naming the field")
    duplicate: bool | None = Field(None, description="true: identical resubmission, nothing recorded")
    trace_id: str | None = Field(None, description="this request's trace (32 hex digits; also in the "
                                                   "`traceparent` response header): `flexledger trace ID`")


class Refused(BaseModel):
    """The request was refused as a whole before anything was recorded."""

    outcome: Literal["refused"] = "refused"
    reason: str
    where: str | None = Field(None, description="what was refused: body, header, row, field path…")


class RowResult(BaseModel):
    row: int = Field(description="1-based position among the body's facts (blank lines and a CSV header "
                                 "not counted)")
    line: int = Field(description="1-based line in the body")
    fact_id: str | None
    outcome: Literal["accepted", "duplicate", "rejected", "conflict"]
    status: Literal[200, 201, 400, 403, 409] = Field(description="what POST /v1/facts would have answered")
    seq: int | None = Field(None, description="the book's seq of the (original) recording; null when it "
                                              "was not recorded")
    reason: str | None = None


class BulkResult(BaseModel):
    book: str
    results: list[RowResult]
    accepted: int
    duplicates: int
    rejected: int = Field(description="rows with any other outcome (rejected, conflict, 403)")
    last_seq: int = Field(description="the book's last seq after this request")
    trace_id: str | None = Field(None, description="this request's trace, which every row's fact "
                                                   "continues (also in the `traceparent` response header)")


class Progress(BaseModel):
    book: str
    last_seq: int


def _refused(
    status: int, reason: str, where: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"outcome": "refused", "reason": mask_identifiers(reason)}
    if where is not None:
        body["where"] = where
    return JSONResponse(body, status_code=status, headers=headers)


def _bad(exc: BadInput) -> JSONResponse:
    return _refused(exc.status, exc.reason, exc.where)


def _status(result: Result) -> int:
    if result.conflict:
        return 409  # also an identical resubmission of a conflict: answered again, recorded once
    if result.replayed:
        return 200
    return 201 if result.outcome == "accepted" else 400


def _fact_body(result: Result) -> dict[str, Any]:
    out: dict[str, Any] = {"outcome": result.outcome, "fact_id": result.fact_id, "seq": result.seq}
    if result.reason is not None:
        out["reason"] = result.reason
    if result.replayed:
        out["duplicate"] = True
    if (trace_id := trace_id_hex()) is not None:
        out["trace_id"] = trace_id
    return out


def _tag_span(book: str, fact_id: Any = None) -> None:
    """Name the request's book, and the one fact it carries, on its span: logs written inside it name the
    book, and `flexledger trace FACT_ID` finds the trace by the fact id (Zipkin's tag query). Masked like
    every attribute: a fact id that embeds an identity number is looked up masked too."""
    span = trace.get_current_span()
    span.set_attribute(BOOK_ATTRIBUTE, book)
    if isinstance(fact_id, str):
        span.set_attribute(FACT_ID_ATTRIBUTE, mask_identifiers(fact_id))


def _refusal(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"model": model, "description": description}


_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _refusal(Refused, "no valid API key (missing, malformed, unknown, wrong, retired or revoked)"),
    403: _refusal(Refused, "this key's role may not submit facts (finance, auditor, statistics)"),
    408: _refusal(Refused, "the body did not arrive within the request timeout"),
    413: _refusal(Refused, "the body (or, in bulk, the number of rows) is above the limit"),
    415: _refusal(Refused, "the Content-Type is not one this endpoint reads"),
    429: _refusal(Refused, "this key's rate limit: wait Retry-After seconds"),
    503: _refusal(Refused, "intake is starting, busy or cannot reach its database: retry (Retry-After)"),
}


async def _read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The body, refused (TooLarge) as soon as it passes `max_bytes`, and in `timeout_s` (TimeoutError)."""
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout_s):
        async for chunk in request.stream():
            size += len(chunk)
            check_size(size, max_bytes)
            chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(decision: RateDecision) -> JSONResponse:
    return _refused(429, f"this key's rate limit is reached; retry in {decision.retry_after_header} s",
                    "Authorization", {"Retry-After": decision.retry_after_header})


def _busy(reason: str) -> JSONResponse:
    return _refused(503, reason, None, {"Retry-After": "1"})


def _unauthenticated() -> JSONResponse:
    return _refused(401, UNAUTHENTICATED.reason, "Authorization", {"WWW-Authenticate": "Bearer"})


async def _precheck(
    ports: Ports, request: Request, path: str, max_bytes: int, accepted: tuple[str, ...],
    default_type: str | None,
) -> tuple[Principal, str, bytes] | JSONResponse:
    """Readiness, declared size, key and role, content type and body: the principal, media type and
    bytes."""
    if not ports.ready():
        return _busy("intake is starting")
    declared = request.headers.get("content-length")
    try:
        if declared is not None and declared.isdigit():
            check_size(int(declared), max_bytes)
    except TooLarge as exc:
        return _bad(exc)
    principal = await ports.keys.authenticate(request.headers.get("authorization"))
    if principal is None:
        return _unauthenticated()
    guarded = endpoint("intake", "POST", path)
    assert guarded is not None, path
    if (reason := refusal(guarded, principal)) is not None:
        return _refused(403, reason, "Authorization")
    try:
        kind = media_type(request.headers.get("content-type") or default_type, accepted)
    except UnsupportedMediaType as exc:
        return _bad(exc)
    try:
        body = await _read_body(request, max_bytes, ports.limits.request_timeout_s)
    except TooLarge as exc:
        return _bad(exc)
    except TimeoutError:
        timeout_s = ports.limits.request_timeout_s
        return _refused(408, f"the body did not arrive within {timeout_s:.0f} s", "body")
    return principal, kind, body


def create_http(
    ports: Ports, health: Callable[[], dict[str, Any]], tracer: trace.Tracer, gate: AccessGate,
    redrive: DeadLetterRedrive | None = None,
) -> FastAPI:
    """Intake's HTTP app: `/health`, `POST /v1/facts` (`record_fact`), `POST /v1/facts/bulk`
    (`record_bulk`), a book's progress and the operators' re-drive of a dead letter (`redrive` None
    only to describe it). The submissions check their key themselves (in intake's order of checks);
    `gate` guards the rest."""
    http = FastAPI(
        title="flexledger intake", version="1",
        description="Facts from platforms and agencies into the subsidy ledger (scenarios/FORMAT.md types). "
                    "Authenticate with `Authorization: Bearer flk_...` (keys: `flexledger keys`). "
                    "The fact id is the idempotency key: resending is always safe.",
    )
    bearer = BEARER
    record_fact: RecordFact = partial(record_fact_request, ports)
    _health_route(http, health)
    fact_route = _fact_route(http, bearer, record_fact)
    _bulk_route(http, bearer, partial(record_bulk_request, ports))
    _progress_route(http, ports.last_seq)
    add_redrive_route(http, redrive)  # operators: a dead-lettered agency message taken in after a fix
    http.openapi = partial(_openapi, http)  # type: ignore[method-assign]
    http.add_middleware(_SingleFactRoute, record_fact=record_fact, route=fact_route)
    guard(http, gate, skip=frozenset({("POST", FACTS_PATH), ("POST", BULK_PATH)}))
    http.add_middleware(TracingMiddleware, tracer=tracer)  # outside: it names the span by scope["route"]
    return http


# ---- POST /v1/facts -------------------------------------------------------------------------------


async def record_fact_request(ports: Ports, request: Request, book: str) -> JSONResponse:
    """One fact: checked (readiness, size, key, type, body, rate, authorisation), then recorded in a
    group commit with the single facts arriving with it."""
    limits = ports.limits
    checked = await _precheck(ports, request, FACTS_PATH, limits.max_fact_bytes, JSON_MEDIA_TYPES,
                              "application/json")
    if isinstance(checked, JSONResponse):
        return checked
    principal, _, body = checked
    decision = ports.keys.take_rate(principal, 1)
    if not decision.allowed:
        return _retry_after(decision)
    try:
        raw = parse_json_body(body, limits.max_fact_bytes, limits.max_json_depth,
                              max_abs_number=limits.max_abs_number)
        item = Incoming(raw)
    except BadValue as exc:  # readable, with a hostile value: an invalid fact, recorded as rejected
        item = Incoming(exc.stand_in, str(exc))
    except BadInput as exc:
        return _bad(exc)
    _tag_span(book, item.raw.get("id") if isinstance(item.raw, dict) else None)
    refusal = authorize(principal, item.raw)
    if refusal is not None:
        return _refused(refusal.status, refusal.reason, "fact")
    if (late := future_at_problem(item.raw, ports.clock(), limits.max_clock_skew_s)) is not None:
        return _refused(400, late, "at")
    item = Incoming(item.raw, item.problem, scope_of(principal))
    try:
        result = await ports.writer.submit_one(book, item, wait_s=limits.request_timeout_s)
    except Busy as exc:
        return _busy(str(exc))
    except Exception:
        log.exception("recording a fact failed")
        return _busy("intake could not record the fact (its database?); resending it is safe")
    if result.refused:
        return _refused(403, result.reason or "not this key's fact", "fact")
    return JSONResponse(_fact_body(result), status_code=_status(result))


def _fact_route(http: FastAPI, bearer: HTTPBearer, record_fact: RecordFact) -> APIRoute:
    """Declares `POST /v1/facts` to FastAPI (which documents it and answers a malformed book header);
    `_SingleFactRoute` sends well-formed requests straight to `record_fact`."""

    @http.post(
        FACTS_PATH, status_code=201, response_model=FactResult,
        dependencies=[Security(bearer)],
        responses={
            200: {"model": FactResult, "description": "identical resubmission: the original result"},
            201: {"model": FactResult, "description": "accepted and recorded"},
            400: {"model": FactResult | Refused,
                  "description": "rejected with the reason naming the field (recorded, outcome rejected), "
                                 "or the body is not one readable JSON object, or its `at` is later than "
                                 "its receipt (nothing recorded, refused)"},
            403: {"model": Refused, "description": "this key may not submit this fact (its type, its "
                                                   "enterprise, or a worker not its own); nothing recorded"},
            409: {"model": FactResult, "description": "the id was used before with other content (recorded "
                                                      "once; the same content again is answered the same)"},
            **_REFUSALS,
        },
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Fact"}},
        }}},
    )
    async def submit_fact(
        request: Request, book: str = Header(DEFAULT_BOOK, alias=BOOK_HTTP_HEADER, pattern=BOOK_PATTERN),
    ) -> JSONResponse:
        """Submit one fact (a JSON object of one of the scenarios/FORMAT.md types) to a book."""
        # Reached only when _SingleFactRoute passes the request on (FastAPI answers a bad book with 422).
        return await record_fact(request, book)

    return next(r for r in http.routes if isinstance(r, APIRoute) and r.path == FACTS_PATH)


# ---- POST /v1/facts/bulk --------------------------------------------------------------------------


async def record_bulk_request(ports: Ports, request: Request, book: str) -> JSONResponse:
    """Many facts: the request checked as a whole, each row authorised, the rest recorded in one
    transaction; one answer per row."""
    limits = ports.limits
    checked = await _precheck(ports, request, BULK_PATH, limits.max_bulk_bytes, BULK_MEDIA_TYPES, None)
    if isinstance(checked, JSONResponse):
        return checked
    principal, kind, body = checked
    try:
        rows = parse_bulk(body, kind, limits)
    except BadInput as exc:
        return _bad(exc)
    decision = ports.keys.take_rate(principal, len(rows))
    if not decision.allowed:
        return _retry_after(decision)
    _tag_span(book)
    answers: list[dict[str, Any] | None] = []
    items: list[Incoming] = []
    positions: list[int] = []
    received_at = ports.clock()
    for row in rows:
        answer, item = _row_item(principal, row, received_at, limits.max_clock_skew_s)
        answers.append(answer)
        if item is not None:
            positions.append(len(answers) - 1)
            items.append(item)
    try:
        results = (await ports.writer.submit_many(book, items, wait_s=limits.request_timeout_s)
                   if items else [])
    except Busy as exc:
        return _busy(str(exc))
    except Exception:
        log.exception("recording a bulk request failed")
        return _busy("intake could not record the rows (its database?); resending them is safe")
    for position, result in zip(positions, results, strict=True):
        answers[position] = _row_answer(rows[position], result)
    done = [a for a in answers if a is not None]
    accepted = sum(a["outcome"] == "accepted" for a in done)
    duplicates = sum(a["outcome"] == "duplicate" for a in done)
    return JSONResponse({
        "book": book, "results": done, "accepted": accepted, "duplicates": duplicates,
        "rejected": len(done) - accepted - duplicates, "last_seq": ports.last_seq(book),
        "trace_id": trace_id_hex(),
    })


def _bulk_route(http: FastAPI, bearer: HTTPBearer, record_bulk: RecordFact) -> None:
    @http.post(
        BULK_PATH, response_model=BulkResult,
        dependencies=[Security(bearer)],
        responses={
            200: {"model": BulkResult, "description": "one result per row, in order"},
            400: {"model": Refused, "description": "the body as a whole cannot be read (e.g. a CSV header)"},
            **_REFUSALS,
        },
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/x-ndjson": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/Fact"},
                "description": "JSON Lines: one fact (JSON object) per line; shown as the array of its lines",
            }},
            "text/csv": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/MonthlyReport"},
                "description": "monthly_report only: a header line naming the columns "
                               f"{','.join(CSV_COLUMNS)} (any order), then one report per line; shown "
                               "as the array of its rows",
            }},
        }}},
    )
    async def submit_bulk(
        request: Request, book: str = Header(DEFAULT_BOOK, alias=BOOK_HTTP_HEADER, pattern=BOOK_PATTERN),
    ) -> JSONResponse:
        """Submit many facts: JSON Lines (application/x-ndjson), or CSV (text/csv) of monthly_report.
        At most `intake_max_bulk_rows` rows and `intake_max_bulk_bytes` bytes; the rate limiter
        charges one token per row. Results come per row; rows are recorded in one transaction."""
        return await record_bulk(request, book)


# ---- health, progress, the OpenAPI document -------------------------------------------------------


def _health_route(http: FastAPI, health_report: Callable[[], dict[str, Any]]) -> None:
    @http.get("/health", responses={503: {"description": "starting or down", "model": dict[str, Any]}})
    async def health() -> JSONResponse:
        report = health_report()
        return JSONResponse(report, status_code=200 if report["status"] in SERVING else 503)


def _progress_route(http: FastAPI, last_seq: Callable[[str], int]) -> None:
    @http.get("/v1/books/{book}/progress", response_model=Progress,
              responses={400: {"model": Refused, "description": "not a book name"},
                         401: GUARDED_RESPONSES[401] | {"model": Refused},
                         403: GUARDED_RESPONSES[403] | {"model": Refused}})
    async def progress(book: str, who: Caller = CALLER) -> JSONResponse:
        """The book's last recorded seq (any key: it holds no personal data)."""
        if not valid_book(book):
            return _refused(400, f"book must match {BOOK_PATTERN}", "book")
        return JSONResponse({"book": book, "last_seq": last_seq(book)})


def _openapi(http: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the fact types' schemas that the request bodies refer to."""
    if http.openapi_schema is None:
        schema = get_openapi(title=http.title, version=http.version, description=http.description,
                             routes=http.routes)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_fact_schemas())
        http.openapi_schema = schema
    return http.openapi_schema


class _SingleFactRoute:
    """ASGI middleware: `POST /v1/facts` with a well-formed book header (or none) goes straight to
    `record_fact`, without FastAPI's exception middleware, routing and dependency solving (there is
    nothing to solve but the header); it is the busiest route. Everything else goes on to FastAPI,
    which documents this route too and answers a malformed book header with its 422."""

    def __init__(self, app: ASGIApp, record_fact: RecordFact, route: APIRoute) -> None:
        self.app = app
        self.record_fact = record_fact
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == FACTS_PATH and scope["method"] == "POST":
            request = Request(scope, receive)
            book = request.headers.get(BOOK_HTTP_HEADER, DEFAULT_BOOK)
            if valid_book(book):
                scope["route"] = self.route
                response = await self.record_fact(request, book)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _row_item(
    principal: Principal, row: Row, received_at: datetime, max_skew_s: float,
) -> tuple[dict[str, Any] | None, Incoming | None]:
    """A row's answer when it is refused before recording, else the fact to submit."""

    def answer(status: int, reason: str | None) -> dict[str, Any]:
        return {"row": row.number, "line": row.line, "fact_id": row.fact_id, "outcome": "rejected",
                "status": status, "seq": None, "reason": mask_identifiers(reason) if reason else reason}

    scope = scope_of(principal)
    if row.fact is not None:
        item = Incoming(row.fact, None, scope)
    elif row.stand_in is not None:
        item = Incoming(row.stand_in, row.reason, scope)
    else:
        return answer(400, row.reason), None
    refusal = authorize(principal, item.raw)
    if refusal is not None:
        return answer(refusal.status, refusal.reason), None
    if (late := future_at_problem(item.raw, received_at, max_skew_s)) is not None:
        return answer(400, late), None
    return None, item


def _row_answer(row: Row, result: Result) -> dict[str, Any]:
    if result.refused:
        return {"row": row.number, "line": row.line, "fact_id": result.fact_id, "outcome": "rejected",
                "status": 403, "seq": None, "reason": result.reason}
    if result.conflict:
        outcome, status = "conflict", 409
    elif result.replayed:
        outcome, status = "duplicate", 200
    elif result.outcome == "accepted":
        outcome, status = "accepted", 201
    else:
        outcome, status = "rejected", 400
    return {"row": row.number, "line": row.line, "fact_id": result.fact_id, "outcome": outcome,
            "status": status, "seq": result.seq, "reason": result.reason}


def _fact_schemas() -> dict[str, Any]:
    """JSON Schemas of the fact types (contracts.facts), and `Fact`: one of them, by `type`."""
    models = sorted(FACT_TYPES.items())
    _, top = models_json_schema([(model, "validation") for _, model in models],
                                ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Fact"] = {
        "description": "One fact of scenarios/FORMAT.md; unknown extra fields are ignored.",
        "oneOf": [{"$ref": f"#/components/schemas/{model.__name__}"} for _, model in models],
        "discriminator": {"propertyName": "type", "mapping": {
            kind: f"#/components/schemas/{model.__name__}" for kind, model in models}},
    }
    return schemas


class _DocumentOnly:
    """Keys and a writer that serve nothing: enough to build the app and read its OpenAPI document."""

    async def authenticate(self, authorization: str | None) -> Principal | None:
        return None

    def take_rate(self, principal: Principal, cost: int) -> RateDecision:
        return RateDecision(False, 1.0)

    async def submit_many(
        self, book: str, items: list[Incoming], *, wait_s: float | None = None
    ) -> list[Result]:
        raise Busy("documentation only")

    async def submit_one(self, book: str, item: Incoming, *, wait_s: float | None = None) -> Result:
        raise Busy("documentation only")


def openapi_document() -> dict[str, Any]:
    """Intake's OpenAPI document, as the running service serves it at /openapi.json."""
    nothing = _DocumentOnly()
    ports = Ports(ready=lambda: False, limits=Limits(), keys=nothing, writer=nothing, last_seq=lambda _: 0)
    gate = AccessGate("intake", Settings())  # never opened: refuses every key
    return create_http(ports, lambda: {"status": "starting"}, trace.get_tracer(__name__), gate).openapi()
