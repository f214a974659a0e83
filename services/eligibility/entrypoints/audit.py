"""Eligibility's publishers for other agencies and outside parties: the pseudonymised statistics (a
sandbox book's on the statistics topic's sandbox twin) and the signed ledger checkpoints. Registered on
the service's broker (and on the AsyncAPI document's)."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher

from contracts.messages import CheckpointV1, StatisticV1
from contracts.topics import CHECKPOINTS, STATISTICS
from services.runtime.publishing import BookTopics


class AuditPublishers(NamedTuple):
    statistics: BookTopics
    checkpoints: DefaultPublisher


def add_audit_publishers(broker: KafkaBroker, production_books: Collection[str]) -> AuditPublishers:
    statistics = BookTopics.declare(
        broker, STATISTICS, production_books, schema=StatisticV1,
        description=f"{STATISTICS.purpose}. Key: <book>/<pseudonym>. Not HR-internal: no identity "
        "number or name, only an HMAC pseudonym. CloudEvents binary mode "
        "(type flexledger.eligibility.statistic.v1, ce_id = the decision id).",
    )
    checkpoints = broker.publisher(
        CHECKPOINTS.name,
        title=CHECKPOINTS.name,
        schema=CheckpointV1,
        description=f"{CHECKPOINTS.purpose}: the whole log, every book (production and sandbox), naming "
        "none. Key: the ledger ('eligibility'). For outside parties: verify with the public key "
        "(flexledger audit verify-checkpoint). CloudEvents binary mode "
        "(type flexledger.audit.checkpoint.v1).",
    )
    return AuditPublishers(statistics, checkpoints)
