"""The access module as a service's HTTP API uses it: one `AccessGate` per service, built in its
bootstrap, opened at start (the access store, the key ring), followed in the background.

- `RequireAccess` (ASGI middleware) answers 401 (no valid key, with `WWW-Authenticate: Bearer`) and
  403 (a role the policy refuses) for every endpoint of the policy table, before the request
  reaches FastAPI: before its body is read or parsed, and before any store is touched. `/health`,
  `/metrics` and the OpenAPI document are not in the table. Which rows are a platform's own (and, for
  payments' balances, which beneficiaries) the service decides.
- `gate.caller` is the FastAPI dependency the handlers take their `Caller` from; it also declares
  the `HTTPBearer` security scheme in the OpenAPI document of every guarded route.
- `gate.answer` records a read of personal data (`audit.ReadAudit`) and pseudonymises it for the
  statistics view before it leaves; when the read cannot be recorded the data is not sent (503).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from pydantic import BaseModel, Field
from starlette.routing import compile_path

from services.runtime.access.audit import ReadAudit, read_audit_key
from services.runtime.access.key_ring import KeyRingFollower
from services.runtime.access.policy import ENDPOINTS, Endpoint, Service, View, refusal
from services.runtime.access.principals import Principal
from services.runtime.access.pseudonyms import pseudonymised
from services.runtime.access.store import AccessApplication
from services.runtime.keys import statistics_key
from services.runtime.settings import Settings
from services.runtime.telemetry import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)
CALLER_SCOPE_KEY = "flexledger.caller"
UNAUTHENTICATED_REASON = "a valid API key is required: send 'Authorization: Bearer flk_...'"
BEARER = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="flk_<key id>_<secret>, issued by `flexledger keys issue`")


class AccessRefused(BaseModel):
    """The request was refused before anything was read: no valid key (401) or not this key's (403)."""

    outcome: Literal["refused"] = "refused"
    reason: str
    where: str | None = Field(None, description="what was refused: Authorization")


# OpenAPI: what every guarded route may answer besides its own statuses.
GUARDED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": AccessRefused,
          "description": "no valid API key (missing, malformed, unknown, wrong, retired or revoked)"},
    403: {"model": AccessRefused,
          "description": "this key's role may not call this endpoint, or not for this path"},
}
# Routes whose reads are recorded also answer 503 when the record cannot be written.
UNRECORDED: dict[int | str, dict[str, Any]] = {
    503: {"model": AccessRefused, "description": "the read could not be recorded in the access audit: retry"},
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who called a guarded endpoint, and what the policy lets them see there."""

    principal: Principal
    endpoint: Endpoint
    view: View

    @property
    def enterprise(self) -> str | None:
        """The platform's enterprise when the view is its own rows only, else None (everything)."""
        return self.principal.enterprise if self.view == "own" else None


def refused(status: int, reason: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"outcome": "refused", "reason": reason, "where": "Authorization"},
                        status_code=status, headers=headers)


class AccessGate:
    """A service's side of the access module: the key ring it follows, the read audit it writes, and
    the decisions `RequireAccess` and the handlers ask of it."""

    def __init__(self, service: Service, settings: Settings,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self.service: Service = service
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.app: AccessApplication | None = None
        self.keys: KeyRingFollower | None = None
        self.audit: ReadAudit | None = None
        self.statistics_key = b""  # read at `open`: building a gate touches no file

    # ---- lifecycle (registered on the service's runtime) ----------------------------------------

    async def open(self) -> None:
        self.statistics_key = statistics_key(self.settings)
        self.app = await asyncio.to_thread(AccessApplication, self.settings, self.tracer_provider)
        self.keys = KeyRingFollower(self.app, self.settings)
        self.audit = ReadAudit(self.app, read_audit_key(self.settings))
        await self.keys.open()

    async def follow(self) -> None:
        assert self.keys is not None, "open the gate first"
        await self.keys.follow()

    def close(self) -> None:
        if self.app is not None:
            self.app.close()

    def count(self) -> int:
        return self.keys.count() if self.keys is not None else 0

    # ---- requests ---------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an `Authorization` header (None: 401). Before `open`, nobody."""
        return await self.keys.authenticate(authorization) if self.keys is not None else None

    async def check(self, scope: Scope, found: Endpoint) -> Caller | JSONResponse:
        """The caller of `found`, or the 401/403 answer; decided from the headers and path alone."""
        principal = await self.authenticate(_header(scope, b"authorization"))
        if principal is None:
            return refused(401, UNAUTHENTICATED_REASON)
        reason = refusal(found, principal)
        if reason is not None:
            return refused(403, reason)
        view = found.views[principal.role]
        return Caller(principal, found, view)

    async def answer(self, caller: Caller, book: str, body: dict[str, Any], rows: int) -> JSONResponse:
        """`body` as the caller may see it; a read of personal data recorded first."""
        if caller.endpoint.personal:
            try:
                assert self.audit is not None
                await self.audit.record(caller.principal, caller.endpoint, caller.view, book, body, rows)
            except Exception:
                log.exception("recording a read failed; the data is not sent")
                reason = "the read could not be recorded in the access audit; retry"
                return JSONResponse({"outcome": "refused", "reason": reason, "where": "access audit"},
                                    status_code=503, headers={"Retry-After": "1"})
        if caller.view == "pseudonymised":
            body = pseudonymised(body, self.statistics_key)
        return JSONResponse(body)


_BEARER_SECURITY = Security(BEARER)


async def caller(request: Request, _: HTTPAuthorizationCredentials | None = _BEARER_SECURITY) -> Caller:
    """FastAPI dependency: the `Caller` that `RequireAccess` let through (and the route's security
    declaration in OpenAPI)."""
    found = request.scope.get(CALLER_SCOPE_KEY)
    assert isinstance(found, Caller), "a guarded route without RequireAccess in front of it"
    return found


CALLER = Depends(caller)  # a handler's `who: Caller = CALLER`


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class RequireAccess:
    """ASGI middleware: the policy's endpoints of this service pass only with a key that may call them.
    A request is matched against the table's path templates (as Starlette compiles them), not against
    FastAPI's routes. `skip`: routes whose handler checks the key itself (intake's submissions, which
    keep intake's own order of checks), as `(method, path template)`."""

    def __init__(
        self, app: ASGIApp, gate: AccessGate, skip: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.app = app
        self.gate = gate
        self.endpoints = [(e, compile_path(e.path)[0]) for e in ENDPOINTS
                          if e.service == gate.service and (e.method, e.path) not in skip]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self._endpoint(scope)
            if found is not None:
                checked = await self.gate.check(scope, found)
                if isinstance(checked, JSONResponse):
                    await checked(scope, receive, send)
                    return
                scope[CALLER_SCOPE_KEY] = checked
        await self.app(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        for found, pattern in self.endpoints:
            if found.method == scope["method"] and pattern.match(scope["path"]):
                return found
        return None


def guard(http: FastAPI, gate: AccessGate, skip: frozenset[tuple[str, str]] = frozenset()) -> None:
    """Put `RequireAccess` in front of `http` (call before the tracing middleware is added, so that
    refusals are traced too)."""
    http.add_middleware(RequireAccess, gate=gate, skip=skip)
