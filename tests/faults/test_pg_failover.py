"""PostgreSQL's primary dies (kill -9) in the middle of a stream and its synchronous standby is promoted
(`pg_ctl promote`): the services find the new primary themselves, nothing acknowledged is lost and
nothing is recorded, decided or paid twice.

The pair (`ha_infra`, `flexledger dev up --ha`): the primary names the standby in
`synchronous_standby_names`, so a commit returns only once the standby has its WAL; the services name
both nodes with `target_session_attrs=read-write` (FLEXLEDGER_PG_HOSTS), so they skip the standby until
it is promoted, and their retries after a lost connection (as after test_database_crash's restart) land
on it. Then `faultkit.verify_book` holds the stack to the engine's output, and `audit verify` checks the
ledger on the new primary.

What it prints: how long the postmaster took to die, the promotion, until intake acknowledged a fact
again, and until eligibility decided a fact recorded after the kill.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
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

from flexledger.devstack import postgres, postgres_ha, processes
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBMITTERS = 6
PACE_PER_S = 30.0
KILL_AT = 1 / 3  # of the facts answered
ANSWER_TIMEOUT_S = 180.0


@dataclass
class Failover:
    old_primary: int = 0
    new_primary: int = 0
    at_fact: int = 0
    recorded_at_kill: int = 0
    dead_s: float = 0.0  # kill -9 until the postmaster no longer runs
    promoted_s: float = 0.0  # kill until the standby accepts writes (pg_ctl promote -w returned)
    acknowledged_s: float = 0.0  # kill until intake acknowledged a fact again
    followed_s: float = 0.0  # kill until eligibility decided a fact recorded after the kill


async def _progress(client: httpx.AsyncClient, settings: Settings, service: str, book: str) -> int:
    seen = await get_json(client, url(settings, service, f"/v1/books/{book}/progress"))
    return int(seen["last_seq"]) if seen else 0


def _kill_primary_and_promote(settings: Settings, failover: Failover) -> float:
    """kill -9 the primary's postmaster, then promote the standby; returns the monotonic time of the kill."""
    primary = postgres_ha.primary_node(settings)
    assert primary is not None
    roles = {n.node: n.role for n in postgres_ha.status(settings)}
    assert roles == {primary: "primary", 3 - primary: "standby"}, roles
    failover.old_primary, failover.new_primary = primary, 3 - primary
    pid = postgres.postgres_pid(settings, primary)
    assert pid is not None
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert processes.wait_until(lambda: not postgres.is_running(settings, primary), 10, 0.05)
    failover.dead_s = time.monotonic() - t_kill
    postgres_ha.promote(settings, failover.new_primary)
    failover.promoted_s = time.monotonic() - t_kill
    return t_kill


async def _fail_over(
    settings: Settings, book: str, stats: StreamStats, total: int, failover: Failover,
) -> None:
    await answered(stats, int(total * KILL_AT))
    async with httpx.AsyncClient(timeout=30.0, headers=key_headers(settings)) as client:
        failover.recorded_at_kill = await _progress(client, settings, "intake", book)
        failover.at_fact = stats.submitted
        t_kill = await asyncio.to_thread(_kill_primary_and_promote, settings, failover)
        answered_at_promotion = stats.submitted
        await asyncio.wait_for(answered(stats, answered_at_promotion + 1), ANSWER_TIMEOUT_S)
        failover.acknowledged_s = time.monotonic() - t_kill
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while await _progress(client, settings, "eligibility", book) <= failover.recorded_at_kill:
            assert time.monotonic() < deadline, "eligibility decided nothing recorded after the failover"
            await asyncio.sleep(0.1)
        failover.followed_s = time.monotonic() - t_kill


async def test_primary_killed_mid_stream_standby_promoted_loses_nothing(ha_stack: Settings) -> None:
    settings = ha_stack
    facts = generated_facts(30, 12, 45)
    facts += [dict(f) for f in facts[7::40]]  # identical resubmissions: no-ops
    book = f"faults-pg-failover-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    stats, failover = StreamStats(), Failover()

    t0 = time.monotonic()
    fault = asyncio.create_task(_fail_over(settings, book, stats, len(facts), failover))
    receipts = await submit_stream(settings, book, facts, submitters=SUBMITTERS, stats=stats,
                                   pace_per_s=PACE_PER_S)
    streamed_s = time.monotonic() - t0
    await fault
    assert failover.at_fact < len(facts), "the primary died after the stream had ended"
    roles = {n.node: n.role for n in postgres_ha.status(settings)}
    assert roles == {failover.old_primary: "down", failover.new_primary: "primary"}, roles

    t_verify = time.monotonic()
    verdict = await verify_book(settings, book, receipts, since_ms)
    code, output = await asyncio.to_thread(audit_verify, settings, book)
    assert code in (None, 0), f"audit verify failed after the failover:\n{output}"
    print("\n".join([
        f"kill -9 the primary (node {failover.old_primary}) at {failover.at_fact}/{len(facts)} answered, "
        f"{failover.recorded_at_kill} recorded: postmaster gone in {failover.dead_s:.2f}s",
        f"node {failover.new_primary} promoted (pg_ctl promote -w returned) {failover.promoted_s:.2f}s "
        f"after the kill",
        f"intake acknowledged a fact again {failover.acknowledged_s:.1f}s after the kill; eligibility "
        f"decided a fact recorded after it {failover.followed_s:.1f}s after the kill",
        f"{len(facts)} submissions answered in {streamed_s:.1f}s, {stats.retries} retries, "
        f"{stats.transport_errors} transport errors, statuses {dict(stats.statuses)}",
        f"verified in {time.monotonic() - t_verify:.1f}s: {verdict.facts} facts recorded, "
        f"{verdict.decisions} decisions = engine, {verdict.grants} grants and {verdict.clawbacks} clawbacks "
        f"each with one order; " + "; ".join(verdict.notes),
        f"audit verify: {'exit 0' if code == 0 else output}",
    ]))
