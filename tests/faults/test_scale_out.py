"""Two eligibility instances in one consumer group split the facts topic's partitions, and the ledger
they write together is the engine's — and a single instance's — for the same facts.

The second instance is the same code with the same settings except its HTTP port
(`flexledger.devstack` `start_service(..., instance="b")`). Who holds which partition is read from
the broker (DescribeGroups), not from the services.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from conftest import SECOND_INSTANCE
from faultkit import (
    PARTITION,
    eventually,
    generated_facts,
    get_json,
    key_headers,
    norm,
    submit_stream,
    topic_messages,
    url,
    verify_book,
)

from contracts.topics import SANDBOX_FACTS
from flexledger.devstack import services
from flexledger.devstack.credentials import client_args
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GROUP = "eligibility"


async def _assignment(settings: Settings) -> dict[str, set[int]]:
    """Member id -> partitions of the sandbox facts topic it holds, as the group coordinator says (the
    test books are sandbox books: their facts travel on the facts topic's sandbox twin)."""
    admin = AIOKafkaAdminClient(**client_args(settings, "admin"))
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([GROUP])
    finally:
        await admin.close()
    out: dict[str, set[int]] = {}
    for response in responses:
        for group in response.groups:
            error_code, group_id, state, _, _, members = group[:6]
            if group_id != GROUP or error_code != 0 or state != "Stable":
                continue
            for member_id, _, _, _, assignment in members:
                decoded = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
                held = decoded.partitions() if decoded else []
                out[member_id] = {tp.partition for tp in held if tp.topic == SANDBOX_FACTS.name}
    return out


async def _split_between(settings: Settings, members: int) -> dict[str, set[int]]:
    async def probe() -> tuple[bool, Any]:
        held = await _assignment(settings)
        parts = [p for ps in held.values() for p in ps]
        split = len(parts) == len(set(parts)) == SANDBOX_FACTS.partitions
        ok = len(held) == members and all(held.values()) and split
        return ok, held

    result: dict[str, set[int]] = await eventually(f"{members} eligibility members to split the partitions",
                                                   probe, 60)
    return result


async def _stream_and_verify(settings: Settings, label: str, facts: list[dict[str, Any]]) -> tuple[str, int]:
    book = f"scale-{label}-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    # One submitter: intake records the facts in the generator's order in both books, so the two
    # ledgers can be compared with each other (concurrent submitters would interleave subjects
    # differently, and a fact that depends on another subject's fact, such as an award on a listing,
    # could be decided differently — each time still exactly as the engine decides that order).
    receipts = await submit_stream(settings, book, facts, submitters=1)
    verdict = await verify_book(settings, book, receipts, since_ms)
    print(f"{label}: {verdict.facts} facts, {verdict.decisions} decisions = engine; "
          + "; ".join(verdict.notes))
    return book, since_ms


async def test_two_instances_split_the_partitions_and_decide_as_one(stack: Settings) -> None:
    facts = generated_facts(workers=30, months=12, seed=21)
    second = replace(stack, eligibility_port=stack.eligibility_port + 50)
    t0 = time.monotonic()
    services.start_service("eligibility", second, timeout=120, instance=SECOND_INSTANCE)
    try:
        held = await _split_between(stack, 2)
        print(f"two members after {time.monotonic() - t0:.1f}s: {sorted(map(sorted, held.values()))}")
        async with httpx.AsyncClient(timeout=10) as client:
            health = await get_json(client, url(second, "eligibility", "/health"))
        assert health["status"] == "ok"

        two_book, since_ms = await _stream_and_verify(stack, "two", facts)
        # The book's facts travelled on partitions of both instances: each did part of the work.
        on_topic = await topic_messages(stack, SANDBOX_FACTS.name, two_book, since_ms,
                                        until_count=lambda n: n > 0)
        used = {int(headers[PARTITION]) for headers, _ in on_topic}
        assert all(partitions & used for partitions in held.values()), (held, used)
        assert held == await _assignment(stack), "the group rebalanced during the stream"
    finally:
        services.stop_service("eligibility", second, instance=SECOND_INSTANCE)

    await _split_between(stack, 1)
    one_book, _ = await _stream_and_verify(stack, "one", facts)
    async with httpx.AsyncClient(timeout=30, headers=key_headers(stack)) as client:
        pages = [await get_json(client, url(stack, "eligibility", f"/v1/books/{book}/decisions"))
                 for book in (two_book, one_book)]
    two, one = (page["decisions"] for page in pages)
    assert len(two) == len(one) and Counter(map(norm, two)) == Counter(map(norm, one))
