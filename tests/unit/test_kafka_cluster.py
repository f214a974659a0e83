"""The local Kafka cluster's layout and node configs (`flexledger dev up --brokers 3`), without a broker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flexledger.devstack import kafka
from flexledger.devstack.errors import DevstackError
from services.runtime.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:29092", kafka_controller_port=29093, state_dir=str(tmp_path))


def _properties(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_one_node_by_default_with_the_settings_bootstrap(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert kafka.brokers(settings) == 1
    [node] = kafka.nodes(settings)
    assert (node.node_id, node.address, node.part) == (1, "127.0.0.1:29092", "kafka")
    assert kafka.bootstrap(settings) == "127.0.0.1:29092"
    assert kafka.replication(1) == (1, 1)


def test_a_cluster_of_three_nodes_on_consecutive_port_pairs(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    kafka.use_brokers(settings, 3)
    nodes = kafka.nodes(settings)
    assert [(n.node_id, n.port, n.controller_port, n.part) for n in nodes] == [
        (1, 29092, 29093, "kafka-1"), (2, 29094, 29095, "kafka-2"), (3, 29096, 29097, "kafka-3")]
    assert kafka.bootstrap(settings) == "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    assert kafka.with_cluster(settings).kafka_bootstrap == kafka.bootstrap(settings)
    # Expanding twice changes nothing: the nodes follow from the first address.
    assert kafka.bootstrap(kafka.with_cluster(settings)) == kafka.bootstrap(settings)
    assert kafka.replication(3) == (3, 2)
    assert kafka.replication(5) == (3, 2)


def test_every_node_is_a_voter_with_replicated_topics_and_the_same_security(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    kafka.use_brokers(settings, 3)
    node = kafka.nodes(settings)[1]
    props = _properties(kafka.write_config(settings, node))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097"
    assert props["listeners"] == "CLIENT://127.0.0.1:29094,CONTROLLER://127.0.0.1:29095"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "cluster" / "node-2" / "data")
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert props[key] == "3", key
    assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert (node.home / "server.properties").stat().st_mode & 0o777 == 0o600


def test_the_cluster_has_its_own_id_beside_the_single_node(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    single = kafka.cluster_id(settings)
    kafka.use_brokers(settings, 3)
    assert kafka.cluster_id(settings) not in ("", single)
    kafka.use_brokers(settings, 1)
    assert kafka.cluster_id(settings) == single


def test_a_cluster_size_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevstackError):
        kafka.use_brokers(_settings(tmp_path), 0)


def test_a_cluster_id_never_starts_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads `-t -…` as an option; one id in 64 would start so if drawn freely."""
    dashed = uuid.UUID(bytes=b"\xf8" + bytes(15))  # URL-safe base64 "-A…"
    drawn = iter([dashed, uuid.UUID(int=1)])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    value = kafka.cluster_id(_settings(tmp_path))
    assert not value.startswith("-") and len(value) == 22
