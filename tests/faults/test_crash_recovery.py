"""Crashes in the middle of a stream of facts: nothing accepted is lost, nothing is decided or paid twice.

While several submitters send the generator's timeline (registrations, monthly reports, corrections,
retractions, contributions, refunds, trainings, awards, identical resubmissions and invalid facts),
a part of the stack fails and comes back:

- intake, eligibility and payments are killed with SIGKILL in turn and restarted;
- the Kafka broker is stopped and restarted;
- PostgreSQL is restarted.

A submitter that gets no answer (intake died, 503 while it starts, 500 while the database is away)
sends the same fact again with the same id: that is the client's contract, and intake's idempotency
makes it safe. Afterwards `faultkit.verify_book` holds the stack to the engine's output for the facts
in intake's order (see its module docstring for every check).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from faultkit import (
    Receipt,
    StreamStats,
    answered,
    audit_verify,
    crash_and_restart,
    generated_facts,
    restart_kafka,
    restart_postgres,
    submit_stream,
    verify_book,
    with_faults,
)

from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SUBMITTERS = 6
PACE_PER_S = 30.0  # facts/s offered: slow enough that the stream outlasts each restart (5-10 s)


def _stream(workers: int, months: int, seed: int) -> list[dict[str, object]]:
    facts = generated_facts(workers, months, seed)
    # Identical resubmissions of some facts, after the originals (same subject, so same lane): no-ops.
    return facts + [dict(f) for f in facts[5::40]]


async def _run(
    settings: Settings, label: str, facts: list[dict[str, object]],
    faults: list[tuple[float, str, Callable[[], float]]],
) -> tuple[str, list[Receipt], int, StreamStats, list[str]]:
    """Submit `facts` to a fresh book (paced, so that the stream outlasts the restarts) while the
    faults happen in order, each once `fraction` of the facts were answered; return the book,
    receipts, start time (ms) and what happened."""
    book = f"faults-{label}-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    stats = StreamStats()
    happened: list[str] = []
    midstream: list[bool] = []

    async def inject() -> None:
        for fraction, what, fault in faults:
            await answered(stats, int(len(facts) * fraction))
            at = stats.submitted
            midstream.append(at < len(facts))
            seconds = await asyncio.to_thread(fault)
            happened.append(f"{what} at {at}/{len(facts)} answered: back in {seconds:.1f}s")

    t0 = time.monotonic()
    receipts = await with_faults(
        submit_stream(settings, book, facts, submitters=SUBMITTERS, stats=stats, pace_per_s=PACE_PER_S),
        inject)
    assert all(midstream), f"a fault came after the stream had ended: {happened}"
    happened.append(
        f"{len(facts)} submissions answered in {time.monotonic() - t0:.1f}s, {stats.retries} retries "
        f"({stats.transport_errors} without an answer), statuses {dict(stats.statuses)}"
    )
    return book, receipts, since_ms, stats, happened


async def _check(
    settings: Settings, book: str, receipts: list[Receipt], since_ms: int, happened: list[str]
) -> None:
    t0 = time.monotonic()
    verdict = await verify_book(settings, book, receipts, since_ms)
    happened.append(
        f"verified in {time.monotonic() - t0:.1f}s: {verdict.facts} facts recorded, {verdict.decisions} "
        f"decisions = engine, {verdict.grants} grants and {verdict.clawbacks} clawbacks each with one "
        f"order on the orders topic; " + "; ".join(verdict.notes)
    )
    code, output = await asyncio.to_thread(audit_verify, settings, book)
    if code is None:
        happened.append(f"audit verify: {output}")
    else:
        assert code == 0, f"audit verify failed after recovery:\n{output}"
        happened.append("audit verify --book: exit 0; " + " ".join(output.split())[-300:])
    print("\n".join(happened))


async def test_services_killed_in_turn_lose_nothing_and_double_nothing(stack: Settings) -> None:
    facts = _stream(workers=30, months=12, seed=11)
    book, receipts, since_ms, stats, happened = await _run(stack, "kill9", facts, [
        (0.15, "kill -9 intake", lambda: crash_and_restart(stack, "intake")),
        (0.40, "kill -9 eligibility", lambda: crash_and_restart(stack, "eligibility")),
        (0.65, "kill -9 payments", lambda: crash_and_restart(stack, "payments")),
    ])
    assert stats.transport_errors > 0, "intake died, yet every request was answered: no fault was injected"
    await _check(stack, book, receipts, since_ms, happened)


async def test_broker_restart_loses_nothing(stack: Settings, local_infra: None) -> None:
    facts = _stream(workers=20, months=12, seed=12)
    book, receipts, since_ms, _, happened = await _run(stack, "kafka", facts, [
        (0.3, "Kafka stopped and restarted", lambda: restart_kafka(stack)),
    ])
    await _check(stack, book, receipts, since_ms, happened)


async def test_database_restart_loses_nothing(stack: Settings, local_infra: None) -> None:
    facts = _stream(workers=20, months=12, seed=13)
    book, receipts, since_ms, _, happened = await _run(stack, "postgres", facts, [
        (0.3, "PostgreSQL restarted", lambda: restart_postgres(stack)),
    ])
    await _check(stack, book, receipts, since_ms, happened)
