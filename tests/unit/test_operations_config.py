"""deploy/'s Prometheus scrape config, alerting rules and Grafana dashboard parse, are wired into compose,
and name only metrics that the services' `/metrics` serves (each service's app, built in-process)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "flexledger.json"
METRIC_NAME = re.compile(r"\bflexledger_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _expressions() -> list[str]:
    rules = [rule["expr"] for group in _yaml(ALERTS)["groups"] for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return rules + [target["expr"] for panel in panels for target in panel["targets"]]


def metrics_named_in_deploy() -> set[str]:
    """Every flexledger metric (sample) name the alerting rules and the dashboard query."""
    return {name for expr in _expressions() for name in METRIC_NAME.findall(expr)}


def family_of(sample_name: str) -> str:
    for suffix in SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def test_the_alerts_cover_what_an_operator_is_woken_for() -> None:
    rules = {rule["alert"]: rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"]}
    assert {"FlexledgerConsumerLag", "FlexledgerConsumerStalled", "FlexledgerDeadLetters",
            "FlexledgerCheckpointOverdue", "FlexledgerBudgetExhausted",
            "FlexledgerSettlementMismatch"} <= set(rules)
    for name, rule in rules.items():
        assert rule["expr"].strip() and rule["annotations"]["summary"], name
        assert rule["labels"]["severity"] in ("warning", "critical"), name


def test_prometheus_scrapes_the_three_services_on_their_ports() -> None:
    settings = Settings()
    config = _yaml(SCRAPE)
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {static["labels"]["service"]: static["targets"]
               for job in config["scrape_configs"] for static in job["static_configs"]}
    assert targets == {name: [f"{name}:{getattr(settings, f'{name}_port')}"]
                       for name in ("intake", "eligibility", "payments")}


def test_compose_runs_prometheus_and_grafana_with_these_files() -> None:
    services = _yaml(DEPLOY / "compose.yaml")["services"]
    prometheus = " ".join(services["prometheus"]["volumes"])
    assert "./prometheus/prometheus.yml:" in prometheus and "./prometheus/alerts.yml:" in prometheus
    grafana = " ".join(services["grafana"]["volumes"])
    assert "./grafana/provisioning:" in grafana and "./grafana/dashboards:" in grafana
    for name in ("intake", "eligibility", "payments"):  # scraped from another container
        assert services[name]["environment"]["FLEXLEDGER_HTTP_HOST"] == "0.0.0.0"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The metric families each service's GET /metrics serves (its app built, nothing started)."""
    from services.eligibility.bootstrap import bootstrap as eligibility
    from services.intake.bootstrap import bootstrap as intake
    from services.payments.bootstrap import bootstrap as payments

    settings = Settings(state_dir=str(tmp_path_factory.mktemp("state")))
    families: set[str] = set()
    for build in (intake, eligibility, payments):
        response = TestClient(build(settings).http).get("/metrics")
        assert response.status_code == 200
        families |= {family.name for family in text_string_to_metric_families(response.text)}
    return families


def test_every_metric_the_alerts_and_dashboard_name_is_served(served: set[str]) -> None:
    named = metrics_named_in_deploy()
    assert len(named) >= 15
    missing = sorted(name for name in named if family_of(name) not in served)
    assert not missing, f"deploy/ names metrics no service serves: {missing}"


def test_metric_names_follow_the_conventions(served: set[str]) -> None:
    ours = {name for name in served if name.startswith("flexledger_")}
    assert ours
    for name in ours:
        assert re.fullmatch(r"flexledger_[a-z0-9_]+", name), name
        assert not name.endswith("_ms"), f"{name}: durations are in seconds"
