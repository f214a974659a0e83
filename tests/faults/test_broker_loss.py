"""A broker of a three-node cluster dies (kill -9) in the middle of a stream at load and comes back:
nothing accepted is lost, nothing is decided or paid twice.

The cluster (`cluster_infra`: replication factor 3, min.insync.replicas=2, every node a KRaft voter
with the same SCRAM users and ACLs) carries the services' topics; their producers are idempotent with
acks=all. While submitters send the generator's timeline, the node leading most partitions of the
book's facts topic is killed: its partitions get new leaders among the two in-sync followers, the
services' clients follow them, the node comes back and catches up into every ISR. Then
`faultkit.verify_book` holds the stack to the engine's output, as for the other faults.

What it prints: how long the cluster took to elect new leaders, how long until the clients followed
(every fact recorded before the kill, and one after, decided), and until the node was back in sync.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from faultkit import (
    StreamStats,
    answered,
    audit_verify,
    generated_facts,
    get_json,
    key_headers,
    submit_stream,
    url,
    verify_book,
)

from contracts.topics import ALL_TOPICS, FACTS, topic_for
from flexledger.devstack import kafka
from flexledger.devstack.credentials import as_principal
from services.runtime.kafka import client_security
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBMITTERS = 6
PACE_PER_S = 60.0  # facts/s offered: twice the other fault tests' pace, and it outlasts the election
KILL_AT = 0.25  # of the facts answered
DOWN_S = 5.0  # the node stays dead at least this long after its partitions moved
PROBE_TIMEOUT_MS = 5000


@dataclass
class Outage:
    victim: int = 0
    led: list[str] = field(default_factory=list)  # "topic/partition" the victim led when it died
    at_fact: int = 0
    elected_s: float = 0.0
    followed_s: float = 0.0
    back_in_sync_s: float = 0.0
    restarted_mid_stream: bool = False


def _admin(settings: Settings) -> AIOKafkaAdminClient:
    client = as_principal(settings, "admin")
    return AIOKafkaAdminClient(bootstrap_servers=client.kafka_bootstrap, request_timeout_ms=PROBE_TIMEOUT_MS,
                               **client_security(client))


async def _partitions(admin: AIOKafkaAdminClient) -> dict[str, tuple[int, frozenset[int]]]:
    """Every catalogue partition's (leader, ISR), as "topic/partition"."""
    described = await admin.describe_topics([t.name for t in ALL_TOPICS])
    return {
        f"{t['topic']}/{p['partition']}": (p["leader"], frozenset(p["isr"]))
        for t in described for p in t["partitions"]
    }


async def _until(what: str, probe: Callable[[], Awaitable[bool]], timeout_s: float = 180.0) -> float:
    """Seconds until `probe()` holds (a probe that fails while the cluster is changing counts as no)."""
    t0 = time.monotonic()
    while True:
        try:
            if await probe():
                return time.monotonic() - t0
        except Exception:  # a metadata request to the dead node, or one that timed out
            pass
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def _progress(client: httpx.AsyncClient, settings: Settings, service: str, book: str) -> int:
    seen = await get_json(client, url(settings, service, f"/v1/books/{book}/progress"))
    return int(seen["last_seq"]) if seen else 0


async def _lose_a_broker(
    settings: Settings, book: str, stats: StreamStats, total: int, outage: Outage
) -> None:
    """Once KILL_AT of the facts are answered: kill -9 the node leading most of the book's facts
    partitions, measure the election and the clients following, restart it, wait until it is in sync."""
    facts_topic = topic_for(FACTS, book, settings.production_book_set).name
    await answered(stats, int(total * KILL_AT))
    admin = _admin(settings)
    await admin.start()
    try:
        before = await _partitions(admin)
        leaders = Counter(leader for name, (leader, _) in before.items()
                          if name.startswith(f"{facts_topic}/"))
        outage.victim = min(leaders, key=lambda n: (-leaders[n], n))
        outage.led = sorted(name for name, (leader, _) in before.items() if leader == outage.victim)
        node = next(n for n in kafka.nodes(settings) if n.node_id == outage.victim)
        async with httpx.AsyncClient(timeout=10.0, headers=key_headers(settings)) as client:
            recorded_at_kill = await _progress(client, settings, "intake", book)
            outage.at_fact = stats.submitted
            assert await asyncio.to_thread(kafka.kill_node, settings, node), f"{node.part} was not running"
            t_kill = time.monotonic()

            async def moved() -> bool:
                now = await _partitions(admin)
                return all(now[name][0] not in (outage.victim, -1) for name in outage.led)

            outage.elected_s = await _until(f"new leaders for the {len(outage.led)} partitions of node "
                                            f"{outage.victim}", moved)

            async def followed() -> bool:
                return await _progress(client, settings, "eligibility", book) > recorded_at_kill

            await _until("eligibility to decide a fact recorded after the kill", followed)
            outage.followed_s = time.monotonic() - t_kill

        await asyncio.sleep(DOWN_S)
        outage.restarted_mid_stream = stats.submitted < total
        t_restart = time.monotonic()
        await asyncio.to_thread(kafka.start_node, settings, node)

        async def in_sync() -> bool:
            return all(outage.victim in isr for _, isr in (await _partitions(admin)).values())

        await _until(f"node {outage.victim} back in every ISR", in_sync)
        outage.back_in_sync_s = time.monotonic() - t_restart
    finally:
        await admin.close()


async def test_losing_a_broker_under_load_loses_nothing(cluster_stack: Settings) -> None:
    settings = cluster_stack
    facts = generated_facts(60, 12, 14)
    facts += [dict(f) for f in facts[5::40]]  # identical resubmissions: no-ops
    book = f"faults-broker-loss-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    stats, outage = StreamStats(), Outage()

    t0 = time.monotonic()
    fault = asyncio.create_task(_lose_a_broker(settings, book, stats, len(facts), outage))
    receipts = await submit_stream(settings, book, facts, submitters=SUBMITTERS, stats=stats,
                                   pace_per_s=PACE_PER_S)
    streamed_s = time.monotonic() - t0
    await fault
    assert outage.at_fact < len(facts), "the broker died after the stream had ended"
    assert outage.led, f"node {outage.victim} led no partition: its loss moved no leader"

    t_verify = time.monotonic()
    verdict = await verify_book(settings, book, receipts, since_ms)
    code, output = await asyncio.to_thread(audit_verify, settings, book)
    assert code in (None, 0), f"audit verify failed after the broker's loss:\n{output}"
    print("\n".join([
        f"kill -9 node {outage.victim} at {outage.at_fact}/{len(facts)} answered; it led {len(outage.led)} "
        f"partitions",
        f"new leaders elected in {outage.elected_s:.1f}s; clients followed (eligibility decided a fact "
        f"recorded after the kill) {outage.followed_s:.1f}s after the kill",
        f"restarted {'mid-stream' if outage.restarted_mid_stream else 'after the stream'}; back in every "
        f"ISR {outage.back_in_sync_s:.1f}s later",
        f"{len(facts)} submissions answered in {streamed_s:.1f}s, {stats.retries} retries, statuses "
        f"{dict(stats.statuses)}",
        f"verified in {time.monotonic() - t_verify:.1f}s: {verdict.facts} facts recorded, "
        f"{verdict.decisions} decisions = engine, {verdict.grants} grants and {verdict.clawbacks} clawbacks "
        f"each with one order; " + "; ".join(verdict.notes),
        f"audit verify: {'exit 0' if code == 0 else output}",
    ]))
