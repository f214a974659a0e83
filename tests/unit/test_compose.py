"""deploy/ stays consistent with the code: compose passes every setting, the broker's files render."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.runtime.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
SERVICES = ("intake", "eligibility", "payments")
SETTING_ENV_NAMES = sorted(Settings.env_name(f.name) for f in dataclasses.fields(Settings))


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _built_services() -> list[str]:
    return sorted(name for name, svc in _compose()["services"].items() if "build" in svc)


def test_the_three_services_are_built_from_the_dockerfile() -> None:
    services = _compose()["services"]
    for name in SERVICES:
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["command"][-1] == f"services.{name}"
    assert (DEPLOY / "Dockerfile").is_file()


@pytest.mark.parametrize("service", _built_services())
def test_every_flexledger_container_sets_every_setting(service: str) -> None:
    env = _environment(_compose()["services"][service])
    missing = [name for name in SETTING_ENV_NAMES if name not in env]
    assert not missing, f"{service} lacks {missing} (add them to x-flexledger-env in deploy/compose.yaml)"


def test_settings_parse_from_the_compose_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _environment(_compose()["services"]["intake"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.kafka_bootstrap == "kafka-1:9092,kafka-2:9092,kafka-3:9092"
    assert (settings.kafka_security_protocol, settings.kafka_ca_file) == ("SASL_SSL", "/pki/ca/ca.crt")
    assert settings.pg_host == "postgres"
    assert settings.otel_exporter_otlp_endpoint.startswith("http://otel-collector:")


KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")


def test_kafka_is_a_three_node_kraft_cluster_and_the_collector_feeds_jaeger() -> None:
    services = _compose()["services"]
    envs = [_environment(services[node]) for node in KAFKA_NODES]
    assert all(services[node]["image"].startswith("apache/kafka:") for node in KAFKA_NODES)
    assert [env["NODE_ID"] for env in envs] == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    assert len({env["HOST_PORT"] for env in envs}) == 3
    assert len({v for node in KAFKA_NODES for v in services[node]["volumes"] if "kafka-data" in v}) == 3
    broker = _properties((DEPLOY / "kafka" / "compose" / "server.properties").read_text())
    assert broker["process.roles"] == "broker,controller"
    assert broker["controller.quorum.voters"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
    assert broker["default.replication.factor"] == broker["offsets.topic.replication.factor"] == "3"
    assert broker["min.insync.replicas"] == "2"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", envs[0]["CLUSTER_ID"])
    for job in ("topics", "kafka-access"):  # provisioned once every node is up: three replicas
        assert set(services[job]["depends_on"]) == set(KAFKA_NODES)
    assert {"postgres", "otel-collector", "jaeger"} <= set(services)
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    assert collector["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    assert "otlp" in collector["service"]["pipelines"]["traces"]["receivers"]


def test_broker_template_renders_for_the_settings(tmp_path: Path) -> None:
    from flexledger.devstack import kafka

    settings = Settings(
        kafka_bootstrap="127.0.0.1:29092", kafka_controller_port=29093, state_dir=str(tmp_path)
    )
    text = kafka.write_config(settings).read_text()
    props = dict(
        line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    assert "$" not in "".join(props.values())
    assert props["listeners"] == "CLIENT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    assert props["offsets.topic.num.partitions"] == "1"
    # Every listener authenticates, the controller's too; ACLs decide; no topic appears on demand.
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,PLAIN"
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert _broker_security(props)
    admin_password = (tmp_path / "kafka" / "principals" / "admin.password").read_text().strip()
    assert f'user_admin="{admin_password}"' in props["listener.name.controller.plain.sasl.jaas.config"]
    assert (tmp_path / "kafka" / "server.properties").stat().st_mode & 0o777 == 0o600


def _broker_security(props: dict[str, str]) -> bool:
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["super.users"] == "User:admin"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    return True


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def test_compose_brokers_speak_sasl_ssl_only_and_publish_no_controller() -> None:
    props = _properties((DEPLOY / "kafka" / "compose" / "server.properties").read_text())
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_SSL"
    assert props["listeners"].endswith("CONTROLLER://:9093")
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["listener.name.host.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"  # no admin from the host
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == "/pki/broker/broker-keystore.pem"
    assert _broker_security(props)
    for node in KAFKA_NODES:
        kafka = _compose()["services"][node]
        assert kafka["entrypoint"] == ["bash", "/flexledger/broker.sh"]
        assert "kafka-tls:/pki/broker:ro" in kafka["volumes"]
        assert kafka["depends_on"]["kafka-tls"]["condition"] == "service_completed_successfully"
        assert all(not port.endswith(":9093") for port in kafka["ports"])


def test_each_service_connects_as_its_own_principal_over_tls() -> None:
    services = _compose()["services"]
    passwords = set()
    for name in SERVICES:
        env = _environment(services[name])
        assert env["FLEXLEDGER_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["FLEXLEDGER_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["FLEXLEDGER_KAFKA_CA_FILE"] == "/pki/ca/ca.crt"
        assert "kafka-ca:/pki/ca:ro" in services[name]["volumes"]
        assert env["FLEXLEDGER_KAFKA_USERNAME"] == name
        assert f"FLEXLEDGER_KAFKA_PASSWORD_{name.upper()}:?" in env["FLEXLEDGER_KAFKA_PASSWORD"]
        passwords.add(env["FLEXLEDGER_KAFKA_PASSWORD"])
        assert services[name]["depends_on"]["kafka-access"]["condition"] == "service_completed_successfully"
    assert len(passwords) == len(SERVICES)
    topics = _environment(services["topics"])
    assert topics["FLEXLEDGER_KAFKA_USERNAME"] == "admin"
    assert topics["FLEXLEDGER_KAFKA_SASL_MECHANISM"] == "PLAIN"


def test_the_access_job_runs_the_script_generated_from_the_access_table() -> None:
    from flexledger.kafka_access import compose_script, password_variable, principals

    script = (DEPLOY / "kafka" / "compose" / "access.sh").read_text()
    assert script == compose_script(), "flexledger kafka acls script > deploy/kafka/compose/access.sh"
    job = _compose()["services"]["kafka-access"]
    assert job["entrypoint"] == ["bash", "/flexledger/access.sh"]
    env = _environment(job)
    for p in principals(dev=False):
        if not p.super_user:
            assert password_variable(p.name) in env and password_variable(p.name) in script
    assert not any(p.dev_only and password_variable(p.name) in script for p in principals())


def test_tls_init_makes_a_ca_and_a_broker_certificate_a_client_accepts_for_kafka(tmp_path: Path) -> None:
    """deploy/kafka/tls-init.sh (the kafka-tls job), then a TLS handshake in memory: the broker's PEM
    keystore on the server side, a client trusting only the CA and checking the host name `kafka`."""
    import os
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    subprocess.run(["sh", str(DEPLOY / "kafka" / "tls-init.sh"), str(tmp_path), str(os.getuid())],
                   check=True, capture_output=True)
    keystore = tmp_path / "broker" / "broker-keystore.pem"
    assert keystore.stat().st_mode & 0o777 == 0o400
    assert (tmp_path / "ca-key" / "ca.key").stat().st_mode & 0o077 == 0
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(keystore)
    for host in ("kafka", "kafka-1", "kafka-2", "kafka-3", "localhost"):
        _handshake(ssl.create_default_context(cafile=tmp_path / "ca" / "ca.crt"), server, host)
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs only
        _handshake(ssl.create_default_context(), server, "kafka")


def _handshake(client: Any, server: Any, host: str) -> None:
    """A TLS handshake in memory between two SSL contexts, the client checking `host`."""
    import ssl

    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    ends = [client.wrap_bio(c_in, c_out, server_hostname=host),
            server.wrap_bio(s_in, s_out, server_side=True)]
    done = [False, False]
    for _ in range(10):
        for i, end in enumerate(ends):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            return
    raise AssertionError("the TLS handshake did not finish")


def test_pom_pins_kafka_logging_and_the_dependency_plugin() -> None:
    pom = (DEPLOY / "kafka" / "pom.xml").read_text()
    assert "<kafka.version>4.1.1</kafka.version>" in pom
    assert "<log4j.version>2.24.3</log4j.version>" in pom
    for artifact in ("kafka_2.13", "kafka-tools", "log4j-api", "log4j-core", "log4j-slf4j-impl"):
        assert f"<artifactId>{artifact}</artifactId>" in pom
    # kafka-tools (AclCommand) alone, not its own closure (connect-runtime, jetty, jersey).
    assert re.search(r"<artifactId>kafka-tools</artifactId>\s*<version>\$\{kafka.version\}</version>\s*"
                     r"<exclusions><exclusion><groupId>\*</groupId><artifactId>\*</artifactId>", pom)
    assert re.search(r"maven-dependency-plugin</artifactId>\s*<version>3\.8\.1<", pom)


# ---- the compose file, rendered: settings, ports and images (issue 18) ---------------------------------


def _flexledger_env_names(env: dict[str, str]) -> set[str]:
    return {name for name in env if name.startswith(("FLEXLEDGER_", "OTEL_"))}


@pytest.mark.parametrize("service", _built_services())
def test_every_variable_a_flexledger_container_sets_is_a_setting(service: str) -> None:
    unknown = _flexledger_env_names(_environment(_compose()["services"][service])) - set(SETTING_ENV_NAMES)
    assert not unknown, f"{service} sets {sorted(unknown)}, which Settings does not read (a typo?)"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_publishes_the_port_it_binds_on_every_interface(service: str) -> None:
    definition = _compose()["services"][service]
    env = _environment(definition)
    port = env[Settings.env_name(f"{service}_port")]
    assert env[Settings.env_name("http_host")] == "0.0.0.0"  # else the published port reaches nothing
    assert [str(mapping).split(":")[-1] for mapping in definition["ports"]] == [port]
    assert any(f":{port}/health" in part for part in definition["healthcheck"]["test"])


def test_every_image_is_pinned() -> None:
    """A pulled image names a version (never `latest` or none); an image built here is this checkout."""
    for name, service in _compose()["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"
    base = re.search(r"^FROM (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert base is not None and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base.group(1))


def test_the_image_has_a_healthcheck_that_asks_the_services() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "flexledger.healthcheck"]' in dockerfile
    assert "--constraint requirements.lock" in dockerfile and (PROJECT_ROOT / "requirements.lock").is_file()


def test_the_healthcheck_fails_when_no_service_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from flexledger import healthcheck

    for name in ("intake_port", "eligibility_port", "payments_port"):
        monkeypatch.setenv(Settings.env_name(name), "1")  # nothing listens on port 1
    assert healthcheck.main() == 1
