"""Eligibility's publishers for other agencies and outside parties: the pseudonymised statistics and
the signed ledger checkpoints. Registered on the service's broker (and on the AsyncAPI document's)."""

from __future__ import annotations

from typing import NamedTuple

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher

from contracts.messages import CheckpointV1, StatisticV1
from contracts.topics import CHECKPOINTS, STATISTICS


class AuditPublishers(NamedTuple):
    statistics: DefaultPublisher
    checkpoints: DefaultPublisher


def add_audit_publishers(broker: KafkaBroker) -> AuditPublishers:
    statistics = broker.publisher(
        STATISTICS.name,
        title=STATISTICS.name,
        schema=StatisticV1,
        description=f"{STATISTICS.purpose}. Key: <book>/<pseudonym>. Not HR-internal: no identity "
        "number or name, only an HMAC pseudonym. CloudEvents binary mode "
        "(type flexledger.eligibility.statistic.v1, ce_id = the decision id).",
    )
    checkpoints = broker.publisher(
        CHECKPOINTS.name,
        title=CHECKPOINTS.name,
        schema=CheckpointV1,
        description=f"{CHECKPOINTS.purpose}. Key: the ledger ('eligibility'). For outside parties: "
        "verify with the public key (flexledger audit verify-checkpoint). CloudEvents "
        "binary mode (type flexledger.audit.checkpoint.v1).",
    )
    return AuditPublishers(statistics, checkpoints)
