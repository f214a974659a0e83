"""The development stack without Docker: a local Kafka broker, PostgreSQL and the three services.

`flexledger dev ...` is the command line over this package; tests and benchmarks call it directly:

    settings = Settings.from_env()
    start_infra(settings)                 # Kafka (KRaft, one node) + PostgreSQL, topics created
    start_infra(settings, brokers=3)      # the same with a three-node Kafka cluster
    start_service("intake", settings)     # detached `python -m services.intake`, waits for /health
    stop_infra(settings)

Every part keeps its pid file under `<state_dir>/run`, its log under `<state_dir>/logs` and its data
under `<state_dir>` (PostgreSQL's data may move to /var/tmp, see `flexledger.devstack.postgres`).
"""

from __future__ import annotations

from flexledger.devstack.errors import DevstackError
from flexledger.devstack.health import is_healthy, wait_healthy
from flexledger.devstack.jars import ensure_kafka_jars
from flexledger.devstack.kafka import create_topics
from flexledger.devstack.services import SERVICES, start_service, stop_service
from flexledger.devstack.stack import (
    PARTS,
    PartStatus,
    down,
    start_infra,
    status,
    stop_infra,
    up,
)

__all__ = [
    "PARTS",
    "SERVICES",
    "DevstackError",
    "PartStatus",
    "create_topics",
    "down",
    "ensure_kafka_jars",
    "is_healthy",
    "start_infra",
    "start_service",
    "status",
    "stop_infra",
    "stop_service",
    "up",
    "wait_healthy",
]
