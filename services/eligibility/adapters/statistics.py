"""The statistics relay: every new-employment statistic the ledger decided (and every revocation),
published for the Statistics Bureau on flexledger.eligibility.statistics.v1 from the notification log
(a sandbox book's on its `sandbox.` twin, which the bureau cannot read).

The bureau counts people, it does not need to know who they are: a message names the worker only by a
keyed pseudonym, HMAC-SHA256 under `Settings.pseudonym_key` (a key the bureau never gets), so it cannot
be reversed by trying every identity number. The same worker always gets the same pseudonym, so a
revocation meets its statistic. Nothing else about the person is sent.
"""

from __future__ import annotations

from datetime import UTC

from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import StatisticV1
from services.eligibility.aggregates import DecisionChain
from services.runtime.access.pseudonyms import pseudonym
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import BookTopics, Outgoing

EVENT_TYPE = "flexledger.eligibility.statistic.v1"
SOURCE = "/flexledger/eligibility"
KINDS = frozenset({"statistic", "statistic_revoked"})



def to_messages(stored: object, key: bytes) -> list[Outgoing]:
    if not isinstance(stored, DecisionChain.FactProcessed):
        return []
    out = []
    for d in stored.decisions:
        if d["kind"] not in KINDS or not d.get("subject") or not d.get("month"):
            continue
        recorded_at = stored.timestamp.astimezone(UTC)
        body = StatisticV1(
            book=stored.book,
            statistic_id=d["decision_id"],
            kind=d["kind"],
            pseudonym=pseudonym(key, d["subject"]),
            month=d["month"],
            rule_set=d["rule_set"],
            recorded_at=recorded_at,
        )
        event = CloudEvent(
            id=d["decision_id"],
            source=SOURCE,
            type=EVENT_TYPE,
            subject=f"{stored.book}/{d['decision_id']}",
            time=recorded_at,
            traceparent=stored.traceparent,
            tracestate=stored.tracestate,
        )
        out.append(Outgoing(body=body, key=body.key(), event=event, book=stored.book))
    return out


class StatisticsRelay:
    def __init__(self, statistics: BookTopics, tracer: trace.Tracer, key: bytes) -> None:
        self.statistics = statistics
        self.tracer = tracer
        self.key = key

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch for m in to_messages(stored, self.key)]
        if outgoing:
            await self.statistics.publish(self.tracer, outgoing)
