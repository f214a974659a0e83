"""Intake's own Prometheus metrics (the runtime's are in services/runtime/metrics.py): facts by channel
and outcome — accepted, rejected, duplicate (an identical resubmission), conflict (an id reused for
other content); from agency feeds also dead_lettered (unreadable) and redelivered. Counted once per
recorded group or message, never with a fact id or an identity number."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence

from prometheus_client import Counter

from services.intake.application import Result
from services.runtime.metrics import DEAD_LETTERS

FACTS = Counter("flexledger_intake_facts_total", "Facts submitted, by channel (http, agency_feed) and "
                "outcome (accepted, rejected, duplicate, conflict, dead_lettered, redelivered).",
                ["channel", "outcome"])


def outcome_of(result: Result) -> str:
    if result.replayed:
        return "duplicate"
    if result.refused:
        return "refused"
    if result.outcome == "accepted":
        return "accepted"
    return "conflict" if result.conflict else "rejected"


def count_http(results: Sequence[Result]) -> None:
    """The results of one recorded group or bulk request."""
    for outcome, n in Tally(outcome_of(result) for result in results).items():
        FACTS.labels("http", outcome).inc(n)


def count_agency_message(topic: str, outcome: str) -> None:
    """What became of one agency message (`IntakeApplication.take_in_agency_message`); a rejected or
    unreadable one is kept as a dead letter too."""
    FACTS.labels("agency_feed", outcome.replace("-", "_")).inc()
    if outcome in ("rejected", "dead-lettered"):
        DEAD_LETTERS.labels("intake", topic, "rejected" if outcome == "rejected" else "unreadable").inc()
