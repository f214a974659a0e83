"""The whole stack: infra (Kafka + PostgreSQL), the three services and the console, up, down and status."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from flexledger.devstack import console, kafka, kafka_admin, postgres, postgres_ha, services, standby, zipkin
from flexledger.devstack.credentials import as_principal
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.health import INFRA, VIEWER, address, is_healthy, part_pid, wait_healthy
from flexledger.kafka_access import ADMIN
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

PARTS: tuple[str, ...] = (*INFRA, VIEWER, *services.SERVICES, console.PART)


@dataclass(frozen=True)
class PartStatus:
    """`health`: up or down for the infra; a service's own status (ok, degraded, down, starting) with
    its `reasons`, or down when it does not answer."""

    part: str
    address: str
    pid: int | None
    healthy: bool
    health: str = ""
    reasons: tuple[str, ...] = ()
    supervised: bool = False
    restarts: int = 0  # by its supervisor
    last_exit: str = ""  # the last exit status its supervisor saw ("killed by SIGKILL"), and when
    role: str = ""  # one of an active and standby pair: active or standby (flexledger.devstack.standby)


def start_infra(
    settings: Settings | None = None, *, timeout: float = 120.0, brokers: int = 1, ha: bool = False,
) -> dict[str, float]:
    """Start Kafka (`brokers` nodes) and PostgreSQL (with `ha`, a primary and its synchronous standby:
    flexledger.devstack.postgres_ha) (idempotent), create the catalogue topics (replicated by the
    cluster's size), the principals' SCRAM users and the ACLs of the access table; return seconds per step.

    The brokers' JVMs boot while PostgreSQL starts. Keys: kafka, postgres, topics, access, total.
    """
    settings = settings or Settings.from_env()
    t0 = time.monotonic()
    kafka.use_brokers(settings, brokers)
    postgres_ha.use_standby(settings, ha)
    kafka.start_kafka(settings)
    if ha:
        postgres_ha.start(settings, timeout=timeout)
    else:
        postgres.start_postgres(settings, timeout=timeout)
    _provision_roles(postgres_ha.with_standby(settings))
    pg_seconds = time.monotonic() - t0
    wait_healthy(kafka.PART, settings, timeout)
    kafka_seconds = time.monotonic() - t0
    created = kafka.create_topics(as_principal(kafka.with_cluster(settings), ADMIN))
    topics_done = time.monotonic() - t0
    users, changes = provision_access(settings)
    total = time.monotonic() - t0
    timings = {
        "kafka": kafka_seconds, "postgres": pg_seconds, "topics": topics_done - kafka_seconds,
        "access": total - topics_done, "total": total,
    }
    log.info("infra up in %.1fs (PostgreSQL %.1fs, Kafka %.1fs on %d node(s), %d topics, %d SCRAM users "
             "and %d ACLs created, %d ACLs removed) state in %s", total, pg_seconds, kafka_seconds, brokers,
             len(created), len(users), len(changes.added), len(changes.removed), settings.state_dir)
    return timings


def provision_access(settings: Settings) -> tuple[list[str], kafka_admin.AclChanges]:
    """The access table on the broker (flexledger.kafka_access): every principal's SCRAM user, and
    exactly the table's ACLs. Idempotent."""
    return kafka_admin.ensure_users(settings), kafka_admin.apply_acls(settings)


def _provision_roles(settings: Settings) -> None:
    """Roles, schemas and event tables (docs/design/audit.md): the services run as a role that may only
    SELECT and INSERT events; idempotent."""
    from flexledger.audit.roles import provision

    provision(settings)


def stop_infra(settings: Settings | None = None) -> None:
    """Stop the broker and PostgreSQL; both are attempted even when one of them fails."""
    settings = settings or Settings.from_env()
    errors: list[str] = []
    for name, stop in ((kafka.PART, kafka.stop_kafka), (postgres.PART, postgres.stop_postgres)):
        try:
            if stop(settings):
                log.info("%s stopped", name)
        except DevstackError as exc:
            errors.append(f"{name}: {exc}")
    if errors:
        raise DevstackError("\n".join(errors))


def up(
    settings: Settings | None = None, *, timeout: float = 120.0, brokers: int = 1, ha: bool = False,
    with_standby: bool = False,
) -> dict[str, float]:
    """Zipkin (booting while the rest starts), infra (Kafka with `brokers` nodes), then intake,
    eligibility and payments, each waited for until healthy, each under a supervisor that starts it
    again if it exits (flexledger.devstack.supervisor); the services export their spans to Zipkin.
    `with_standby`: intake and payments as active and standby pairs, eligibility as three instances
    (flexledger.devstack.standby). Last, the web console (flexledger.devstack.console), which reads
    the services over HTTP."""
    settings = settings or Settings.from_env()
    t0 = time.monotonic()
    zipkin.start_zipkin(settings)
    timings = start_infra(settings, timeout=timeout, brokers=brokers, ha=ha)
    wait_healthy(zipkin.PART, settings, timeout)  # before the services: their first spans reach it
    timings[zipkin.PART] = time.monotonic() - t0
    log.info("zipkin healthy at %s", zipkin.ui_url(settings))
    for name in services.SERVICES:
        t0 = time.monotonic()
        if with_standby and name in standby.PAIRED:
            standby.start_pair(name, settings, supervised=True, timeout=timeout)
        else:
            services.start_service(name, settings, timeout=timeout, supervised=True)
        timings[name] = time.monotonic() - t0
        log.info("%s healthy at %s in %.1fs", name, services.service_url(name, settings), timings[name])
    if with_standby:
        standby.up_more_eligibility(settings, timeout=timeout)
    t0 = time.monotonic()
    console.start_console(settings)  # the web console, reading the services over HTTP
    wait_healthy(console.PART, settings, timeout)
    timings[console.PART] = time.monotonic() - t0
    log.info("console at %s", console.console_url(settings))
    return timings


def down(settings: Settings | None = None) -> None:
    """Stop the console and the services, then the broker, PostgreSQL and Zipkin."""
    settings = settings or Settings.from_env()
    errors: list[str] = []
    try:
        if console.stop_console(settings):
            log.info("console stopped")
    except DevstackError as exc:
        errors.append(f"console: {exc}")
    try:
        if standby.down(settings):
            log.info("standby pairs and further instances stopped")
    except DevstackError as exc:
        errors.append(f"standby: {exc}")
    for name in reversed(services.SERVICES):
        try:
            if services.stop_service(name, settings):
                log.info("%s stopped", name)
        except DevstackError as exc:
            errors.append(f"{name}: {exc}")
    try:
        stop_infra(settings)
    except DevstackError as exc:
        errors.append(str(exc))
    try:
        if zipkin.stop_zipkin(settings):
            log.info("zipkin stopped")
    except DevstackError as exc:
        errors.append(f"zipkin: {exc}")
    if errors:
        raise DevstackError("\n".join(errors))


def status(settings: Settings | None = None) -> list[PartStatus]:
    """Each part; a Kafka cluster as one row per node, PostgreSQL with a standby as one row per node
    (health: primary, standby or down)."""
    settings = settings or Settings.from_env()
    rows: list[PartStatus] = []
    for part in PARTS:
        if part == postgres.PART and postgres_ha.enabled(settings):
            rows.extend(PartStatus(n.part, n.address, n.pid, n.role != "down", n.role,
                                   (n.detail,) if n.detail else ()) for n in postgres_ha.status(settings))
            continue
        if part == kafka.PART and kafka.brokers(settings) > 1:
            for node in kafka.nodes(settings):
                healthy = kafka.node_healthy(settings, node)
                rows.append(PartStatus(node.part, node.address, kafka.node_pid(settings, node), healthy,
                                       "up" if healthy else "down"))
            continue
        where, pid = address(part, settings), part_pid(part, settings)
        if part in INFRA or part in (VIEWER, console.PART):
            healthy = is_healthy(part, settings)
            rows.append(PartStatus(part, where, pid, healthy, "up" if healthy else "down"))
            continue
        report = services.service_health(part, settings)
        health = str(report.get("status", "down")) if report else "down"
        if pid is None and part in standby.PAIRED:  # a pair: the service's address is its front's
            pid = standby.front_pid(part, settings)
        row = PartStatus(part, where, pid, health in ("ok", "degraded"), health,
                         tuple(report.get("reasons", ())) if report else ())
        watched = services.supervision(part, settings)
        if watched is not None:
            last_exit = f"{watched.last_exit} at {watched.last_exit_at}" if watched.last_exit else ""
            row = replace(row, supervised=True, restarts=watched.restarts, last_exit=last_exit)
        rows.append(row)
    rows.extend(_instance_rows(settings))
    return rows


def _instance_rows(settings: Settings) -> list[PartStatus]:
    """A row per running instance of `dev up --standby` (intake-a, intake-b, ..., eligibility-c), with
    its role in a pair; the service's own row is then its front, i.e. the active instance."""
    rows: list[PartStatus] = []
    for name, instance in standby.instances(settings):
        own = standby.instance_settings(name, settings, instance)
        pid = services.service_pid(name, own, instance=instance)
        if pid is None:
            continue
        report = services.service_health(name, own) or {}
        health = str(report.get("status", "down"))
        row = PartStatus(services.instance_part(name, instance), services.service_url(name, own), pid,
                         health in ("ok", "degraded", "standby"), health, tuple(report.get("reasons", ())),
                         role=str(report.get("role", "")))
        watched = services.supervision(name, own, instance=instance)
        if watched is not None:
            last_exit = f"{watched.last_exit} at {watched.last_exit_at}" if watched.last_exit else ""
            row = replace(row, supervised=True, restarts=watched.restarts, last_exit=last_exit)
        rows.append(row)
    return rows
