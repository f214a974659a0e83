"""Eligibility's own Prometheus metrics (the runtime's are in services/runtime/metrics.py): facts by
outcome, decisions by kind and programme, and the age of the last signed checkpoint.

`books` is `production` or `sandbox` (from the topic a fact came on: contracts.topics.topic_for), so
that scenario runs and tests never look like the city's figures. Counted once per batch."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge

from contracts.topics import SANDBOX_PREFIX
from services.eligibility.application import FactOutcome
from services.eligibility.domain.decision import Decision

FACTS = Counter("flexledger_eligibility_facts_total", "Facts consumed, by outcome (processed, or "
                "already processed: redelivered, republished).", ["books", "outcome"])
DECISIONS = Counter("flexledger_eligibility_decisions_total", "Decisions recorded, by kind and programme.",
                    ["books", "kind", "programme"])
DECIDED_FEN = Counter("flexledger_eligibility_decided_fen_total", "Money of the decisions recorded (grants "
                      "and clawbacks), in fen, by kind and programme.", ["books", "kind", "programme"])
CHECKPOINT_AGE = Gauge("flexledger_eligibility_checkpoint_age_seconds", "Seconds since the ledger's last "
                       "signed checkpoint (since the service started when it has signed none yet).")


def books_of(topic: str) -> str:
    return "sandbox" if topic.startswith(SANDBOX_PREFIX) else "production"


def count_batch(records: Sequence[Any], results: Sequence[tuple[FactOutcome, list[Decision]]]) -> None:
    """One batch's facts (its Kafka records, in order) and what became of them."""
    facts: Tally[tuple[str, str]] = Tally()
    decisions: Tally[tuple[str, str, str]] = Tally()
    money: Tally[tuple[str, str, str]] = Tally()
    for record, (outcome, decided) in zip(records, results, strict=True):
        books = books_of(record.topic)
        facts[books, str(outcome)] += 1
        for decision in decided:
            labels = (books, decision.kind, decision.program or "none")
            decisions[labels] += 1
            if decision.amount_fen:
                money[labels] += decision.amount_fen
    for (books, what), n in facts.items():
        FACTS.labels(books, what).inc(n)
    for labels, n in decisions.items():
        DECISIONS.labels(*labels).inc(n)
    for labels, fen in money.items():
        DECIDED_FEN.labels(*labels).inc(fen)
