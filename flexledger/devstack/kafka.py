"""The local Kafka in KRaft mode, run from the Maven-fetched jars: one node (broker and controller), or
a cluster of `--brokers N` such nodes, each a voter of the metadata quorum.

One node keeps its config and data in `<state_dir>/kafka` (pid file and log `kafka`). A cluster's node n
keeps them in `<state_dir>/kafka/cluster/node-n` (pid file and log `kafka-n`); it listens on the
settings' ports plus 2(n-1) (19092/19093, 19094/19095, ...). The two layouts are separate clusters
(their own cluster id and metadata), so switching between them loses neither; the size in use is
recorded in `<state_dir>/kafka/brokers`. SCRAM users and ACLs are cluster metadata: provisioned once,
they hold on every node.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import subprocess
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
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
CLUSTER_HEAP = ("-Xms256m", "-Xmx768m")  # three JVMs on a two-core development machine
REPLICATION_MAX = 3
BROKERS_MAX = 5
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


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller) of the local cluster."""

    node_id: int
    host: str
    port: int
    controller_port: int
    home: Path  # its server.properties and data
    part: str  # its pid file and log name

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def brokers(settings: Settings) -> int:
    """The number of nodes this state dir's Kafka runs with (1 until `--brokers` said otherwise)."""
    path = kafka_dir(settings) / "brokers"
    text = path.read_text().strip() if path.is_file() else ""
    return int(text) if text.isdigit() else 1


def use_brokers(settings: Settings, count: int) -> None:
    """Run this state dir's Kafka with `count` nodes from now on. Refused while the other layout runs."""
    if not 1 <= count <= BROKERS_MAX:
        raise DevstackError(f"--brokers must be 1 to {BROKERS_MAX}, not {count}")
    running = [n.part for n in nodes(settings) if node_pid(settings, n) is not None]
    if count != brokers(settings) and running:
        raise DevstackError(f"Kafka runs with {brokers(settings)} node(s) ({', '.join(running)}): "
                            "`flexledger dev down` first")
    (kafka_dir(settings) / "brokers").write_text(f"{count}\n")


def nodes(settings: Settings) -> list[Node]:
    """This state dir's nodes, from the first bootstrap address (so the same for expanded settings)."""
    host, port = host_port(settings.kafka_bootstrap)
    count = brokers(settings)
    if count == 1:
        return [Node(1, host, port, settings.kafka_controller_port, kafka_dir(settings), PART)]
    return [
        Node(n, host, port + 2 * (n - 1), settings.kafka_controller_port + 2 * (n - 1),
             kafka_dir(settings) / "cluster" / f"node-{n}", f"{PART}-{n}")
        for n in range(1, count + 1)
    ]


def bootstrap(settings: Settings) -> str:
    """Every node's address, for clients: one node may be down when a client starts. One node: the
    settings' bootstrap unchanged (it may name a broker that is not ours)."""
    if brokers(settings) == 1:
        return settings.kafka_bootstrap
    return ",".join(n.address for n in nodes(settings))


def with_cluster(settings: Settings) -> Settings:
    """The settings with `bootstrap(settings)` as their Kafka bootstrap."""
    return replace(settings, kafka_bootstrap=bootstrap(settings))


def replication(count: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) on `count` brokers: three copies, of which two must
    have a write before it is acknowledged (acks=all), so one broker may be lost without losing a
    write or stopping them; one copy on one broker."""
    factor = min(count, REPLICATION_MAX)
    return factor, max(1, factor - 1)


def config_path(node: Node) -> Path:
    return node.home / "server.properties"


def write_config(settings: Settings, node: Node | None = None) -> Path:
    """Render deploy/kafka/server.properties.template for this node (mode 0600: it holds `admin`'s
    password)."""
    node = node or nodes(settings)[0]
    all_nodes = nodes(settings)
    factor, min_isr = replication(len(all_nodes))
    template = Template((KAFKA_DEPLOY_DIR / "server.properties.template").read_text())
    text = template.substitute(
        node_id=node.node_id,
        quorum_voters=",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in all_nodes),
        broker_host=node.host,
        broker_port=node.port,
        controller_port=node.controller_port,
        log_dirs=data_dir(node),
        replication_factor=factor,
        min_insync_replicas=min_isr,
        admin_password=credentials.ensure_password(settings, ADMIN),
    )
    node.home.mkdir(parents=True, exist_ok=True)
    path = config_path(node)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)
    return path


def data_dir(node: Node) -> Path:
    return node.home / "data"


def cluster_id(settings: Settings) -> str:
    """The cluster id of this state dir's Kafka (one per layout): 16 random bytes, URL-safe base64
    without padding, never starting with "-"."""
    home = nodes(settings)[0].home if brokers(settings) == 1 else kafka_dir(settings) / "cluster"
    home.mkdir(parents=True, exist_ok=True)
    path = home / "cluster.id"
    if path.is_file():
        return path.read_text().strip()
    value = "-"
    while value.startswith("-"):  # as Kafka's own Uuid.randomUuid: a leading "-" reads as an option
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.write_text(value + "\n")
    return value


def _java_cmd(lib: Path, *args: str, heap: tuple[str, ...] = HEAP) -> list[str]:
    log4j = KAFKA_DEPLOY_DIR / "log4j2.properties"
    return [
        java_executable(), *heap, "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{lib}/*", *args,
    ]


def format_storage(settings: Settings, node: Node) -> None:
    """Format the node's data dir once, creating every principal's SCRAM credential (`--add-scram`; every
    node of a cluster gets the same, the quorum's first leader writes them once). StorageTool ignores
    `--add-scram` on a formatted dir, so later users are made by `kafka_admin.ensure_users` on the
    running cluster."""
    if (data_dir(node) / "meta.properties").is_file():
        return
    users = [
        arg
        for p in principals()
        if not p.super_user
        for arg in ("--add-scram", scram_spec(p.name, credentials.ensure_password(settings, p.name)))
    ]
    # The passwords show on this command line for the second it runs (`ps`): on the developer's machine.
    result = run_tool("kafka.tools.StorageTool", "format", "--ignore-formatted",
                      "-t", cluster_id(settings), "-c", str(config_path(node)), *users)
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


def node_pid(settings: Settings, node: Node) -> int | None:
    return processes.running_pid(pid_file(settings, node.part), MAIN_CLASS)


def kafka_pid(settings: Settings) -> int | None:
    """A running node's pid (the first), None when no node runs."""
    return next((pid for node in nodes(settings) if (pid := node_pid(settings, node)) is not None), None)


def start_kafka(settings: Settings) -> list[int]:
    """Start every node detached (no wait); return their pids (a running node's own)."""
    return [start_node(settings, node) for node in nodes(settings)]


def start_node(settings: Settings, node: Node) -> int:
    """Start one node detached (no wait); return its pid. Already running: return that pid."""
    pid = node_pid(settings, node)
    if pid is not None:
        return pid
    for p in (node.port, node.controller_port):
        if processes.port_open(node.host, p):
            raise DevstackError(f"port {node.host}:{p} is in use by another process; "
                                f"{node.part} cannot start")
    lib = ensure_kafka_jars()
    write_config(settings, node)
    format_storage(settings, node)
    heap = HEAP if brokers(settings) == 1 else CLUSTER_HEAP
    env = {**os.environ, "KAFKA_HEAP_OPTS": " ".join(heap)}
    return processes.spawn_detached(
        _java_cmd(lib, MAIN_CLASS, str(config_path(node)), heap=heap),
        log_path=log_file(settings, node.part),
        pid_path=pid_file(settings, node.part),
        env=env,
        cwd=node.home,
    )


def _admin_client(client: Settings, timeout: float) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(
        bootstrap_servers=client.kafka_bootstrap, request_timeout_ms=int(timeout * 1000),
        **client_security(client),
    )


async def _describe(client: Settings, timeout: float) -> int:
    """The number of brokers registered with the cluster."""
    admin = _admin_client(client, timeout)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


def kafka_healthy(settings: Settings, timeout: float = 3.0) -> bool:
    """A metadata round trip (describe_cluster) as `admin` shows every node of ours registered (at
    least one broker, where the settings name a broker that is not ours)."""
    addresses = [host_port(a) for a in bootstrap(settings).split(",")]
    if not any(processes.port_open(host, port) for host, port in addresses):
        return False
    try:
        registered = run_sync(_describe(credentials.as_principal(with_cluster(settings), ADMIN), timeout))
    except Exception:
        return False
    return registered >= brokers(settings)


def node_healthy(settings: Settings, node: Node, timeout: float = 3.0) -> bool:
    """The node itself answers a metadata round trip as `admin`."""
    if not processes.port_open(node.host, node.port):
        return False
    client = replace(credentials.as_principal(settings, ADMIN), kafka_bootstrap=node.address)
    try:
        return run_sync(_describe(client, timeout)) > 0
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
        cluster = await admin.describe_cluster()
        factor, min_isr = replication(len(cluster.get("brokers", [])))
        response = await admin.create_topics([
            NewTopic(t.name, num_partitions=t.partitions, replication_factor=factor,
                     topic_configs={"min.insync.replicas": str(min_isr)})
            for t in missing
        ])
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
    """Create the catalogue topics that do not exist yet, connected as `client`: the broker's `admin` (a
    restricted principal sees only the topics it may describe, and may create none). Replicated by the
    cluster's size (`replication`: three copies and min.insync.replicas=2 on three brokers or more, one
    on one). Return the names created."""
    return run_sync(_create_topics(client, list(topics), timeout))


def stop_kafka(settings: Settings, timeout: float = 30.0) -> bool:
    """SIGTERM every node's process group at once (controlled shutdown), SIGKILL after `timeout`. True
    if a node was running."""
    with ThreadPoolExecutor(max_workers=BROKERS_MAX) as pool:
        stopped = list(pool.map(lambda node: stop_node(settings, node, timeout), nodes(settings)))
    return any(stopped)


def stop_node(settings: Settings, node: Node, timeout: float = 30.0) -> bool:
    return processes.stop_group(pid_file(settings, node.part), marker=MAIN_CLASS, timeout=timeout)


def kill_node(settings: Settings, node: Node) -> bool:
    """SIGKILL the node's process group (a crash, for fault tests); True if it was running. Its pid file
    stays: `start_node` sees the process is gone and starts a new one."""
    pid = node_pid(settings, node)
    if pid is None:
        return False
    processes.kill_group(pid)
    return True
