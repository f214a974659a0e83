"""Shared fixtures. `infra`: a Kafka broker and PostgreSQL for integration and e2e tests.

Where they come from (first match wins):
1. FLEXLEDGER_KAFKA_BOOTSTRAP and FLEXLEDGER_PG_HOST are set: those endpoints, `Settings.from_env()`.
2. A Docker engine answers: Kafka and PostgreSQL containers started with testcontainers.
3. Otherwise the local broker and PostgreSQL of `flexledger.devstack`, with their own state dir
   (<repo>/var/test) and ports (Kafka 29092/29093, PostgreSQL 25432, services 28081-28083), so tests
   never touch a developer's running stack. A second pytest session running at the same time takes
   the next free slot (ports +100, var/test-1), so concurrent runs never share a stack. They are
   stopped at the end of the session, unless they were already running before it or
   FLEXLEDGER_TEST_KEEP_INFRA=1 (then the next run starts in ~1 s).

The catalogue topics are created in every case. The local broker authenticates every client and
applies the access table's ACLs (docs/design/kafka-trust.md), as `flexledger dev up` does: a test
connects as a principal (`flexledger.devstack.credentials.as_principal` / `client_args`), `admin` to
inject or inspect messages, a service's own to run it. Unit tests do not use `infra`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from services.runtime.settings import PROJECT_ROOT, Settings

# Property tests check behaviour, never time: no per-example deadline (hypothesis' default of 200 ms is a
# timing assertion that a loaded machine fails).
hypothesis_settings.register_profile("flexledger", deadline=None)
hypothesis_settings.load_profile("flexledger")

SLOTS_MAX = 8
_SLOT_LOCK: Any = None  # held open for the whole session


def _claim_slot() -> int:
    """A slot of ports and state dir no other test session on this machine holds (flock'ed in the
    temporary directory), so two pytest runs at once (two checkouts, or CI beside a developer) never
    share a stack."""
    global _SLOT_LOCK
    lock_dir = Path(tempfile.gettempdir()) / "flexledger-test-slots"  # machine-wide: ports are too
    lock_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS_MAX):
        handle = open(lock_dir / f"{slot}.lock", "w")  # noqa: SIM115 - kept open to hold the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _SLOT_LOCK = handle
        return slot
    raise RuntimeError(f"all {SLOTS_MAX} test slots are taken by other pytest sessions")


def _test_settings(slot: int) -> Settings:
    offset = 100 * slot
    return Settings(
        kafka_bootstrap=f"127.0.0.1:{29092 + offset}",
        kafka_controller_port=29093 + offset,
        pg_port=25432 + offset,
        intake_port=28081 + offset,
        eligibility_port=28082 + offset,
        payments_port=28083 + offset,
        zipkin_port=29411 + offset,  # started only by the tests that view traces
        console_port=28084 + offset,  # started only by the console's stack test
        # Small, so that every test through payments spills and reads back idle lines.
        payments_book_orders_in_memory=2,
        state_dir=str(PROJECT_ROOT / "var" / ("test" if slot == 0 else f"test-{slot}")),
    )


TEST_SETTINGS = _test_settings(_claim_slot())

_REPORT: list[str] = []


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _containers(stack: ExitStack) -> Settings:
    try:
        from testcontainers.community.kafka import KafkaContainer
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.kafka import KafkaContainer  # type: ignore[no-redef]
        from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef]

    kafka: Any = stack.enter_context(KafkaContainer().with_kraft())
    pg: Any = stack.enter_context(
        PostgresContainer(
            "postgres:16-alpine",
            username=TEST_SETTINGS.pg_user,
            password=TEST_SETTINGS.pg_password,
            dbname=TEST_SETTINGS.pg_database,
        )
    )
    return replace(
        TEST_SETTINGS,
        kafka_bootstrap=kafka.get_bootstrap_server(),
        kafka_security_protocol="PLAINTEXT",  # the container's broker authenticates no one
        pg_host=pg.get_container_host_ip(),
        pg_port=int(pg.get_exposed_port(5432)),
    )


@pytest.fixture(scope="session")
def infra_source() -> str:
    """'env', 'docker' or 'local': where the `infra` fixture takes its broker and database from."""
    if os.environ.get("FLEXLEDGER_KAFKA_BOOTSTRAP") and os.environ.get("FLEXLEDGER_PG_HOST"):
        return "env"
    return "docker" if _docker_answers() else "local"


@pytest.fixture(scope="session")
def infra(infra_source: str) -> Iterator[Settings]:
    """Settings whose Kafka and PostgreSQL are up, with every catalogue topic created."""
    from flexledger import devstack

    t0 = time.monotonic()
    with ExitStack() as stack:
        if infra_source == "env":
            settings = Settings.from_env()
        elif infra_source == "docker":
            settings = _containers(stack)
        else:
            settings = TEST_SETTINGS
            was_running = devstack.is_healthy("kafka", settings) and devstack.is_healthy("postgres", settings)
            if not (was_running or os.environ.get("FLEXLEDGER_TEST_KEEP_INFRA") == "1"):
                stack.callback(devstack.stop_infra, settings)
            for name in devstack.SERVICES:  # services that tests started, stopped before the infra
                stack.callback(devstack.stop_service, name, settings)
            timings = devstack.start_infra(settings)
            _REPORT.append(
                "local infra " + ("(already running) " if was_running else "(cold start) ")
                + " ".join(f"{k}={v:.1f}s" for k, v in timings.items())
                + f" state_dir={settings.state_dir}"
            )
        if infra_source != "local":
            from flexledger.devstack.credentials import as_principal

            devstack.create_topics(as_principal(settings, "admin"))
            from flexledger.audit.roles import provision  # the local stack does it in start_infra

            provision(settings)  # the services' runtime role and the event tables (docs/design/audit.md)
        _REPORT.append(f"infra from {infra_source} ready in {time.monotonic() - t0:.1f}s: "
                       f"kafka {settings.kafka_bootstrap}, postgres {settings.pg_host}:{settings.pg_port}")
        yield settings


CLUSTER_BROKERS = 3


@pytest.fixture(scope="module")
def cluster_infra(infra_source: str) -> Iterator[Settings]:
    """A three-broker Kafka cluster (replication factor 3, min.insync.replicas=2) and a PostgreSQL of its
    own, local only, for the broker-loss fault test: a stack beside the session's one-broker `infra`
    (ports +50 within the slot, state dir `<state_dir>-cluster`), stopped at the end of the module: its
    three brokers would weigh on every later test, and a second instance of the scale-out test takes
    the same ports.
    The settings' bootstrap names every node."""
    if infra_source != "local":
        pytest.skip(f"the broker comes from {infra_source}: a cluster of local brokers cannot be run here")
    from flexledger import devstack
    from flexledger.devstack import kafka

    host, port = kafka.host_port(TEST_SETTINGS.kafka_bootstrap)
    settings = replace(
        TEST_SETTINGS,
        kafka_bootstrap=f"{host}:{port + 50}",
        kafka_controller_port=TEST_SETTINGS.kafka_controller_port + 50,
        pg_port=TEST_SETTINGS.pg_port + 50,
        intake_port=TEST_SETTINGS.intake_port + 50,
        eligibility_port=TEST_SETTINGS.eligibility_port + 50,
        payments_port=TEST_SETTINGS.payments_port + 50,
        state_dir=f"{TEST_SETTINGS.state_dir}-cluster",
    )
    t0 = time.monotonic()
    with ExitStack() as stack:
        if os.environ.get("FLEXLEDGER_TEST_KEEP_INFRA") != "1":
            stack.callback(devstack.stop_infra, settings)
        for name in devstack.SERVICES:
            stack.callback(devstack.stop_service, name, settings)
        timings = devstack.start_infra(settings, brokers=CLUSTER_BROKERS)
        _REPORT.append(f"local {CLUSTER_BROKERS}-broker cluster ready in {time.monotonic() - t0:.1f}s: "
                       + " ".join(f"{k}={v:.1f}s" for k, v in timings.items())
                       + f" state_dir={settings.state_dir}")
        yield kafka.with_cluster(settings)


@pytest.fixture(scope="module")
def ha_infra(infra_source: str) -> Iterator[Settings]:
    """PostgreSQL as a primary and a synchronous standby (`flexledger dev up --ha`), with a Kafka broker, in
    a stack of their own, local only, for the failover fault test (ports +70 within the slot, state dir
    `<state_dir>-ha`), stopped at the end of the module: after a failover its old primary is gone.
    The settings name both PostgreSQL nodes (FLEXLEDGER_PG_HOSTS), as the services started on it do."""
    if infra_source != "local":
        pytest.skip(f"the database comes from {infra_source}: a local standby cannot be run here")
    from flexledger import devstack
    from flexledger.devstack import kafka, postgres_ha

    host, port = kafka.host_port(TEST_SETTINGS.kafka_bootstrap)
    settings = replace(
        TEST_SETTINGS,
        kafka_bootstrap=f"{host}:{port + 70}",
        kafka_controller_port=TEST_SETTINGS.kafka_controller_port + 70,
        pg_port=TEST_SETTINGS.pg_port + 70,  # and its standby on + 71
        intake_port=TEST_SETTINGS.intake_port + 70,
        eligibility_port=TEST_SETTINGS.eligibility_port + 70,
        payments_port=TEST_SETTINGS.payments_port + 70,
        state_dir=f"{TEST_SETTINGS.state_dir}-ha",
    )
    t0 = time.monotonic()
    with ExitStack() as stack:
        if os.environ.get("FLEXLEDGER_TEST_KEEP_INFRA") != "1":
            stack.callback(devstack.stop_infra, settings)
        for name in devstack.SERVICES:
            stack.callback(devstack.stop_service, name, settings)
        timings = devstack.start_infra(settings, ha=True)
        steps = " ".join(f"{k}={v:.1f}s" for k, v in timings.items())
        _REPORT.append(f"local PostgreSQL primary and synchronous standby in {time.monotonic() - t0:.1f}s: "
                       f"{steps} state_dir={settings.state_dir}")
        yield postgres_ha.with_standby(settings)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _REPORT:
        terminalreporter.write_line(line)
