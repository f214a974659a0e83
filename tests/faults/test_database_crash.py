"""PostgreSQL killed with SIGKILL in the middle of a stream: the devstack sees it is down (not fooled by a
postmaster.pid whose process is gone or a zombie), starts it again, and nothing accepted is lost or
doubled (`faultkit.verify_book`)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from faultkit import StreamStats, answered, generated_facts, submit_stream, verify_book, with_faults

from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def crash_and_restart_postgres(settings: Settings) -> float:
    """kill -9 the postmaster, then `start_postgres` as `flexledger dev up` would; seconds until it runs."""
    from flexledger.devstack import postgres, processes

    pid = postgres.postgres_pid(settings)
    assert pid is not None, "PostgreSQL was not running"
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert processes.wait_until(lambda: not postgres.is_running(settings), 10, 0.05), (
        "a killed postmaster still counts as running")
    postgres.start_postgres(settings)
    assert postgres.is_running(settings)
    return time.monotonic() - t0


async def test_database_killed_mid_stream_is_restarted_and_loses_nothing(
    stack: Settings, local_infra: None,
) -> None:
    facts = generated_facts(20, 12, 41)
    book = f"pgcrash-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    stats = StreamStats()
    happened: list[str] = []

    async def inject() -> None:
        await answered(stats, len(facts) // 3)
        at = stats.submitted
        seconds = await asyncio.to_thread(crash_and_restart_postgres, stack)
        happened.append(f"kill -9 postmaster at {at}/{len(facts)} answered: running again in {seconds:.1f}s")

    receipts = await with_faults(submit_stream(stack, book, facts, stats=stats, pace_per_s=30.0), inject)
    verdict = await verify_book(stack, book, receipts, since_ms)
    happened.append(f"{verdict.facts} facts, {verdict.decisions} decisions = engine, {verdict.grants} grants "
                    f"and {verdict.clawbacks} clawbacks each with one order")
    print("\n".join(happened))
