"""CPU cost of the services' metrics per fact, measured on the counting code itself (CPU clock), so
that the figure does not drown in the end-to-end benchmark's run-to-run noise (±15 %).

Per fact, as the bench's bulk path pays it: intake counts each recorded group's results
(`count_http`), the consumers record each batch's offsets (`ConsumerProgress`), eligibility counts each
batch's outcomes and decisions (`count_batch`), the outbox followers observe each batch's size, and
payments counts each folded event. A single POST also passes the request middleware once.

    .venv/bin/python bench/metrics_cost.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.eligibility.adapters.metrics import count_batch
from services.eligibility.application import FactOutcome
from services.eligibility.domain.decision import Decision
from services.intake.adapters.metrics import count_http
from services.intake.application import Result
from services.runtime.metrics import OUTBOX_BATCH, ConsumerProgress, HttpMetricsMiddleware

BATCH = 500  # records per consumed batch and per outbox batch (BATCH_MAX_RECORDS, BATCH_LIMIT)
DECISIONS_PER_FACT = 235 / 3082  # the bench's ratio of decisions to facts (README figures)
REPEAT = 400


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


def per_fact_us(what: Callable[[], Any], facts_per_call: int) -> float:
    what()  # the labels' children exist from here on, as in a running service
    start = time.process_time()
    for _ in range(REPEAT):
        what()
    return (time.process_time() - start) / REPEAT / facts_per_call * 1e6


def main() -> None:
    records = [Record("sandbox.flexledger.intake.facts.v1", i % 6, i) for i in range(BATCH)]
    grant = Decision(decision_id="d", rule_set="wuxi-2021-26/1", after="f", kind="grant",
                     program="employment_service", amount_fen=100_000)
    every = round(1 / DECISIONS_PER_FACT)
    results = [(FactOutcome.PROCESSED, [grant] if i % every == 0 else []) for i in range(BATCH)]
    accepted = [Result("accepted", f"f{i}", i) for i in range(BATCH)]
    progress = ConsumerProgress()
    batch_sizes = OUTBOX_BATCH.labels("kafka:flexledger.intake.facts.v1")
    batch = tuple(records)

    def consumed() -> None:
        progress.receive(batch)
        progress.record(batch)

    costs = {
        "intake: count a recorded group": per_fact_us(lambda: count_http(accepted), BATCH),
        "consumers: record a batch's offsets (x2: eligibility, payments)":
            2 * per_fact_us(consumed, BATCH),
        "eligibility: count a batch's outcomes and decisions": per_fact_us(
            lambda: count_batch(records, results), BATCH),
        "outbox: observe a batch's size (x3 followers per fact)":
            3 * per_fact_us(lambda: batch_sizes.observe(BATCH), BATCH),
    }
    total = sum(costs.values())
    for what, us in costs.items():
        print(f"{us:8.3f} µs per fact  {what}")
    print(f"{total:8.3f} µs per fact  in all on the bulk path ({total / 550:.2%} of 0.55 ms)")
    print(f"{request_us():8.3f} µs per request  the request middleware (a single POST: one fact)")


def request_us() -> float:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201})

    async def send(_: Any) -> None:
        return None

    async def receive() -> Any:
        return {}

    middleware = HttpMetricsMiddleware(app, "intake")
    scope = {"type": "http", "path": "/v1/facts", "method": "POST"}

    async def requests(n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            await middleware(scope, receive, send)
        return time.process_time() - start

    async def bare(n: int) -> float:
        start = time.process_time()
        for _ in range(n):
            await app(scope, receive, send)
        return time.process_time() - start

    n = 50_000
    with_middleware = asyncio.run(requests(n))
    without = asyncio.run(bare(n))
    return (with_middleware - without) / n * 1e6


if __name__ == "__main__":
    main()
