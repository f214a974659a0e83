"""Re-driving dead letters on the running stack (issue 19): a decision payments could not believe is
dead-lettered; re-driven before the fix it is still refused (recorded, with the reason); once payments
knows the key it was tagged under (the fix: a restart with the key), a re-drive pays it — once: a second
re-drive is refused (409) and the order stays one. Nobody but an operator may re-drive (401/403), and a
refused call changes nothing. Intake's agency feed likewise: a fact dated ahead of intake's clock skew
is dead-lettered; re-driven before the fix it is still refused; once intake allows the sender's skew (a
restart with the setting), a re-drive records it — once. What no fix can take in (a fact recorded as
rejected, a message kept truncated) is refused with the reason, nothing recorded. The services run as
processes (`services`)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from intake_support import (
    contribution_paid,
    eventually,
    issue_key,
    log_position,
    recorded,
    url,
    worker_registered,
)
from intake_support import headers as book_headers
from test_forged_messages import _dead_letters, _forged_fact, _inject
from test_intake_feed import FEED, INSURANCE, _agency, _publish
from test_intake_feed import _dead_letters as _intake_dead_letters

from contracts.decisions import DecisionV1
from contracts.messages import SettlementV1
from contracts.topics import (
    DECISIONS,
    ELIGIBILITY_DEAD_LETTERS,
    FACTS,
    PAYMENTS_DEAD_LETTERS,
    SETTLEMENTS,
    topic_for,
)
from flexledger.submit import operator_key
from services.intake.aggregates import dead_letter_id as intake_dead_letter_id
from services.payments.entrypoints.kafka import SETTLEMENTS_GROUP
from services.runtime.dead_letters import dead_letter_id
from services.runtime.keys import partition_key_secret
from services.runtime.message_auth import tag_header
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ENTERPRISE = "91320213MA1XY0001L"
NEW_KEY = b"re-drive test: the key payments knows later"[:32]


def _restart_payments(settings: Settings) -> None:
    from flexledger import devstack

    devstack.stop_service("payments", settings)
    devstack.start_service("payments", settings, timeout=90)


@pytest.fixture(scope="module")
def stack(services: Settings) -> Iterator[Settings]:
    """The services; payments is put back as it was (its own decisions key) afterwards."""
    try:
        yield services
    finally:
        _restart_payments(services)


async def _redrive(settings: Settings, port: int, letter: uuid.UUID, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        return await client.post(f"http://127.0.0.1:{port}/v1/dead-letters/{letter}/redrive")


async def _orders(settings: Settings, book: str) -> list[Any]:
    auth = {"Authorization": f"Bearer {operator_key(settings)}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as client:
        response = await client.get(f"http://127.0.0.1:{settings.payments_port}/v1/books/{book}/orders")
        response.raise_for_status()
        return list(response.json()["orders"])


async def test_a_dead_lettered_decision_is_paid_once_after_the_fix(stack: Settings) -> None:
    book = f"redrive-{uuid.uuid4().hex[:12]}"
    grant = DecisionV1(
        book=book, decision_id=f"redrive-{uuid.uuid4().hex}", rule_set="wuxi-2021-26/1", after="t1",
        kind="grant", program="talent", beneficiary=ENTERPRISE, subject=ENTERPRISE, ref="THRC-2021-0031",
        amount_fen=100_000_000, recorded_at=datetime.now(UTC),
    )
    value = grant.model_dump_json().encode()
    topic = topic_for(DECISIONS, book, stack.production_book_set).name
    key = PartitionKeys(partition_key_secret(stack))(book, ENTERPRISE)
    # Tagged under a key payments does not know (yet): eligibility's key rotated before payments learnt it.
    [position] = await _inject(stack, topic, key, [(value, [tag_header(NEW_KEY, topic, value)])])
    letters = await _dead_letters(stack, PAYMENTS_DEAD_LETTERS.name, topic, {position})
    assert "does not match" in letters[position]["reason"]
    letter = dead_letter_id("payments", topic, *position)
    assert str(letter) == letters[position]["dead_letter_id"]
    port, operator = stack.payments_port, operator_key(stack)

    # Nobody but an operator: 401 without a valid key, 403 for the other roles; nothing recorded.
    for token, status in ((None, 401), ("garbage", 401), (issue_key(stack, "platform", ENTERPRISE)[1], 403),
                          (issue_key(stack, "auditor")[1], 403), (issue_key(stack, "finance")[1], 403)):
        response = await _redrive(stack, port, letter, token)
        assert response.status_code == status, response.text
    assert (await _redrive(stack, port, uuid.uuid4(), operator)).status_code == 404

    # Before the fix: still refused, with the reason, and recorded; nothing paid.
    response = await _redrive(stack, port, letter, operator)
    assert response.status_code == 422, response.text
    refused = response.json()
    assert refused["result"] == "refused" and "does not match" in refused["detail"]
    assert refused["by"].startswith("operator ")
    assert await _orders(stack, book) == []

    # The fix: payments knows the key now. The re-drive takes the decision in: one order.
    fixed = dataclasses.replace(stack, decisions_mac_key=base64.b64encode(NEW_KEY).decode())
    _restart_payments(fixed)
    response = await _redrive(stack, port, letter, operator)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "accepted" and response.json()["detail"] == "recorded"

    async def paid() -> list[Any]:
        return await _orders(stack, book)

    [order] = await eventually("the re-driven grant's order", paid)
    assert order["amount_fen"] == grant.amount_fen

    # Again: refused with the earlier result, and never a second order.
    again = await _redrive(stack, port, letter, operator)
    assert again.status_code == 409, again.text
    assert again.json()["result"] == "accepted" and again.json()["at"] == response.json()["at"]
    assert len(await _orders(stack, book)) == 1

    # The console's dead-letters page and `flexledger dead-letters list` show the history.
    from flexledger.console.dead_letter_store import kept

    [shown] = [k for k in await asyncio.to_thread(kept, stack) if k["id"] == str(letter)]
    assert [r["result"] for r in shown["redrives"]] == ["refused", "accepted"] and shown["taken_in"]


async def test_a_forged_fact_re_driven_is_still_refused(stack: Settings) -> None:
    """Eligibility's side: the kept record goes through the same tag check again (headers included)."""
    book = f"redrive-{uuid.uuid4().hex[:12]}"
    fact = {"id": "t1", "type": "talent_award", "at": "2022-01-10T10:00:00+08:00", "enterprise": ENTERPRISE,
            "award": "THRC-2021-0031", "approved_amount_fen": 100_000_000}
    value = _forged_fact(book, 1, fact)
    key = PartitionKeys(partition_key_secret(stack))(book, ENTERPRISE)
    [position] = await _inject(stack, FACTS.name, key, [(value, [tag_header(NEW_KEY, FACTS.name, value)])])
    await _dead_letters(stack, ELIGIBILITY_DEAD_LETTERS.name, FACTS.name, {position})
    letter = dead_letter_id("eligibility", FACTS.name, *position)
    port = stack.eligibility_port
    assert (await _redrive(stack, port, letter, issue_key(stack, "auditor")[1])).status_code == 403
    response = await _redrive(stack, port, letter, operator_key(stack))
    assert response.status_code == 422, response.text
    assert response.json()["result"] == "refused" and "does not match" in response.json()["detail"]


async def test_a_settlement_on_the_wrong_topic_re_driven_is_still_refused(stack: Settings) -> None:
    """Payments' second consumer group: the same checks again (a sandbox book's settlement on the
    production topic), the new attempt recorded, nothing applied."""
    book = f"redrive-{uuid.uuid4().hex[:12]}"  # a sandbox book: its settlements belong on the sandbox topic
    assert book not in stack.production_book_set
    settlement = SettlementV1.model_validate({
        "book": book, "batch_id": "b-1", "settlement_id": f"s-{uuid.uuid4().hex}",
        "settled_at": datetime.now(UTC),
        "results": [{"entry_id": "e-1", "outcome": "paid", "confirmation": "c-1"}]})
    [position] = await _inject(stack, SETTLEMENTS.name, book, [(settlement.model_dump_json().encode(), [])])
    letters = await _dead_letters(stack, PAYMENTS_DEAD_LETTERS.name, SETTLEMENTS.name, {position})
    assert "belongs on" in letters[position]["reason"]
    letter = dead_letter_id(SETTLEMENTS_GROUP, SETTLEMENTS.name, *position)
    response = await _redrive(stack, stack.payments_port, letter, operator_key(stack))
    assert response.status_code == 422, response.text
    assert response.json()["result"] == "refused" and "belongs on" in response.json()["detail"]
    assert response.json()["consumer_group"] == SETTLEMENTS_GROUP


def _restart_intake(settings: Settings) -> None:
    from flexledger import devstack

    devstack.stop_service("intake", settings)
    devstack.start_service("intake", settings, timeout=90)


async def test_an_agency_fact_dead_lettered_for_its_clock_is_recorded_once_after_the_fix(
    stack: Settings,
) -> None:
    book = f"redrive-{uuid.uuid4().hex[:12]}"
    since = log_position(stack)
    operator = operator_key(stack)
    async with httpx.AsyncClient(timeout=30) as client:
        registered = await client.post(url(stack, "/v1/facts"), json=worker_registered("w1"),
                                       headers=book_headers(operator, book))
    assert registered.status_code == 201, registered.text
    ahead = datetime.now(timezone(timedelta(hours=8))) + timedelta(hours=1)  # the sender's clock is fast
    early = contribution_paid("early") | {"at": ahead.isoformat(timespec="seconds")}
    rejected = contribution_paid("bad") | {"month": "2021-13"}  # recorded as rejected: its id is taken
    too_large = contribution_paid("big") | {"note": "x" * 70_000}  # kept truncated (64 KiB)
    facts_sent = (early, rejected, too_large)
    messages = [(json.dumps(fact).encode(), _agency(INSURANCE, book)) for fact in facts_sent]
    positions = await _publish(stack, messages, book.encode())
    letters = await _intake_dead_letters(stack, set(positions))
    assert [letters[p][0].status for p in positions] == [400, 400, 413]
    assert "later than intake received" in letters[positions[0]][0].reason
    letter, rejected_letter, truncated = (intake_dead_letter_id(FEED, *p) for p in positions)
    port = stack.intake_port

    # Nobody but an operator: 401 without a valid key, 403 for the other roles (the agency itself too).
    for token, status in ((None, 401), ("garbage", 401), (issue_key(stack, "platform", ENTERPRISE)[1], 403),
                          (issue_key(stack, "auditor")[1], 403), (issue_key(stack, INSURANCE)[1], 403)):
        response = await _redrive(stack, port, letter, token)
        assert response.status_code == status, response.text
    assert (await _redrive(stack, port, uuid.uuid4(), operator)).status_code == 404

    # What no fix can take in: refused with the reason, nothing recorded.
    for refused_letter, reason in ((rejected_letter, "recorded as rejected"), (truncated, "kept truncated")):
        response = await _redrive(stack, port, refused_letter, operator)
        assert response.status_code == 422 and reason in response.json()["reason"], response.text

    # Before the fix: still refused (recorded on the dead letter, with the reason); no fact.
    response = await _redrive(stack, port, letter, operator)
    assert response.status_code == 422, response.text
    assert response.json()["result"] == "refused" and "later than" in response.json()["detail"]
    assert response.json()["consumer_group"] == "intake"

    def facts() -> list[tuple[str | None, str]]:
        return [(e.fact_id, e.outcome) for e in recorded(stack, book, since)]

    assert facts() == [("w1", "accepted"), (f"{INSURANCE}/bad", "rejected")]

    # The fix: intake allows two hours of clock skew. The re-drive records the fact, once.
    try:
        _restart_intake(dataclasses.replace(stack, intake_max_clock_skew_s=7200))
        response = await _redrive(stack, port, letter, operator)
        assert response.status_code == 200, response.text
        taken = response.json()
        assert taken["result"] == "accepted"
        assert taken["detail"] == f"recorded: seq 3 of book {book}, accepted"
        assert facts() == [("w1", "accepted"), (f"{INSURANCE}/bad", "rejected"),
                           (f"{INSURANCE}/early", "accepted")]
        again = await _redrive(stack, port, letter, operator)
        assert again.status_code == 409, again.text
        assert again.json()["at"] == taken["at"] and len(facts()) == 3
    finally:
        _restart_intake(stack)

    from flexledger.console.dead_letter_store import kept

    shown = {k["id"]: k for k in await asyncio.to_thread(kept, stack)}
    assert [r["result"] for r in shown[str(letter)]["redrives"]] == ["refused", "accepted"]
    assert shown[str(letter)]["taken_in"] and shown[str(letter)]["group"] == "intake"
    assert shown[str(truncated)]["redrives"] == [] and shown[str(truncated)]["body_bytes"] > 70_000
