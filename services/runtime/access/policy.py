"""Who may call which HTTP endpoint of which service, and what they see (docs/design/http-auth.md has
the same table; tests/unit/test_access_policy.py checks the two against each other and against the
services' routes).

A role missing from an endpoint's `views` gets 403. The views:
- `all`: the whole book, identity numbers in clear;
- `own`: a platform's own rows only (its enterprise, and the workers it reported; per endpoint in
  docs/design/http-auth.md; the service decides which rows, and which beneficiary in a path, are its own);
- `pseudonymised`: the whole book with every identity number replaced by its keyed pseudonym.
`personal` endpoints answer with data about people: every read of one is recorded in the access
store (`audit.ReadAudit`) before the answer leaves the service.

`/health`, `/metrics` and the OpenAPI document are not in the table: they stay open.
Submissions to intake are further decided fact by fact by intake's own table
(services/intake/domain/authorization.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from services.runtime.access.principals import AGENCIES, ROLES, Principal, Role

Service = Literal["intake", "eligibility", "payments"]
View = Literal["all", "own", "pseudonymised"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    service: Service
    method: str
    path: str  # the route's template, e.g. "/v1/books/{book}/decisions"
    views: Mapping[Role, View]
    personal: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _every(view: View = "all") -> dict[Role, View]:
    return dict.fromkeys(ROLES, view)


_SUBMITTERS: dict[Role, View] = {"platform": "own", **dict.fromkeys(AGENCIES, "all"), "operator": "all"}
_MONEY: dict[Role, View] = {"finance": "all", "operator": "all"}
_BOOKS: dict[Role, View] = {"finance": "all", "auditor": "all", "operator": "all"}
_FIGURES: dict[Role, View] = {**_BOOKS, "statistics": "all"}  # no personal data: totals, accounts
_OPERATOR: dict[Role, View] = {"operator": "all"}
REDRIVE = "/v1/dead-letters/{dead_letter_id}/redrive"  # services/runtime/redrive.py

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("intake", "POST", "/v1/facts", _SUBMITTERS),
    Endpoint("intake", "POST", "/v1/facts/bulk", _SUBMITTERS),
    Endpoint("intake", "GET", "/v1/books/{book}/progress", _every()),
    Endpoint("intake", "POST", REDRIVE, _OPERATOR),
    Endpoint("eligibility", "GET", "/v1/books/{book}/decisions",
             {"platform": "own", "auditor": "all", "operator": "all", "statistics": "pseudonymised"},
             personal=True),
    Endpoint("eligibility", "GET", "/v1/books/{book}/progress", _every()),
    Endpoint("eligibility", "POST", REDRIVE, _OPERATOR),
    Endpoint("payments", "POST", "/v1/books/{book}/appropriations", _MONEY),
    Endpoint("payments", "POST", "/v1/books/{book}/repayments", _MONEY),
    Endpoint("payments", "GET", "/v1/books/{book}/totals", _FIGURES),
    Endpoint("payments", "GET", "/v1/books/{book}/balances/{beneficiary}",
             {"platform": "own", **_BOOKS}, personal=True),
    Endpoint("payments", "GET", "/v1/books/{book}/trial-balance", _FIGURES),
    Endpoint("payments", "GET", "/v1/books/{book}/orders",
             {"platform": "own", **_BOOKS, "statistics": "pseudonymised"}, personal=True),
    Endpoint("payments", "GET", "/v1/books/{book}/entries",
             {**_BOOKS, "statistics": "pseudonymised"}, personal=True),
    Endpoint("payments", "GET", "/v1/books/{book}/progress", _FIGURES),
    Endpoint("payments", "GET", "/v1/books/{book}/reconciliation", _BOOKS),  # identity numbers masked
    Endpoint("payments", "POST", REDRIVE, _OPERATOR),
)

_BY_ROUTE = {(e.service, e.method, e.path): e for e in ENDPOINTS}
assert len(_BY_ROUTE) == len(ENDPOINTS)


def endpoint(service: Service, method: str, path: str) -> Endpoint | None:
    """The table's row for a route (its path template), or None: not a guarded endpoint."""
    return _BY_ROUTE.get((service, method, path))


def refusal(endpoint: Endpoint, principal: Principal) -> str | None:
    """Why `principal` may not call `endpoint` (a 403 reason), or None when it may."""
    view = endpoint.views.get(principal.role)
    if view is None:
        allowed = ", ".join(sorted(endpoint.views))
        return f"a {principal.role} key may not call {endpoint.name}; it is for {allowed}"
    return None
