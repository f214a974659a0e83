"""The local stack supervises its services: one killed with SIGKILL comes back by itself, nothing lost.

The three services run under their supervisors (as `flexledger dev up` runs them). While a stream of
facts is submitted, each is killed with SIGKILL in turn and nobody starts it again: its supervisor
does. Its supervision then counts the restart and the last exit (`killed by SIGKILL`), and the stream
is recorded once, decided as the engine decides and paid once (`faultkit.verify_book`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from faultkit import StreamStats, answered, generated_facts, submit_stream, verify_book, with_faults

from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SERVICES = ("intake", "eligibility", "payments")


@pytest.fixture
def supervised(stack: Settings) -> Iterator[Settings]:
    """The stack with its services under supervisors; afterwards unsupervised again, as the other fault
    tests (which restart services themselves) need them."""
    from flexledger.devstack import services

    try:
        for name in SERVICES:
            services.stop_service(name, stack)
            services.start_service(name, stack, timeout=120, supervised=True)
        yield stack
    finally:
        for name in SERVICES:
            services.stop_service(name, stack)


def kill_and_await(settings: Settings, name: str) -> float:
    """kill -9 the service; seconds until it is healthy again, started by its supervisor."""
    from flexledger.devstack import processes, services

    before = services.supervision(name, settings)
    assert before is not None, f"{name} is not supervised"
    t0 = time.monotonic()
    assert services.kill_service(name, settings), f"{name} was not running"
    assert processes.wait_until(lambda: services.service_healthy(name, settings), 120, 0.1), (
        f"{name} did not come back by itself")
    seconds = time.monotonic() - t0
    after = services.supervision(name, settings)
    assert after is not None and after.restarts == before.restarts + 1, (before, after)
    assert after.last_exit == "killed by SIGKILL", after
    return seconds


async def test_a_killed_service_is_restarted_by_its_supervisor(supervised: Settings) -> None:
    facts = generated_facts(30, 12, 31)
    book = f"supervised-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    stats = StreamStats()
    happened: list[str] = []

    async def kill(name: str) -> None:
        at = stats.submitted
        seconds = await asyncio.to_thread(kill_and_await, supervised, name)
        happened.append(f"kill -9 {name} at {at}/{len(facts)} answered: back by itself in {seconds:.1f}s")

    async def inject() -> None:
        """Each kill at its point of the stream, not after the previous service came back."""
        kills = []
        for fraction, name in ((0.15, "intake"), (0.40, "eligibility"), (0.65, "payments")):
            await answered(stats, int(len(facts) * fraction))
            assert stats.submitted < len(facts), f"the stream ended before {name} was killed"
            kills.append(asyncio.create_task(kill(name)))
        await asyncio.gather(*kills)

    receipts = await with_faults(
        submit_stream(supervised, book, facts, submitters=6, stats=stats, pace_per_s=30.0), inject)
    assert stats.transport_errors > 0, "intake died, yet every request was answered: no fault was injected"
    verdict = await verify_book(supervised, book, receipts, since_ms)
    happened.append(f"{verdict.facts} facts, {verdict.decisions} decisions = engine, {verdict.grants} grants "
                    f"and {verdict.clawbacks} clawbacks each with one order")
    print("\n".join(happened))
