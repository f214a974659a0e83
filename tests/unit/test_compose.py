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
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.pg_host == "postgres"
    assert settings.otel_exporter_otlp_endpoint.startswith("http://otel-collector:")


def test_kafka_is_a_single_kraft_node_and_the_collector_feeds_jaeger() -> None:
    services = _compose()["services"]
    kafka_env = _environment(services["kafka"])
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka_env["CLUSTER_ID"])
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
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["log.dirs"] == str(tmp_path.resolve() / "kafka" / "data")
    assert props["offsets.topic.num.partitions"] == "1"


def test_pom_pins_kafka_logging_and_the_dependency_plugin() -> None:
    pom = (DEPLOY / "kafka" / "pom.xml").read_text()
    assert "<kafka.version>4.1.1</kafka.version>" in pom
    assert "<log4j.version>2.24.3</log4j.version>" in pom
    for artifact in ("kafka_2.13", "log4j-api", "log4j-core", "log4j-slf4j-impl"):
        assert f"<artifactId>{artifact}</artifactId>" in pom
    assert re.search(r"maven-dependency-plugin</artifactId>\s*<version>3\.8\.1<", pom)
