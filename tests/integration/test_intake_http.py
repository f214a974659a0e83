"""Intake's HTTP API against the real service (a process, on the real database and broker), with low
limits so that every refusal can be reached: every status path of POST /v1/facts and
POST /v1/facts/bulk, keys issued, rotated and revoked by the operator command, hostile input."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from intake_support import (
    E1,
    E2,
    W1,
    W2,
    book,
    enterprise_registered,
    eventually,
    headers,
    issue_key,
    log_position,
    monthly_report,
    operator_token,
    recorded,
    start_intake_only,
    stop_intake,
    url,
    worker_id,
    worker_registered,
)
from typer.testing import CliRunner

from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

MAX_ROWS, BURST, PER_S, TIMEOUT_S, BULK_BYTES = 20, 40, 5, 3, 64 * 1024


@pytest.fixture(scope="module")
def intake(infra: Settings) -> Iterator[Settings]:
    settings = replace(
        infra,
        intake_max_bulk_rows=MAX_ROWS,
        intake_rate_burst=BURST,
        intake_rate_per_s=PER_S,
        intake_request_timeout_s=TIMEOUT_S,
        intake_max_bulk_bytes=BULK_BYTES,
    )
    start_intake_only(settings)
    try:
        yield settings
    finally:
        stop_intake(settings)


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def _progress(client: httpx.AsyncClient, settings: Settings, name: str) -> int:
    auth = {"Authorization": f"Bearer {operator_token(settings)}"}
    response = await client.get(url(settings, f"/v1/books/{name}/progress"), headers=auth)
    assert response.status_code == 200
    return int(response.json()["last_seq"])


async def _post(
    client: httpx.AsyncClient,
    settings: Settings,
    token: str | None,
    name: str,
    body: Any,
    content_type: str | None = "application/json",
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await client.post(
        url(settings, "/v1/facts"), content=content, headers=headers(token, name, content_type)
    )


async def _bulk(
    client: httpx.AsyncClient,
    settings: Settings,
    token: str | None,
    name: str,
    body: bytes,
    content_type: str | None = "application/x-ndjson",
) -> httpx.Response:
    return await client.post(
        url(settings, "/v1/facts/bulk"), content=body, headers=headers(token, name, content_type)
    )


def _jsonl(*facts: Any) -> bytes:
    return b"".join(
        (f if isinstance(f, bytes) else json.dumps(f, ensure_ascii=False).encode()) + b"\n" for f in facts
    )


# ---- one fact -----------------------------------------------------------------------------------


def _untraced(response: httpx.Response) -> dict[str, Any]:
    """The answer without its `trace_id`, after checking it names the request's trace (each request has
    its own, a resubmission too): the trace id of its `traceparent` header."""
    body: dict[str, Any] = response.json()
    assert body.pop("trace_id") == response.headers["traceparent"].split("-")[1]
    return body


async def test_201_200_409_and_400_are_the_facts_own_outcomes(
    intake: Settings, client: httpx.AsyncClient
) -> None:
    _, platform = issue_key(intake, "platform", E1)
    name = book()
    since = log_position(intake)
    first = await _post(client, intake, platform, name, enterprise_registered("f1"))
    # a platform's ids are in its scope: the ledger id is `<enterprise>/<id>` (issue 13)
    assert first.status_code == 201
    assert _untraced(first) == {"outcome": "accepted", "fact_id": f"{E1}/f1", "seq": 1}
    again = await _post(client, intake, platform, name, enterprise_registered("f1"))
    assert again.status_code == 200 and _untraced(again) == {**_untraced(first), "duplicate": True}
    reused = await _post(client, intake, platform, name, {**enterprise_registered("f1"), "name": "other"})
    assert reused.status_code == 409 and reused.json()["seq"] == 2 and "f1" in reused.json()["reason"]
    unregistered = await _post(client, intake, platform, name, monthly_report("f2"))
    assert unregistered.status_code == 400 and unregistered.json()["outcome"] == "rejected"
    assert "worker" in unregistered.json()["reason"] and unregistered.json()["seq"] == 3
    malformed = await _post(client, intake, platform, name, {**monthly_report("f3"), "month": "2021-13"})
    assert malformed.status_code == 400 and malformed.json()["reason"].startswith("month")
    assert await _progress(client, intake, name) == 4
    assert [e.seq for e in recorded(intake, name, since)] == [1, 2, 3, 4]


async def test_concurrent_single_posts_each_get_their_own_outcome_seq_and_trace(
    intake: Settings, client: httpx.AsyncClient
) -> None:
    """Requests arriving together share group commits; each is still answered with its own outcome
    and seq, and a bad fact among them changes nothing for the others."""
    _, platform = issue_key(intake, "platform", E1)
    name = book()
    since = log_position(intake)
    assert (await _post(client, intake, platform, name, enterprise_registered("e"))).status_code == 201
    workers = [worker_registered(f"w{k}", worker_id(100 + k)) for k in range(12)]
    bad = [{**monthly_report(f"m{k}"), "month": "2021-13"} for k in range(3)]
    reused = {**enterprise_registered("e"), "name": "other"}
    bodies = [*workers, *bad, reused, enterprise_registered("e")]
    answers = await asyncio.gather(*(_post(client, intake, platform, name, b) for b in bodies))
    assert [a.status_code for a in answers] == [201] * 12 + [400] * 3 + [409, 200]
    assert all("month" in a.json()["reason"] for a in answers[12:15])
    assert answers[-1].json()["seq"] == 1  # the duplicate answers the original's seq
    seqs = sorted(a.json()["seq"] for a in answers[:-1])
    assert seqs == list(range(2, 18)) and await _progress(client, intake, name) == 17
    stored = recorded(intake, name, since)
    assert [e.seq for e in stored] == list(range(1, 18))
    by_id = {e.fact_id: e for e in stored[1:] if e.fact_id != f"{E1}/e"}
    assert {a.json()["fact_id"]: a.json()["seq"] for a in answers[:15]} == {
        fact_id: e.seq for fact_id, e in by_id.items()
    }
    assert len({e.traceparent for e in stored}) == 17  # each request's own trace


async def test_401_for_missing_malformed_unknown_and_wrong_keys_and_nothing_is_stored(
    intake: Settings,
    client: httpx.AsyncClient,
) -> None:
    key_id, platform = issue_key(intake, "platform", E1)
    name = book()
    since = log_position(intake)
    wrong_secret = f"flk_{key_id}_{'A' * 43}"
    unknown = f"flk_{'0' * 16}_{'A' * 43}"
    for token in (None, "not-a-key", unknown, wrong_secret, platform + "x"):
        response = await _post(client, intake, token, name, enterprise_registered("f1"))
        assert response.status_code == 401, (token, response.text)
        assert response.json()["outcome"] == "refused" and response.headers["WWW-Authenticate"] == "Bearer"
        bulk = await _bulk(client, intake, token, name, _jsonl(enterprise_registered("f1")))
        assert bulk.status_code == 401
    basic = await client.post(
        url(intake, "/v1/facts"),
        json=enterprise_registered("f1"),
        headers={"Authorization": f"Basic {platform}", "X-Flexledger-Book": name},
    )
    assert basic.status_code == 401
    assert await _progress(client, intake, name) == 0 and recorded(intake, name, since) == []


async def test_403_when_the_fact_is_not_this_keys_and_nothing_is_stored(
    intake: Settings,
    client: httpx.AsyncClient,
) -> None:
    _, platform = issue_key(intake, "platform", E1)
    _, insurance = issue_key(intake, "social_insurance_agency")
    name = book()
    since = log_position(intake)
    other = await _post(client, intake, platform, name, enterprise_registered("f1", E2))
    assert other.status_code == 403 and E2 in other.json()["reason"]
    report = await _post(client, intake, insurance, name, monthly_report("f2"))
    assert report.status_code == 403 and "social_insurance_agency" in report.json()["reason"]
    assert await _progress(client, intake, name) == 0 and recorded(intake, name, since) == []


async def test_413_415_and_400_refusals_store_nothing(intake: Settings, client: httpx.AsyncClient) -> None:
    operator = operator_token(intake)
    name = book()
    huge = {**enterprise_registered("f1"), "name": "x" * (65 * 1024)}
    assert (await _post(client, intake, operator, name, huge)).status_code == 413
    assert (
        await _post(client, intake, operator, name, enterprise_registered("f1"), "text/plain")
    ).status_code == 415
    assert (
        await _post(
            client, intake, operator, name, enterprise_registered("f1"), "application/json; charset=latin-1"
        )
    ).status_code == 415
    not_json = await _post(client, intake, operator, name, b"{not json")
    assert not_json.status_code == 400 and not_json.json()["outcome"] == "refused"
    assert await _progress(client, intake, name) == 0


# Hostile bodies: a 4xx with a reason, never a 5xx. "recorded": a readable object with a hostile value
# is an invalid fact, recorded as rejected (as the engine would); the rest is refused, nothing stored.
HOSTILE: list[tuple[bytes, int, str, bool]] = [
    (b"\xff\xfe{}", 400, "not valid UTF-8", False),
    (b'{"id":"h1","name":"\xc3"}', 400, "not valid UTF-8", False),
    (b'{"id":"h2","a":' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "deeper than", False),
    (b'{"id":"h3","id":"h4"}', 400, "twice", False),
    (b"[1,2]", 400, "JSON object", False),
    (b'{"id":"h5","type":"monthly_report","income_fen":' + b"9" * 5000 + b"}", 400, "income_fen", True),
    (b'{"id":"h6","type":"monthly_report","income_fen":1e999}', 400, "income_fen", True),
    (b'{"id":"h7","type":"monthly_report","hours":NaN}', 400, "hours", True),
    (b'{"id":"h8","type":"worker_registered","name":"a\\u0000b"}', 400, "name", True),
    (b'{"id":"h9","type":"worker_registered","name":"\\ud800"}', 400, "unpaired surrogate", True),
    (b'{"id":"h10","name":"\x01"}', 400, "control character", False),
    (b'{"id":"h11\\u001b[31m","type":"talent_award"}', 400, "control character", True),
]


@pytest.mark.parametrize(
    ("body", "status", "reason", "stored"), HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))]
)
async def test_hostile_input_gets_a_4xx_with_a_reason(
    intake: Settings,
    client: httpx.AsyncClient,
    body: bytes,
    status: int,
    reason: str,
    stored: bool,
) -> None:
    name = book()
    response = await _post(client, intake, operator_token(intake), name, body)
    assert response.status_code == status and reason in response.json()["reason"], response.text
    assert response.json()["outcome"] == ("rejected" if stored else "refused")
    assert await _progress(client, intake, name) == (1 if stored else 0)
    if stored:  # and the same bytes again are the same fact: a no-op
        again = await _post(client, intake, operator_token(intake), name, body)
        assert again.status_code == 200 and again.json()["duplicate"] is True


async def test_408_when_the_body_does_not_arrive_in_time(intake: Settings) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", intake.intake_port)
    try:
        request = (
            f"POST /v1/facts HTTP/1.1\r\nHost: intake\r\nAuthorization: Bearer {operator_token(intake)}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":'
        ).encode()
        writer.write(request)
        await writer.drain()
        started = time.monotonic()
        status_line = await asyncio.wait_for(reader.readline(), TIMEOUT_S + 10)
        assert b" 408 " in status_line, status_line
        assert time.monotonic() - started >= TIMEOUT_S - 0.5
    finally:
        writer.close()


async def test_429_with_retry_after_and_the_refused_request_stores_nothing(
    intake: Settings,
    client: httpx.AsyncClient,
) -> None:
    _, platform = issue_key(intake, "platform", E1)
    name = book()
    body = _jsonl(*(monthly_report(f"r{i}", f"2021-{i % 12 + 1:02d}") for i in range(MAX_ROWS)))
    for _ in range(BURST // MAX_ROWS):
        assert (await _bulk(client, intake, platform, name, body)).status_code == 200
    seq = await _progress(client, intake, name)
    refused = await _bulk(client, intake, platform, name, body)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    single = await _post(client, intake, platform, name, monthly_report("r-single"))
    assert single.status_code in (201, 400, 429)  # one token may have come back meanwhile
    if single.status_code == 429:
        assert await _progress(client, intake, name) == seq
    # Other keys have their own bucket.
    assert (
        await _post(client, intake, operator_token(intake), name, enterprise_registered("e1"))
    ).status_code in (201, 200)


# ---- bulk ---------------------------------------------------------------------------------------


async def test_bulk_jsonl_answers_every_row_in_order_and_records_them_in_seq_order(
    intake: Settings,
    client: httpx.AsyncClient,
) -> None:
    _, platform = issue_key(intake, "platform", E1)
    name = book()
    since = log_position(intake)
    rows = [
        enterprise_registered("b1"),
        worker_registered("b2"),
        monthly_report("b3"),
        monthly_report("b3"),
        {**monthly_report("b3"), "income_fen": 1},
        monthly_report("b4", enterprise=E2),
        b"{broken",
        monthly_report("b5", worker=W2),
        {**monthly_report("b6", "2021-05"), "income_fen": 10**40},
    ]
    response = await _bulk(client, intake, platform, name, _jsonl(*rows))
    assert response.status_code == 200, response.text
    body = response.json()
    got = [(r["row"], r["fact_id"], r["outcome"], r["status"], r["seq"]) for r in body["results"]]
    scoped = f"{E1}/"  # recorded rows name the ledger id, in the platform's scope; refused ones the id sent
    assert got == [
        (1, scoped + "b1", "accepted", 201, 1),
        (2, scoped + "b2", "accepted", 201, 2),
        (3, scoped + "b3", "accepted", 201, 3),
        (4, scoped + "b3", "duplicate", 200, 3),
        (5, scoped + "b3", "conflict", 409, 4),
        (6, "b4", "rejected", 403, None),
        (7, None, "rejected", 400, None),
        (8, scoped + "b5", "rejected", 400, 5),
        (9, scoped + "b6", "rejected", 400, 6),
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"], body["last_seq"]) == (3, 1, 5, 6)
    assert "income_fen" in body["results"][8]["reason"]
    assert [e.seq for e in recorded(intake, name, since)] == [1, 2, 3, 4, 5, 6]
    # Sending the same body again: every recorded row is a duplicate (ids are idempotency keys).
    again = (await _bulk(client, intake, platform, name, _jsonl(*rows))).json()
    assert [r["outcome"] for r in again["results"]] == [
        "duplicate",
        "duplicate",
        "duplicate",
        "duplicate",
        "conflict",
        "rejected",
        "rejected",
        "duplicate",
        "duplicate",
    ]
    # the conflicting reuse of b3 is the same content as before: answered 409 again, not recorded again
    assert again["last_seq"] == 6 and again["results"][4]["seq"] == 4


async def test_bulk_csv_of_monthly_reports(intake: Settings, client: httpx.AsyncClient) -> None:
    _, platform = issue_key(intake, "platform", E1)
    name = book()
    for fact in (enterprise_registered("c0"), worker_registered("c00")):
        assert (await _post(client, intake, platform, name, fact)).status_code == 201
    csv = (
        f"worker,id,at,enterprise,month,income_fen,hours,district\n"
        f"{W1},c1,2021-07-05T10:00:00+08:00,{E1},2021-06,210000,167.5,320213\n"
        f"{W1},c2,2021-07-05T10:00:00+08:00,{E1},2021-05,abc,10,320213\n"
        f"{W1},c3,2021-07-05T10:00:00+08:00,{E1},2021-06,1,1,320213\n"
    ).encode()
    body = (await _bulk(client, intake, platform, name, csv, "text/csv")).json()
    assert [(r["fact_id"], r["outcome"], r["status"]) for r in body["results"]] == [
        (f"{E1}/c1", "accepted", 201),
        ("c2", "rejected", 400),  # unreadable: not recorded, named as sent
        (f"{E1}/c3", "rejected", 400),
    ]
    assert "income_fen" in body["results"][1]["reason"] and "already exists" in body["results"][2]["reason"]
    bad_header = await _bulk(client, intake, platform, name, b"id,at\nx,y\n", "text/csv")
    assert bad_header.status_code == 400 and bad_header.json()["where"] == "header"


async def test_bulk_refusals_413_415_and_nothing_stored(intake: Settings, client: httpx.AsyncClient) -> None:
    operator = operator_token(intake)
    name = book()
    too_many = _jsonl(*(enterprise_registered(f"t{i}") for i in range(MAX_ROWS + 1)))
    response = await _bulk(client, intake, operator, name, too_many)
    assert response.status_code == 413 and f"limit is {MAX_ROWS} rows" in response.json()["reason"]
    too_big = _jsonl(*({**enterprise_registered(f"t{i}"), "pad": "x" * 10_000} for i in range(7)))
    assert len(too_big) > BULK_BYTES
    assert (await _bulk(client, intake, operator, name, too_big)).status_code == 413
    for content_type in ("application/json", "text/plain", None, "text/csv; charset=utf-16"):
        response = await _bulk(
            client, intake, operator, name, _jsonl(enterprise_registered("t1")), content_type
        )
        assert response.status_code == 415, content_type
    assert await _progress(client, intake, name) == 0


# ---- keys ---------------------------------------------------------------------------------------


def _keys(settings: Settings, *args: str) -> Any:
    from flexledger.keys_cli import app

    result = CliRunner().invoke(app, list(args), env=settings.as_env())
    assert result.exit_code == 0, result.output
    return result.output


async def test_keys_issued_rotated_and_revoked_by_the_operator_command(
    intake: Settings,
    client: httpx.AsyncClient,
) -> None:
    name = book()
    issued = json.loads(
        _keys(intake, "issue", "--role", "platform", "--enterprise", E1, "--label", "t", "--json")
    )
    token, key_id = issued["key"], issued["key_id"]
    assert issued["principal"] == f"platform {E1}" and token.startswith(f"flk_{key_id}_")
    assert (await _post(client, intake, token, name, enterprise_registered("k1"))).status_code == 201
    listed = [json.loads(line) for line in _keys(intake, "list", "--json").splitlines()]
    mine = next(row for row in listed if row["key_id"] == key_id)
    assert (mine["role"], mine["enterprise"], mine["state"]) == ("platform", E1, "active")
    assert any(row["label"].startswith("bootstrap operator key") for row in listed)
    secret = token.removeprefix(f"flk_{key_id}_")  # url-safe base64: it may itself hold "_"
    assert token not in json.dumps(listed) and secret not in json.dumps(listed)

    rotated = json.loads(_keys(intake, "rotate", key_id, "--grace-hours", "1", "--json"))
    assert (await _post(client, intake, rotated["key"], name, worker_registered("k2"))).status_code == 201
    assert (await _post(client, intake, token, name, worker_registered("k3", W2))).status_code == 201  # grace

    _keys(intake, "revoke", key_id, "--reason", "leaked")

    async def refused() -> bool:
        return (await _post(client, intake, token, name, monthly_report("k4", "2021-04"))).status_code == 401

    await eventually("the revoked key to be refused", refused, timeout_s=10)
    assert (
        await _post(client, intake, rotated["key"], name, monthly_report("k5", "2021-05"))
    ).status_code == 201
    without_grace = json.loads(_keys(intake, "rotate", rotated["key_id"], "--json"))

    async def old_refused() -> bool:
        return (
            await _post(client, intake, rotated["key"], name, monthly_report("k6", "2021-03"))
        ).status_code == 401

    await eventually("the rotated key to be refused", old_refused, timeout_s=10)
    assert (
        await _post(client, intake, without_grace["key"], name, monthly_report("k6", "2021-03"))
    ).status_code in (
        200,
        201,
    )


async def test_keys_command_refusals_exit_4_refused(intake: Settings) -> None:
    from flexledger.keys_cli import app

    for args in (
        ["issue", "--role", "platform"],
        ["issue", "--role", "king"],
        ["revoke", "0" * 16],
        ["issue", "--role", "hr_bureau", "--enterprise", E1],
    ):
        result = CliRunner().invoke(app, args, env=intake.as_env())
        assert result.exit_code == 4, (args, result.output)  # refused (flexledger/exits.py)


# ---- documentation ------------------------------------------------------------------------------


async def test_openapi_documents_every_status(intake: Settings, client: httpx.AsyncClient) -> None:
    spec = (await client.get(url(intake, "/openapi.json"))).json()
    single = spec["paths"]["/v1/facts"]["post"]
    assert set(single["responses"]) >= {
        "200",
        "201",
        "400",
        "401",
        "403",
        "408",
        "409",
        "413",
        "415",
        "422",
        "429",
        "503",
    }
    bulk = spec["paths"]["/v1/facts/bulk"]["post"]
    assert set(bulk["requestBody"]["content"]) == {"application/x-ndjson", "text/csv"}
    assert set(bulk["responses"]) >= {"200", "400", "401", "408", "413", "415", "429", "503"}
    assert single["security"] == [{"ApiKey": []}]
    assert "Fact" in spec["components"]["schemas"]
