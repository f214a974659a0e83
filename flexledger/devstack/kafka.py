"""One local Kafka node in KRaft mode (broker and controller), run from the Maven-fetched jars."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from string import Template
from typing import Any

from contracts.topics import ALL_TOPICS, Topic
from flexledger.devstack import credentials, processes
from flexledger.devstack.asyncs import run_sync
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.jars import ensure_kafka_jars, java_executable
from flexledger.devstack.paths import KAFKA_DEPLOY_DIR, log_file, pid_file, state_dir
from flexledger.kafka_access import ADMIN, principals
from services.runtime.kafka import client_security
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

PART = "kafka"
MAIN_CLASS = "kafka.Kafka"
HEAP = ("-Xms512m", "-Xmx1g")
_TOPIC_ALREADY_EXISTS = 36
SCRAM_ITERATIONS = 8192


def host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise DevstackError(f"kafka bootstrap {bootstrap!r} is not host:port")
    return host, int(port)


def kafka_dir(settings: Settings) -> Path:
    path = state_dir(settings) / "kafka"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_path(settings: Settings) -> Path:
    return kafka_dir(settings) / "server.properties"


def write_config(settings: Settings) -> Path:
    """Render deploy/kafka/server.properties.template for these settings (mode 0600: it holds `admin`'s
    password)."""
    _, port = host_port(settings.kafka_bootstrap)
    template = Template((KAFKA_DEPLOY_DIR / "server.properties.template").read_text())
    text = template.substitute(
        broker_port=port,
        controller_port=settings.kafka_controller_port,
        log_dirs=data_dir(settings),
        admin_password=credentials.ensure_password(settings, ADMIN),
    )
    path = config_path(settings)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return path


def data_dir(settings: Settings) -> Path:
    return kafka_dir(settings) / "data"


def cluster_id(settings: Settings) -> str:
    """The cluster id of this state dir: 16 random bytes, URL-safe base64 without padding."""
    path = kafka_dir(settings) / "cluster.id"
    if path.is_file():
        return path.read_text().strip()
    value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(value + "\n")
    return value


def _java_cmd(lib: Path, *args: str, heap: tuple[str, ...] = HEAP) -> list[str]:
    log4j = KAFKA_DEPLOY_DIR / "log4j2.properties"
    return [
        java_executable(), *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{lib}/*", *args,
    ]


def format_storage(settings: Settings) -> None:
    """Format the data dir once, creating every principal's SCRAM credential (`--add-scram`).
    StorageTool ignores `--add-scram` on a formatted dir, so later users are made by
    `kafka_admin.ensure_users` on the running broker."""
    if (data_dir(settings) / "meta.properties").is_file():
        return
    users = [
        arg
        for p in principals()
        if not p.super_user
        for arg in ("--add-scram", scram_spec(p.name, credentials.ensure_password(settings, p.name)))
    ]
    # The passwords show on this command line for the second it runs (`ps`): on the developer's machine.
    result = run_tool("kafka.tools.StorageTool", "format", "--ignore-formatted",
                      "-t", cluster_id(settings), "-c", str(config_path(settings)), *users)
    if result.returncode != 0:
        raise DevstackError(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")


def scram_spec(name: str, password: str) -> str:
    """`name`'s SCRAM-SHA-512 credential as StorageTool's `--add-scram` takes it."""
    return f"SCRAM-SHA-512=[name={name},iterations={SCRAM_ITERATIONS},password={password}]"


def run_tool(main_class: str, *args: str, timeout_s: float | None = None) -> subprocess.CompletedProcess[str]:
    """A Kafka command-line tool in a small JVM, warnings only, on stderr (stdout is its answer).

    The classes a tool's first run loads are archived (AppCDS, `<lib>/.<main class>.jsa`, gone with
    the jars when they are fetched again) and mapped by its later runs, which then start in ~0.4 s
    instead of ~1.2 s: a fresh stack's provisioning runs about twenty of them."""
    lib = ensure_kafka_jars()
    archive = lib / f".{main_class}.jsa"
    staging = None
    if archive.is_file():
        cds = f"-XX:SharedArchiveFile={archive}"
    else:  # written at exit; renamed into place, so two first runs at once never share a half-written file
        staging = archive.with_name(f"{archive.name}.{uuid.uuid4().hex}.tmp")
        cds = f"-XX:ArchiveClassesAtExit={staging}"
    log4j = KAFKA_DEPLOY_DIR / "tools-log4j2.properties"
    cmd = [
        java_executable(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:disable", cds,
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{lib}/*",
        main_class, *args,
    ]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout_s)
    finally:
        if staging is not None and staging.is_file():
            staging.replace(archive)


def kafka_pid(settings: Settings) -> int | None:
    return processes.running_pid(pid_file(settings, PART), MAIN_CLASS)


def start_kafka(settings: Settings) -> int:
    """Start the broker detached (no wait); return its pid. Already running: return that pid."""
    pid = kafka_pid(settings)
    if pid is not None:
        return pid
    host, port = host_port(settings.kafka_bootstrap)
    for p in (port, settings.kafka_controller_port):
        if processes.port_open(host, p):
            raise DevstackError(f"port {host}:{p} is in use by another process; Kafka cannot start")
    lib = ensure_kafka_jars()
    write_config(settings)
    format_storage(settings)
    env = {**os.environ, "KAFKA_HEAP_OPTS": " ".join(HEAP)}
    return processes.spawn_detached(
        _java_cmd(lib, MAIN_CLASS, str(config_path(settings))),
        log_path=log_file(settings, PART),
        pid_path=pid_file(settings, PART),
        env=env,
        cwd=kafka_dir(settings),
    )


def _admin_client(client: Settings, timeout: float) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(
        bootstrap_servers=client.kafka_bootstrap, request_timeout_ms=int(timeout * 1000),
        **client_security(client),
    )


async def _describe(client: Settings, timeout: float) -> int:
    admin = _admin_client(client, timeout)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def kafka_healthy(settings: Settings, timeout: float = 3.0) -> bool:
    """A metadata round trip (describe_cluster) as `admin` returns at least one broker."""
    host, port = host_port(settings.kafka_bootstrap)
    if not processes.port_open(host, port):
        return False
    try:
        return run_sync(_describe(credentials.as_principal(settings, ADMIN), timeout)) > 0
    except Exception:
        return False


async def _create_topics(client: Settings, topics: list[Topic], timeout: float) -> list[str]:
    from aiokafka.admin import NewTopic

    admin = _admin_client(client, timeout)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1) for t in missing]
        )
        failures = [
            f"{name}: error {code} {rest[0] if rest else ''}"
            for name, code, *rest in response.topic_errors
            if code not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise DevstackError("could not create topics: " + "; ".join(failures))
        return [t.name for t in missing]
    finally:
        await admin.close()


def create_topics(client: Settings, topics: Iterable[Topic] = ALL_TOPICS, timeout: float = 30.0) -> list[str]:
    """Create the catalogue topics that do not exist yet (replication 1), connected as `client`: the
    broker's `admin` (a restricted principal sees only the topics it may describe, and may create
    none). Return the names created."""
    return run_sync(_create_topics(client, list(topics), timeout))


def stop_kafka(settings: Settings, timeout: float = 30.0) -> bool:
    """SIGTERM the broker's process group (controlled shutdown), SIGKILL after `timeout`."""
    return processes.stop_group(pid_file(settings, PART), marker=MAIN_CLASS, timeout=timeout)
