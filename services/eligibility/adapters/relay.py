"""The outbox relay: every decision in the ledger's notification log, published to its book's decisions
topic (production books on `flexledger.eligibility.decisions.v1`, sandbox books on its `sandbox.` twin)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.decisions import DecisionV1
from services.eligibility.adapters.employers import Employers, named, needs_employers
from services.eligibility.aggregates import DecisionChain
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import BookTopics, Outgoing, PartitionKeys

EVENT_TYPE = "flexledger.eligibility.decision.v1"
SOURCE = "/flexledger/eligibility"


def to_messages(
    notification_id: int, stored: Any, keys: PartitionKeys, employers: Sequence[str] | None = None,
) -> list[Outgoing]:
    """One message per decision of a processed fact (none for other events), each naming the enterprise
    the fact names and, for a fact about a worker naming none, the worker's `employers` before it."""
    if not isinstance(stored, DecisionChain.FactProcessed):
        return []
    recorded_at = stored.timestamp.astimezone(UTC)
    enterprise = named(stored.fact, "enterprise")
    out = []
    for d in stored.decisions:
        body = DecisionV1(book=stored.book, trace_id=stored.trace_id, ledger_sequence=notification_id,
                          recorded_at=recorded_at, enterprise=enterprise,
                          employers=list(employers) if employers is not None else None, **d)
        # Rejections name no beneficiary: they stay with the subject of the rejected fact.
        key = keys(stored.book, d["beneficiary"] or d["subject"] or stored.subject)
        event = CloudEvent(
            id=d["decision_id"], source=SOURCE, type=EVENT_TYPE, subject=f"{stored.book}/{d['decision_id']}",
            time=recorded_at, traceparent=stored.traceparent, tracestate=stored.tracestate,
        )
        out.append(Outgoing(body=body, key=key, event=event, book=stored.book))
    return out


class DecisionRelay:
    """Decisions to their book's decisions topic, keyed by a pseudonym of the beneficiary and tagged with
    the decisions key, so payments believes only what eligibility published. `employers` tells who
    employs the worker of a fact naming no enterprise (payments shows a platform its workers' orders)."""

    def __init__(
        self, decisions: BookTopics, tracer: trace.Tracer, keys: PartitionKeys, mac_key: bytes,
        employers: Employers,
    ) -> None:
        self.decisions = decisions
        self.tracer = tracer
        self.keys = keys
        self.mac_key = mac_key
        self.employers = employers

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        processed = [(number, s) for number, s in batch if isinstance(s, DecisionChain.FactProcessed)]
        employers: dict[int, list[str]] = {}
        if any(needs_employers(s) for _, s in processed):  # else no thread hop, no query
            employers = await asyncio.to_thread(self.employers.before, [s for _, s in processed])
        outgoing = [m for i, (number, stored) in enumerate(processed)
                    for m in to_messages(number, stored, self.keys, employers.get(i))]
        await self.decisions.publish(self.tracer, outgoing, mac_key=self.mac_key)
