"""Hostile requests to payments' and eligibility's HTTP apps, in process: each is refused with a 4xx that
names the field and the reason, before anything reaches the application or the database (the stand-ins
below fail the test if touched). The same findings against the running services:
tests/integration/test_http_bounds.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
from opentelemetry import trace

from contracts.decisions import MONEY_KINDS, MoneyProgramme
from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario
from services.eligibility.entrypoints.http import create_http as eligibility_http
from services.payments.domain.bounds import InvalidCommand, check_appropriation, check_repayment
from services.payments.entrypoints.http import create_http as payments_http
from services.runtime.access.gate import AccessGate
from services.runtime.access.principals import Principal
from services.runtime.http_bounds import MAX_BODY_BYTES
from services.runtime.settings import Settings

WORKER = "320213197804121019"
NOW = datetime(2026, 12, 3, tzinfo=UTC)
VECTORS = sorted((Path(__file__).parents[2] / "vectors").glob("*.yaml"))


class Untouchable:
    """A store, pool or application that must not be reached."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused request reached {name}")


class Stores:
    app = Untouchable()
    pool = Untouchable()


def _health() -> dict[str, Any]:
    return {"status": "ok"}


class OperatorKey:
    """The key ring of a gate in process: `Bearer operator` is the operator, who may call every
    endpoint, so what refuses these requests is the bounds, not the access check."""

    async def authenticate(self, authorization: str | None) -> Principal | None:
        return Principal("operator", "key-operator") if authorization == "Bearer operator" else None


def _gate(service: Any) -> AccessGate:
    gate = AccessGate(service, Settings())
    gate.keys = OperatorKey()  # type: ignore[assignment]
    return gate


AS_OPERATOR = {"Authorization": "Bearer operator"}


@pytest.fixture
async def payments() -> AsyncIterator[httpx.AsyncClient]:
    app = payments_http(Stores(), trace.get_tracer(__name__), lambda: None, _health,  # type: ignore[arg-type]
                        _gate("payments"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pay",
                                 headers=AS_OPERATOR) as client:
        yield client


@pytest.fixture
async def eligibility() -> AsyncIterator[httpx.AsyncClient]:
    app = eligibility_http(Stores(), _health, trace.get_tracer(__name__), _gate("eligibility"))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://elig",
                                 headers=AS_OPERATOR) as client:
        yield client


def _appropriation(**changes: Any) -> dict[str, Any]:
    return {"program": "social_insurance", "fiscal_year": 2024, "amount_fen": 1_000_000, **changes}


def _named(response: httpx.Response, field: str) -> str:
    """The 422's message for `field` (the body names it)."""
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if e["loc"][-1] == field]
    assert set(error) == {"loc", "msg", "type"}
    return str(error["msg"])


@pytest.mark.parametrize(("change", "field"), [
    ({"amount_fen": "5"}, "amount_fen"),
    ({"amount_fen": 5.0}, "amount_fen"),
    ({"amount_fen": True}, "amount_fen"),
    ({"amount_fen": 10**13 + 1}, "amount_fen"),
    ({"amount_fen": -1}, "amount_fen"),
    ({"fiscal_year": "2024"}, "fiscal_year"),
    ({"fiscal_year": 2020}, "fiscal_year"),
    ({"fiscal_year": 2**63}, "fiscal_year"),
    ({"program": "nonexistent_prog"}, "program"),
    ({"program": "new_employment"}, "program"),  # statistics only: no budget
    ({"reference": "budget\x00doc"}, "reference"),
    ({"reference": "budget \ud800"}, "reference"),
    ({"reference": "x" * 201}, "reference"),
])
async def test_an_appropriation_out_of_bounds_is_a_422_naming_the_field(
    payments: httpx.AsyncClient, change: dict[str, Any], field: str,
) -> None:
    content = json.dumps(_appropriation(**change)).encode()  # ASCII: "\ud800" stays an escape
    response = await payments.post("/v1/books/main/appropriations", content=content,
                                   headers={"Content-Type": "application/json"})
    assert _named(response, field)


async def test_amount_1e999_is_a_clean_422(payments: httpx.AsyncClient) -> None:
    body = b'{"program": "social_insurance", "fiscal_year": 2024, "amount_fen": 1e999}'
    response = await payments.post("/v1/books/main/appropriations", content=body,
                                   headers={"Content-Type": "application/json"})
    assert "integer" in _named(response, "amount_fen")


async def test_an_extra_field_named_by_an_identity_number_is_masked(payments: httpx.AsyncClient) -> None:
    response = await payments.post("/v1/books/main/appropriations", json=_appropriation(**{WORKER: 1}))
    assert response.status_code == 422
    assert WORKER not in response.text


@pytest.mark.parametrize(("change", "field"), [
    ({"beneficiary": "3202131978041210"}, "beneficiary"),
    ({"beneficiary": f"{WORKER[:-1]}\x00"}, "beneficiary"),
    ({"amount_fen": 0}, "amount_fen"),
    ({"amount_fen": "100"}, "amount_fen"),
    ({"reference": ""}, "reference"),
    ({"reference": "bank\nref"}, "reference"),
])
async def test_a_repayment_out_of_bounds_is_a_422_naming_the_field(
    payments: httpx.AsyncClient, change: dict[str, Any], field: str,
) -> None:
    body = {"beneficiary": WORKER, "amount_fen": 100, "reference": "BANK-1", **change}
    assert _named(await payments.post("/v1/books/main/repayments", json=body), field)


async def test_a_body_declared_above_the_cap_is_a_413_unread(payments: httpx.AsyncClient) -> None:
    body = b"{" + b" " * (20 * 1024 * 1024) + b"}"
    response = await payments.post("/v1/books/main/appropriations", content=body,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "body" in response.json()["detail"]


async def test_a_streamed_body_past_the_cap_is_a_413(payments: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 1024

    response = await payments.post("/v1/books/main/appropriations", content=chunks(),
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_a_body_under_the_cap_reaches_the_validation(payments: httpx.AsyncClient) -> None:
    padded = b'{"program": "nonexistent_prog", "fiscal_year": 2024, "amount_fen": 1}'.ljust(MAX_BODY_BYTES)
    response = await payments.post("/v1/books/main/appropriations", content=padded,
                                   headers={"Content-Type": "application/json"})
    assert _named(response, "program")


async def test_a_key_given_twice_is_a_400(payments: httpx.AsyncClient) -> None:
    body = b'{"program": "talent", "fiscal_year": 2024, "amount_fen": 1, "amount_fen": 10}'
    response = await payments.post("/v1/books/main/appropriations", content=body,
                                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 400
    assert response.json() == {"detail": "body: the key 'amount_fen' is given twice"}


@pytest.mark.parametrize("path", [
    "/v1/books/main/balances/%00", "/v1/books/main/balances/a%0Ab", "/v1/books/ma%7Fin/orders",
    "/v1/books/main/balances/%C2%85",
])
async def test_a_control_character_in_a_path_is_a_400(payments: httpx.AsyncClient, path: str) -> None:
    response = await payments.get(path)
    assert response.status_code == 400
    assert response.json() == {"detail": "path: a control character is not allowed"}


@pytest.mark.parametrize("beneficiary", ["x", "91320213ma1xy0001l", "'; DROP TABLE x; --", "9" * 65])
async def test_a_beneficiary_that_is_no_identifier_is_a_422(
    payments: httpx.AsyncClient, beneficiary: str,
) -> None:
    assert _named(await payments.get(f"/v1/books/main/balances/{beneficiary}"), "beneficiary")


@pytest.mark.parametrize(("query", "field"), [
    ("fiscal_year=9223372036854775808", "fiscal_year"), ("limit=9223372036854775808", "limit"),
    ("limit=0", "limit"),
])
async def test_payments_queries_out_of_range_are_a_422(
    payments: httpx.AsyncClient, query: str, field: str,
) -> None:
    path = "/v1/books/main/totals" if field == "fiscal_year" else "/v1/books/main/orders"
    assert _named(await payments.get(f"{path}?{query}"), field)


@pytest.mark.parametrize("after_seq", ["9223372036854775808", "-1", "1e3", "99999999999999999999999999"])
async def test_after_seq_beyond_int64_is_a_422(eligibility: httpx.AsyncClient, after_seq: str) -> None:
    assert _named(await eligibility.get(f"/v1/books/main/decisions?after_seq={after_seq}"), "after_seq")


async def test_eligibility_refuses_control_characters_and_large_bodies(
    eligibility: httpx.AsyncClient,
) -> None:
    assert (await eligibility.get("/v1/books/%00/decisions")).status_code == 400
    large = b" " * (MAX_BODY_BYTES + 1)
    response = await eligibility.request("GET", "/v1/books/main/progress", content=large)
    assert response.status_code == 413


@pytest.mark.parametrize("make", [payments_http, eligibility_http])
def test_every_operation_documents_its_refusals(make: Any) -> None:
    tracer = trace.get_tracer(__name__)
    args = ((Stores(), tracer, lambda: None, _health, _gate("payments")) if make is payments_http
            else (Stores(), _health, tracer, _gate("eligibility")))
    document = make(*args).openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"200", "400", "408", "413"} <= documented, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in documented, (method, path)


def test_the_money_programmes_are_those_of_every_money_decision_of_the_vectors() -> None:
    programmes = {d.program for path in VECTORS for d in Engine().run(load_scenario(path)["facts"])
                  if d.kind in MONEY_KINDS}
    assert programmes <= set(get_args(MoneyProgramme))
    assert len(programmes) >= 5


def test_a_budget_is_set_at_most_for_next_year() -> None:
    check_appropriation("talent", 2027, 10**13, NOW)
    with pytest.raises(InvalidCommand, match="fiscal_year"):
        check_appropriation("talent", 2028, 1, NOW)
    with pytest.raises(InvalidCommand, match="amount_fen"):
        check_appropriation("talent", 2026, 10**13 + 1, NOW)
    with pytest.raises(InvalidCommand, match="beneficiary"):
        check_repayment("nobody", 1, "BANK-1")
