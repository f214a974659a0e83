"""Authentication and authorisation on the HTTP APIs of eligibility and payments (and intake's progress),
against the three services running as processes (docs/design/http-auth.md): every guarded endpoint
answers 401 to no key, a malformed, unknown, wrong or revoked key, and 403 to a role the policy table
refuses; Finance appropriates and a platform cannot; a platform sees its own rows only; the
statistics bureau sees no identity number in clear; every read of personal data is recorded."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from intake_support import eventually, issue_key, operator_token
from typer.testing import CliRunner

from contracts.identifiers import identifiers_in
from contracts.messages import BOOK_HTTP_HEADER
from flexledger.scenario_file import load_scenario
from services.runtime.access.audit import read_audit_key
from services.runtime.access.credentials import revoke_key
from services.runtime.access.policy import ENDPOINTS, Endpoint
from services.runtime.access.principals import ROLES
from services.runtime.access.pseudonyms import pseudonym
from services.runtime.access.store import AccessApplication
from services.runtime.keys import statistics_key
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
E1, W1 = "91320213MA1XY0001L", "320213197804121019"  # vector 01's platform and its worker
E2, W2 = "91320211MA1XY0003X", "320205199907043032"  # another platform and its worker
AT = "2021-07-05T10:00:00+08:00"


@dataclass
class World:
    """A book with two platforms' facts, decided and turned into orders, and a key for every role."""

    settings: Settings
    book: str
    tokens: dict[str, str]  # role (platform: "platform" is E1's) -> key
    other_platform: str  # E2's key


def _url(settings: Settings, service: str, path: str) -> str:
    port = {"intake": settings.intake_port, "eligibility": settings.eligibility_port,
            "payments": settings.payments_port}[service]
    return f"http://127.0.0.1:{port}{path}"


def _other_platforms_facts() -> list[dict[str, Any]]:
    """E2 registers, reports its worker W2 (accepted), and reports an unregistered worker (rejected);
    W2, a graduate, pays a contribution: a social insurance grant paid to E2's worker, on a fact that
    names no enterprise."""
    return [
        {"id": "e2-1", "type": "enterprise_registered", "at": "2021-06-01T09:00:00+08:00", "enterprise": E2,
         "name": "蠡湖出行"},
        {"id": "e2-2", "type": "worker_registered", "at": "2021-06-01T09:20:00+08:00", "worker": W2,
         "name": "测试丙", "residence": "320205", "residence_since": "2021-01-01"},
        {"id": "e2-3", "type": "monthly_report", "at": AT, "enterprise": E2, "worker": W2, "month": "2021-06",
         "income_fen": 180000, "hours": 90, "district": "320211"},
        {"id": "e2-4", "type": "monthly_report", "at": AT, "enterprise": E2, "worker": "320211199001011237",
         "month": "2021-06", "income_fen": 180000, "hours": 90, "district": "320211"},
        {"id": "e2-5", "type": "category_declared", "at": "2021-06-01T09:30:00+08:00", "worker": W2,
         "category": "graduate_unemployed", "since": "2021-06-01", "graduated": "2019-07-15"},
        {"id": "e2-6", "type": "contribution_paid", "at": "2021-07-08T10:00:00+08:00", "worker": W2,
         "month": "2021-06", "amount_fen": 100000},
    ]


@pytest.fixture(scope="module")
async def world(services: Settings) -> AsyncIterator[World]:
    book = f"test-access-{uuid.uuid4().hex[:12]}"
    operator = {"Authorization": f"Bearer {operator_token(services)}"}
    facts = load_scenario(VECTOR)["facts"] + _other_platforms_facts()
    async with httpx.AsyncClient(timeout=30, headers=operator) as client:
        for fact in facts:
            response = await client.post(_url(services, "intake", "/v1/facts"), json=fact,
                                         headers={BOOK_HTTP_HEADER: book})
            assert response.status_code in (201, 400), response.text
        last = (await client.get(_url(services, "intake", f"/v1/books/{book}/progress"))).json()["last_seq"]

        async def decided() -> bool:
            progress = await client.get(_url(services, "eligibility", f"/v1/books/{book}/progress"))
            return bool(progress.json()["last_seq"] >= last)

        async def ordered() -> bool:  # E1's employment service grant, W2's social insurance grant
            orders = await client.get(_url(services, "payments", f"/v1/books/{book}/orders"))
            return len(orders.json()["orders"]) == 2

        await eventually("eligibility to decide the book", decided)
        await eventually("payments to create the grants' orders", ordered)
    tokens = {role: issue_key(services, role, E1 if role == "platform" else None)[1] for role in ROLES}
    yield World(services, book, tokens, issue_key(services, "platform", E2)[1])


def _path(endpoint: Endpoint, book: str, beneficiary: str = E1) -> str:
    return endpoint.path.replace("{book}", book).replace("{beneficiary}", beneficiary)


async def _call(world: World, endpoint: Endpoint, token: str | None, beneficiary: str = E1) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = _url(world.settings, endpoint.service, _path(endpoint, world.book, beneficiary))
    async with httpx.AsyncClient(timeout=30) as client:
        if endpoint.method == "GET":
            return await client.get(url, headers=headers)
        body: Any = {"beneficiary": E1, "amount_fen": 1, "reference": "test-refused"}
        if endpoint.path.endswith("appropriations"):
            body = {"program": "employment_service", "fiscal_year": 2022, "amount_fen": 0}
        elif endpoint.service == "intake":
            body = {"id": "refused", "type": "monthly_report"}
        return await client.post(url, json=body, headers=headers)


GUARDED = list(ENDPOINTS)


async def test_every_endpoint_refuses_missing_malformed_unknown_wrong_and_revoked_keys_with_401(
    world: World,
) -> None:
    revoked_id, revoked = issue_key(world.settings, "auditor")
    app = AccessApplication(world.settings)
    try:
        app.change_keys(lambda ring: revoke_key(ring, revoked_id, at=datetime.now(UTC), reason="test"))
    finally:
        app.close()
    key_id = world.tokens["auditor"].split("_")[1]
    wrong_secret = f"flk_{key_id}_{'A' * 43}"
    unknown = f"flk_{'0' * 16}_{'A' * 43}"
    bad = (None, "garbage", "flk_short", unknown, wrong_secret, world.tokens["auditor"] + "x")
    for endpoint in GUARDED:
        for token in bad:
            response = await _call(world, endpoint, token)
            assert response.status_code == 401, (endpoint.name, token, response.text)
            assert response.headers["www-authenticate"] == "Bearer"

        async def refused(endpoint: Endpoint = endpoint) -> bool:
            return (await _call(world, endpoint, revoked)).status_code == 401

        await eventually(f"{endpoint.name} to refuse the revoked key", refused, timeout_s=10)


async def test_every_role_the_policy_refuses_gets_403(world: World) -> None:
    for endpoint in GUARDED:
        for role in ROLES:
            if role in endpoint.views:
                continue
            response = await _call(world, endpoint, world.tokens[role])
            assert response.status_code == 403, (endpoint.name, role, response.text)
            assert response.json()["outcome"] == "refused"


async def test_finance_appropriates_and_a_platform_or_nobody_cannot(world: World) -> None:
    """The finding: an appropriation of 10^15 fen was recorded with no key, a garbage key and a
    platform's key."""
    url = _url(world.settings, "payments", f"/v1/books/{world.book}/appropriations")
    huge = {"program": "employment_service", "fiscal_year": 2022, "amount_fen": 10**15}
    async with httpx.AsyncClient(timeout=30) as client:
        before = (await client.get(_url(world.settings, "payments", f"/v1/books/{world.book}/totals"),
                                   headers={"Authorization": f"Bearer {world.tokens['finance']}"})).json()
        for token, status in ((None, 401), ("garbage", 401), (world.tokens["platform"], 403),
                              (world.tokens["auditor"], 403), (world.tokens["statistics"], 403)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            assert (await client.post(url, json=huge, headers=headers)).status_code == status
        after = (await client.get(_url(world.settings, "payments", f"/v1/books/{world.book}/totals"),
                                  headers={"Authorization": f"Bearer {world.tokens['finance']}"})).json()
        assert after == before
        finance = {"Authorization": f"Bearer {world.tokens['finance']}"}
        fen = 50_000_000
        body = {"program": "employment_service", "fiscal_year": 2022, "amount_fen": fen}
        response = await client.post(url, json=body, headers=finance)
        assert response.status_code == 200 and response.json()["outcome"] == "recorded", response.text

        async def appropriated() -> bool:
            totals = (await client.get(_url(world.settings, "payments", f"/v1/books/{world.book}/totals"),
                                       params={"fiscal_year": 2022}, headers=finance)).json()
            return any(p["appropriated_fen"] == fen for p in totals["programmes"])

        await eventually("the read side to show Finance's appropriation", appropriated, timeout_s=30)


async def _get(world: World, service: str, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        auth = {"Authorization": f"Bearer {token}"}
        return await client.get(_url(world.settings, service, path), headers=auth)


def _reads(settings: Settings) -> list[Any]:
    app = AccessApplication(settings)
    try:
        return [event for _, event in app.reads()]
    finally:
        app.close()


async def test_an_auditors_read_is_recorded_with_pseudonyms_not_identity_numbers(world: World) -> None:
    token = world.tokens["auditor"]
    response = await _get(world, "eligibility", f"/v1/books/{world.book}/decisions", token)
    assert response.status_code == 200
    assert W1 in response.text  # the auditor reads identity numbers in clear
    key_id = token.split("_")[1]
    mine = [r for r in _reads(world.settings) if r.key_id == key_id]
    assert len(mine) == 1, mine
    read = mine[0]
    assert (read.role, read.service, read.endpoint, read.book, read.view) == (
        "auditor", "eligibility", "GET /v1/books/{book}/decisions", world.book, "all")
    assert read.rows == len(response.json()["decisions"])
    assert pseudonym(read_audit_key(world.settings), W1) in read.subjects
    stored = json.dumps({name: getattr(read, name) for name in ("subjects", "endpoint", "book")})
    assert identifiers_in(stored) == []
    # The operator finds who read a person's data with the person's number.
    from flexledger.keys_cli import app as keys

    result = CliRunner().invoke(keys, ["reads", "--identity", W1, "--key-id", key_id, "--json"],
                                env=world.settings.as_env())
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["role"], r["endpoint"], r["book"]) for r in listed] == [
        ("auditor", "GET /v1/books/{book}/decisions", world.book)]
    # Reads of payments' personal data too, the operator's included.
    await _get(world, "payments", f"/v1/books/{world.book}/orders", world.tokens["operator"])
    operator_id = world.tokens["operator"].split("_")[1]
    assert any(r.key_id == operator_id and r.endpoint == "GET /v1/books/{book}/orders"
               for r in _reads(world.settings))


async def test_statistics_sees_no_identity_number_in_clear(world: World) -> None:
    token = world.tokens["statistics"]
    for service, path in (("eligibility", "decisions"), ("payments", "orders"), ("payments", "entries")):
        response = await _get(world, service, f"/v1/books/{world.book}/{path}", token)
        assert response.status_code == 200, response.text
        assert identifiers_in(response.text) == [], (path, response.text[:300])
    decisions = (await _get(world, "eligibility", f"/v1/books/{world.book}/decisions", token)).text
    assert pseudonym(statistics_key(world.settings), W1) in decisions
    assert E1 in decisions  # enterprises' credit codes are public registry data


def _mentions(text: str) -> set[str]:
    return set(re.findall(r"[0-9A-Z]{18}", text))


async def test_a_platform_sees_its_own_decisions_orders_and_balance_only(world: World) -> None:
    decisions = f"/v1/books/{world.book}/decisions"
    mine = await _get(world, "eligibility", decisions, world.tokens["platform"])
    theirs = await _get(world, "eligibility", decisions, world.other_platform)
    everything = await _get(world, "eligibility", decisions, world.tokens["auditor"])
    assert {E1, W1} <= _mentions(everything.text)
    assert any(d["kind"] == "grant" and d["beneficiary"] == E1 for d in mine.json()["decisions"])
    assert not any(d["after"].startswith("e2-") for d in mine.json()["decisions"])
    # its own rejected report, and its worker's grant on a fact naming no enterprise
    assert [d["after"] for d in theirs.json()["decisions"]] == ["e2-4", "e2-6"]
    assert E1 not in theirs.text and W1 not in theirs.text
    seen = len(mine.json()["decisions"]) + len(theirs.json()["decisions"])
    assert seen <= len(everything.json()["decisions"])

    orders = await _get(world, "payments", f"/v1/books/{world.book}/orders", world.tokens["platform"])
    assert [o["beneficiary"] for o in orders.json()["orders"]] == [E1]
    other_orders = await _get(world, "payments", f"/v1/books/{world.book}/orders", world.other_platform)
    assert [(o["beneficiary"], o["program"]) for o in other_orders.json()["orders"]] == [
        (W2, "social_insurance")]  # paid to its worker
    assert E1 not in other_orders.text and W1 not in other_orders.text
    assert W2 not in orders.text

    own = await _get(world, "payments", f"/v1/books/{world.book}/balances/{E1}", world.tokens["platform"])
    assert own.status_code == 200 and own.json()["beneficiary"] == E1
    for beneficiary in (E1, W1):
        other = await _get(world, "payments", f"/v1/books/{world.book}/balances/{beneficiary}",
                           world.other_platform)
        assert other.status_code == 403, other.text
    worker = await _get(world, "payments", f"/v1/books/{world.book}/balances/{W2}", world.other_platform)
    assert worker.status_code == 200, worker.text
    assert [o["program"] for o in worker.json()["orders"]] == ["social_insurance"]
    guessed = await _get(world, "payments", f"/v1/books/{world.book}/balances/{W2}", world.tokens["platform"])
    assert guessed.status_code == 403, guessed.text  # another platform's worker, even by its path
    nobody = await _get(world, "payments", f"/v1/books/{world.book}/balances/320211199001011237",
                        world.tokens["platform"])
    assert nobody.status_code == 403  # no payments at all: the same answer, nothing told
    entries = await _get(world, "payments", f"/v1/books/{world.book}/entries", world.tokens["platform"])
    assert entries.status_code == 403


async def test_subject_and_decision_filters_keep_the_platform_policy_and_known_as_of_looks_back(
    world: World,
) -> None:
    decisions = f"/v1/books/{world.book}/decisions"
    auditor, platform = world.tokens["auditor"], world.tokens["platform"]
    everything = (await _get(world, "eligibility", decisions, auditor)).json()["decisions"]
    about_w1 = (await _get(world, "eligibility", f"{decisions}?subject={W1}", auditor)).json()["decisions"]
    assert about_w1 and about_w1 == [d for d in everything if W1 in (d.get("subject"), d.get("beneficiary"))]
    own = (await _get(world, "eligibility", f"{decisions}?subject={W1}", platform)).json()["decisions"]
    assert own and all(d in about_w1 for d in own)
    theirs = await _get(world, "eligibility", f"{decisions}?subject={W1}", world.other_platform)
    assert theirs.json()["decisions"] == []  # the platform policy still applies
    for bad in ("w2", "1" * 19, "%00"):
        assert (await _get(world, "eligibility", f"{decisions}?subject={bad}", auditor)).status_code == 422
    first = about_w1[0]["decision_id"]
    one = await _get(world, "eligibility", f"{decisions}?decision_id={first}", auditor)
    assert one.json()["decisions"] == about_w1[:1]
    not_theirs = await _get(world, "eligibility", f"{decisions}?decision_id={first}", world.other_platform)
    assert not_theirs.json()["decisions"] == []
    assert (await _get(world, "eligibility", f"{decisions}?decision_id=a%20b", auditor)).status_code == 422
    before = await _get(world, "eligibility", f"{decisions}?known_as_of=2000-01-01T00:00:00Z", auditor)
    assert before.json()["decisions"] == []
    later = await _get(world, "eligibility", f"{decisions}?known_as_of=2999-01-01T00:00:00", auditor)
    assert later.json()["decisions"] == everything


async def test_openapi_declares_the_key_on_every_endpoint_but_health(world: World) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for service in ("intake", "eligibility", "payments"):
            spec = (await client.get(_url(world.settings, service, "/openapi.json"))).json()
            assert spec["components"]["securitySchemes"]["ApiKey"] == {
                "type": "http", "scheme": "bearer",
                "description": "flk_<key id>_<secret>, issued by `flexledger keys issue`"}
            for path, operations in spec["paths"].items():
                for method, operation in operations.items():
                    expected = [] if path == "/health" else [{"ApiKey": []}]
                    assert operation.get("security", []) == expected, (service, method, path)
                    if path != "/health":
                        assert {"401", "403"} <= set(operation["responses"]), (service, method, path)
