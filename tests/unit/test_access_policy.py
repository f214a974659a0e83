"""The HTTP authorisation table (docs/design/http-auth.md) against the code: the document's table is
`policy.ENDPOINTS`, and `ENDPOINTS` are exactly the routes the three services serve (besides
`/health`). The gate in process: 401 and 403 answered before a handler (or a store) is reached."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace

from services.eligibility.entrypoints.http import create_http as eligibility_http
from services.intake.entrypoints.http import openapi_document as intake_document
from services.payments.entrypoints.http import create_http as payments_http
from services.runtime.access.gate import AccessGate
from services.runtime.access.policy import ENDPOINTS, endpoint, refusal
from services.runtime.access.principals import ROLES, Principal
from services.runtime.access.pseudonyms import identity_numbers, pseudonym, pseudonymised
from services.runtime.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "design" / "http-auth.md"
E1, W1 = "91320213MA1XY0001L", "320213197804121019"
OPEN = {"/health", "/metrics"}  # open on the service port (issue 13)


class NoStore:
    """A store that fails when touched: a refused request must never reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was touched ({name}) by a request that should have been refused")


class Keys:
    """Every `Bearer <role>` is a key of that role (a platform's is E1's)."""

    async def authenticate(self, authorization: str | None) -> Principal | None:
        role = (authorization or "").removeprefix("Bearer ")
        if role not in ROLES:
            return None
        return Principal(role, f"key-{role}", E1 if role == "platform" else None)  # type: ignore[arg-type]


def _gate(service: Any) -> AccessGate:
    gate = AccessGate(service, Settings())
    gate.keys = Keys()  # type: ignore[assignment]
    return gate


def _apps() -> dict[str, Any]:
    tracer = trace.get_tracer(__name__)
    return {
        "eligibility": eligibility_http(NoStore(), lambda: {"status": "ok"}, tracer, _gate("eligibility")),
        "payments": payments_http(NoStore(), tracer, lambda: None, lambda: {"status": "ok"},  # type: ignore[arg-type]
                                  _gate("payments")),
    }


def _documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, operations in document["paths"].items() if path not in OPEN
            for method in operations}


def test_the_table_names_exactly_the_routes_each_service_serves() -> None:
    served = {"intake": _documented_routes(intake_document())}
    served |= {name: _documented_routes(app.openapi()) for name, app in _apps().items()}
    for service, routes in served.items():
        in_table = {(e.method, e.path) for e in ENDPOINTS if e.service == service}
        assert routes == in_table, (service, routes ^ in_table)


def _doc_table() -> dict[tuple[str, str, str], tuple[dict[str, str], bool]]:
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    header_at = next(i for i, line in enumerate(lines) if line.startswith("| service | endpoint |"))
    header = [cell.strip() for cell in lines[header_at].strip("|").split("|")]
    rows: dict[tuple[str, str, str], tuple[dict[str, str], bool]] = {}
    for line in lines[header_at + 1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(header) or cells[0] not in ("intake", "eligibility", "payments"):
            break
        method, path = cells[1].strip("`").split(" ", 1)
        views = {role: cells[header.index(role)] for role in ROLES if cells[header.index(role)]}
        rows[(cells[0], method, path)] = (views, cells[-1] == "yes")
    assert header[2:-1] == list(ROLES), header
    return rows


def test_the_document_holds_the_same_table_as_the_code() -> None:
    documented = _doc_table()
    in_code = {(e.service, e.method, e.path): (dict(e.views), e.personal) for e in ENDPOINTS}
    assert documented == in_code


def test_refusals_by_role() -> None:
    balances = endpoint("payments", "GET", "/v1/books/{book}/balances/{beneficiary}")
    appropriations = endpoint("payments", "POST", "/v1/books/{book}/appropriations")
    assert balances is not None and appropriations is not None
    platform = Principal("platform", "k", E1)
    # Whose balance a platform may read (its own, its workers') payments decides from its orders:
    # tests/integration/test_http_access.py.
    assert refusal(balances, platform) is None
    assert refusal(balances, Principal("auditor", "k")) is None
    assert refusal(balances, Principal("statistics", "k")) is not None
    assert refusal(appropriations, platform) is not None
    assert refusal(appropriations, Principal("finance", "k")) is None
    for e in ENDPOINTS:  # the bootstrap operator key works everywhere
        assert refusal(e, Principal("operator", "k")) is None, e.name


@pytest.mark.parametrize("service,method,path,role,status", [
    ("eligibility", "GET", "/v1/books/main/decisions", None, 401),
    ("eligibility", "GET", "/v1/books/main/decisions?after_seq=-1", "nobody", 401),
    ("eligibility", "GET", "/v1/books/main/decisions", "finance", 403),
    ("eligibility", "GET", "/v1/books/main/decisions", "hr_bureau", 403),
    ("payments", "POST", "/v1/books/main/appropriations", None, 401),
    ("payments", "POST", "/v1/books/main/appropriations", "platform", 403),
    ("payments", "POST", "/v1/books/main/repayments", "auditor", 403),
    ("payments", "GET", f"/v1/books/main/balances/{W1}", "statistics", 403),
    ("payments", "GET", "/v1/books/main/entries", "platform", 403),
])
async def test_the_gate_refuses_before_reaching_a_handler(
    service: str, method: str, path: str, role: str | None, status: int,
) -> None:
    app = _apps()[service]
    headers = {"Authorization": f"Bearer {role}"} if role else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.request(method, path, headers=headers, content=b"{not json" * 1000)
    assert response.status_code == status, response.text
    assert response.json()["outcome"] == "refused"
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_pseudonymised_answers_keep_enterprises_and_hide_identity_numbers() -> None:
    key = b"k" * 32
    answer = {"decisions": [{"beneficiary": E1, "subject": W1, "reason": f"worker {W1} is beyond",
                             W1: [W1]}]}
    shown = pseudonymised(answer, key)
    assert identity_numbers(answer) == {W1} and identity_numbers(shown) == set()
    assert shown["decisions"][0]["beneficiary"] == E1
    assert shown["decisions"][0]["subject"] == pseudonym(key, W1)
    assert re.fullmatch(r"worker [0-9a-f]{64} is beyond", shown["decisions"][0]["reason"])
