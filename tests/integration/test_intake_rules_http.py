"""Issue 13's intake findings, through the running intake (a process, on the real database): each
test is named after a finding and replays it as the hostile client did. The pure parts:
tests/unit/intake/test_intake_relationships.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from intake_support import (
    E1,
    E2,
    W1,
    book,
    contribution_paid,
    enterprise_registered,
    headers,
    issue_key,
    log_position,
    monthly_report,
    operator_token,
    recorded,
    start_intake_only,
    stop_intake,
    url,
    worker_registered,
)

from contracts.identifiers import mask
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
BEIJING = "110101"


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(timeout=60) as c:
        yield c


async def _post(
    client: httpx.AsyncClient, settings: Settings, token: str, name: str, body: Any
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await client.post(url(settings, "/v1/facts"), content=content, headers=headers(token, name))


async def _bulk(
    client: httpx.AsyncClient, settings: Settings, token: str, name: str, body: bytes, content_type: str
) -> httpx.Response:
    return await client.post(url(settings, "/v1/facts/bulk"), content=body,
                             headers=headers(token, name, content_type))


async def _last_seq(client: httpx.AsyncClient, settings: Settings, name: str) -> int:
    response = await client.get(url(settings, f"/v1/books/{name}/progress"),
                                headers={"Authorization": f"Bearer {operator_token(settings)}"})
    return int(response.json()["last_seq"])


def _residence_changed(fact_id: str, worker: str = W1) -> dict[str, Any]:
    return {"id": fact_id, "type": "residence_changed", "at": "2021-08-01T09:00:00+08:00", "worker": worker,
            "residence": BEIJING, "since": "2021-08-01"}


async def _platforms(client: httpx.AsyncClient, intake: Settings, name: str) -> tuple[str, str]:
    """Two platforms' keys, both registered in `name`: E1 employs W1 (registered and reported it)."""
    _, first = issue_key(intake, "platform", E1)
    _, second = issue_key(intake, "platform", E2)
    for token, fact in ((first, enterprise_registered("e", E1)), (second, enterprise_registered("e", E2)),
                        (first, worker_registered("w1")), (first, monthly_report("r1"))):
        response = await _post(client, intake, token, name, fact)
        assert response.status_code == 201, response.text
    return first, second


async def test_platform_cannot_move_another_platforms_worker_to_beijing(
    intake: Settings, client: httpx.AsyncClient
) -> None:
    name = book()
    first, second = await _platforms(client, intake, name)
    moved = await _post(client, intake, second, name, _residence_changed("m1"))
    assert moved.status_code == 403 and moved.json()["outcome"] == "refused", moved.text
    assert E2 in moved.json()["reason"] and W1 not in moved.text and mask(W1) in moved.json()["reason"]
    assert await _last_seq(client, intake, name) == 4  # nothing recorded
    bulk = await _bulk(client, intake, second, name, json.dumps(_residence_changed("m2")).encode() + b"\n",
                       "application/x-ndjson")
    [row] = bulk.json()["results"]
    assert (row["outcome"], row["status"], row["seq"]) == ("rejected", 403, None)
    assert await _last_seq(client, intake, name) == 4
    own = await _post(client, intake, first, name, _residence_changed("m3"))  # its own worker: it may
    assert own.status_code == 201, own.text


async def test_platform_registration_never_blocks_the_hr_bureaus(
    intake: Settings, client: httpx.AsyncClient
) -> None:
    name = book()
    _, platform = issue_key(intake, "platform", E2)
    _, bureau = issue_key(intake, "hr_bureau")
    assert (await _post(client, intake, platform, name, enterprise_registered("e", E2))).status_code == 201
    false = {**worker_registered("w1"), "name": "假名", "residence": BEIJING}
    assert (await _post(client, intake, platform, name, false)).status_code == 201
    genuine = await _post(client, intake, bureau, name, worker_registered("w1"))
    assert genuine.status_code == 201, genuine.text
    assert genuine.json()["fact_id"] == "hr_bureau/w1"
    # superseded: the platform no longer has the worker, and cannot move them
    assert (await _post(client, intake, platform, name, _residence_changed("m1"))).status_code == 403
    stored = recorded(intake, name)
    assert [(e.fact_id, e.outcome, e.submitter) for e in stored] == [
        (f"{E2}/e", "accepted", E2), (f"{E2}/w1", "accepted", E2), ("hr_bureau/w1", "accepted", "hr_bureau"),
    ]


async def test_fact_ids_cannot_be_squatted(intake: Settings, client: httpx.AsyncClient) -> None:
    name = book()
    first, _ = await _platforms(client, intake, name)
    _, agency = issue_key(intake, "social_insurance_agency")
    squat = await _post(client, intake, first, name, monthly_report("c-2021-06", month="2021-05"))
    assert squat.status_code == 201  # the platform takes the id the agency is about to use
    genuine = await _post(client, intake, agency, name, contribution_paid("c-2021-06"))
    assert genuine.status_code == 201, genuine.text
    assert genuine.json()["fact_id"] == "social_insurance_agency/c-2021-06"
    again = await _post(client, intake, agency, name, contribution_paid("c-2021-06"))
    assert again.status_code == 200 and again.json()["duplicate"] is True


async def test_facts_dated_2099_are_refused(intake: Settings, client: httpx.AsyncClient) -> None:
    name = book()
    first, _ = await _platforms(client, intake, name)
    since = log_position(intake)
    for at, month in (("2099-07-03T10:00:00+08:00", "2099-06"), ("9999-12-31T10:00:00+08:00", "9999-12")):
        future = {**monthly_report("r2099", month=month), "at": at}
        refused = await _post(client, intake, first, name, future)
        assert refused.status_code == 400, refused.text
        assert refused.json()["outcome"] == "refused" and refused.json()["where"] == "at"
        assert refused.json()["reason"].startswith(f"at {at} is later than")
        bulk = await _bulk(client, intake, first, name, json.dumps(future).encode() + b"\n",
                           "application/x-ndjson")
        [row] = bulk.json()["results"]
        assert (row["status"], row["seq"], row["fact_id"]) == (400, None, "r2099")
    assert recorded(intake, name, since) == [] and await _last_seq(client, intake, name) == 4
    # a historic `at` passes; RULES.md's own check (no month after the month of `at`) still rejects
    historic = await _post(client, intake, first, name, monthly_report("r2021", month="2021-08"))
    assert historic.status_code == 400 and historic.json()["outcome"] == "rejected"
    assert "after the month of its own submission time" in historic.json()["reason"]


async def test_csv_formula_cells_are_neutralised(intake: Settings, client: httpx.AsyncClient) -> None:
    name = book()
    first, _ = await _platforms(client, intake, name)
    csv = ("id,at,enterprise,worker,month,income_fen,hours,district\n"
           f'"=HYPERLINK(""http://evil.example"",""x"")",2021-07-05T10:00:00+08:00,{E1},{W1},2021-05,1,1,320213\n'
           f"@SUM(A1),2021-07-05T10:00:00+08:00,{E1},{W1},2021-04,1,1,320213\n"
           f"r-ok,2021-07-05T10:00:00+08:00,{E1},{W1},2021-03,1,1,320213\n").encode()
    response = await _bulk(client, intake, first, name, csv, "text/csv")
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["outcome"], r["status"]) for r in results] == [("rejected", 400), ("rejected", 400),
                                                              ("accepted", 201)]
    assert all(r["reason"].startswith("id ") and "formula" in r["reason"] for r in results[:2])
    assert await _last_seq(client, intake, name) == 5  # only the third row recorded


async def test_rejection_reasons_mask_identity_numbers(intake: Settings, client: httpx.AsyncClient) -> None:
    name = book()
    first, _ = await _platforms(client, intake, name)
    since = log_position(intake)
    body = ('{"id": "x1", "type": "monthly_report", "at": "2021-07-05T10:00:00+08:00", '
            f'"enterprise": "{E1}", "worker": {W1}, "month": "2021-06", "income_fen": 1, "hours": 1, '
            '"district": "320213"}').encode()
    response = await _post(client, intake, first, name, body)
    assert response.status_code == 400 and response.json()["outcome"] == "rejected", response.text
    assert W1 not in response.json()["reason"] and mask(W1) in response.json()["reason"]
    [stored] = recorded(intake, name, since)
    assert stored.reason == response.json()["reason"]  # as published on the facts topic: masked


async def test_repeated_conflicts_do_not_grow_the_ledger(intake: Settings, client: httpx.AsyncClient) -> None:
    name = book()
    first, _ = await _platforms(client, intake, name)
    since = log_position(intake)
    conflicting = {**enterprise_registered("e", E1), "name": "another name"}
    answers = await asyncio.gather(*(_post(client, intake, first, name, conflicting) for _ in range(99)))
    assert {a.status_code for a in answers} == {409}
    assert {a.json()["seq"] for a in answers} == {5}  # every answer names the one recorded conflict
    assert len(recorded(intake, name, since)) == 1 and await _last_seq(client, intake, name) == 5


async def test_relationships_and_conflicts_survive_a_restart(
    intake: Settings, client: httpx.AsyncClient
) -> None:
    """Intake rebuilds its books from its events, which carry their submitter: after a restart the HR
    bureau's registration still supersedes the platform's, and a repeated conflict is still answered
    without another event."""
    name = book()
    _, platform = issue_key(intake, "platform", E2)
    _, bureau = issue_key(intake, "hr_bureau")
    assert (await _post(client, intake, platform, name, enterprise_registered("e", E2))).status_code == 201
    assert (await _post(client, intake, platform, name, worker_registered("w1"))).status_code == 201
    conflicting = {**enterprise_registered("e", E2), "name": "another name"}
    assert (await _post(client, intake, platform, name, conflicting)).status_code == 409
    stop_intake(intake)
    start_intake_only(intake)
    assert (await _post(client, intake, platform, name, _residence_changed("m0"))).status_code == 201
    assert (await _post(client, intake, bureau, name, worker_registered("w1"))).status_code == 201
    stop_intake(intake)
    start_intake_only(intake)
    assert (await _post(client, intake, platform, name, _residence_changed("m1"))).status_code == 403
    again = await _post(client, intake, platform, name, conflicting)
    assert again.status_code == 409 and again.json()["seq"] == 3
    assert await _last_seq(client, intake, name) == 5
