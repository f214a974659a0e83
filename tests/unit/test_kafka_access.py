"""The Kafka access table (flexledger.kafka_access): least privilege, one writer per topic, the services'
own subscribers and publishers covered, the design note's copy current; and the client security
settings (services.runtime.kafka) and the ACL bookkeeping (flexledger.devstack.kafka_admin)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contracts.topics import (
    AGENCIES,
    AGENCY_FEEDS,
    ALL_TOPICS,
    CHECKPOINTS,
    DEAD_LETTERS,
    DECISIONS,
    DISBURSEMENTS,
    ELIGIBILITY_DEAD_LETTERS,
    FACTS,
    ORDER_EVENTS,
    ORDERS,
    PAYMENTS_DEAD_LETTERS,
    SANDBOX_PREFIX,
    SANDBOX_TOPICS,
    SETTLEMENTS,
    STATISTICS,
    agency_feed,
    sandbox_twin,
)
from flexledger.contracts_gen import service_brokers
from flexledger.devstack.kafka_admin import Listed, parse_acls, plan
from flexledger.kafka_access import (
    PRINCIPALS,
    READ,
    WRITE,
    Acl,
    acl_command_args,
    acls,
    markdown_table,
    principal,
    principals,
)
from services.runtime.kafka import broker_security, client_security
from services.runtime.settings import PROJECT_ROOT, Settings

SERVICES = ("intake", "eligibility", "payments")
# Who reads what the city publishes, outside the services: they must never see a sandbox book.
OUTSIDE_SUBSCRIBERS = ("finance", "statistics", "tax", "auditor", "subscriber")


def _writers(topic: str) -> set[str]:
    return {a.principal for a in acls() if a.resource == topic and a.operation == WRITE}


def _readers(topic: str) -> set[str]:
    return {a.principal for a in acls() if a.resource == topic and a.operation == READ}


def test_each_topic_has_exactly_its_one_writer() -> None:
    assert _writers(FACTS.name) == {"intake"}
    assert _writers(DEAD_LETTERS.name) == {"intake"}
    for topic in (DECISIONS, STATISTICS, CHECKPOINTS, ELIGIBILITY_DEAD_LETTERS):
        assert _writers(topic.name) == {"eligibility"}, topic.name
    for topic in (ORDERS, DISBURSEMENTS, PAYMENTS_DEAD_LETTERS):
        assert _writers(topic.name) == {"payments"}, topic.name
    assert _writers(SETTLEMENTS.name) == {"finance"}
    for topic in (FACTS, DECISIONS, STATISTICS, ORDERS, DISBURSEMENTS):  # the services write every book
        assert _writers(sandbox_twin(topic).name) == _writers(topic.name), topic.name
    assert _writers(sandbox_twin(SETTLEMENTS).name) == {"sandbox_finance"}  # the sandbox books' bank
    for agency in AGENCIES:
        assert _writers(agency_feed(agency).name) == {agency}
        assert {a.resource for a in acls() if a.principal == agency} == {agency_feed(agency).name}
    assert {t.name for t in ALL_TOPICS} == {a.resource for a in acls() if a.pattern_type == "LITERAL"
                                            and a.resource_type == "TOPIC"}


def test_readers_are_the_consumers_and_subscribers_of_each_topic() -> None:
    assert _readers(FACTS.name) == {"eligibility"}
    # `subscriber` (local stack only) is another agency's developer trying `flexledger subscribe`.
    assert _readers(DECISIONS.name) == {"payments", "tax", "subscriber"}
    assert _readers(STATISTICS.name) == {"statistics", "subscriber"}
    assert _readers(SETTLEMENTS.name) == {"payments"}
    assert _readers(ORDERS.name) == _readers(ORDER_EVENTS.name) == {"finance", "subscriber"}
    assert _readers(DISBURSEMENTS.name) == {"finance"}
    assert _readers(CHECKPOINTS.name) == {"auditor", "subscriber"}
    # Sandbox twins: the services, as on the production topic, and the sandbox books' bank; no one else.
    assert _readers(sandbox_twin(FACTS).name) == {"eligibility"}
    assert _readers(sandbox_twin(DECISIONS).name) == _readers(sandbox_twin(SETTLEMENTS).name) == {"payments"}
    assert _readers(sandbox_twin(STATISTICS).name) == set()
    for topic in (ORDERS, DISBURSEMENTS, ORDER_EVENTS):
        assert _readers(sandbox_twin(topic).name) == {"sandbox_finance"}
    for feed in AGENCY_FEEDS:
        assert _readers(feed.name) == {"intake"}
    # Dead letters hold what their source holds (identity numbers): operators read them as admin.
    for topic in (DEAD_LETTERS, ELIGIBILITY_DEAD_LETTERS, PAYMENTS_DEAD_LETTERS):
        assert _readers(topic.name) == set()


def test_no_outside_subscriber_may_touch_a_sandbox_topic() -> None:
    """Sandbox books never reach production subscribers: an outside party's every topic ACL names a
    `flexledger.` topic (never a prefix that could match a twin), and no twin is named so."""
    for topic in SANDBOX_TOPICS:
        assert topic.name.startswith(SANDBOX_PREFIX) and not topic.name.startswith("flexledger."), topic.name
    outside = [*OUTSIDE_SUBSCRIBERS, *AGENCIES]
    for name in outside:
        topics = [a for a in acls() if a.principal == name and a.resource_type == "TOPIC"]
        assert topics and all(a.pattern_type == "LITERAL" for a in topics), name
        assert all(a.resource.startswith("flexledger.") for a in topics), name
    for topic in SANDBOX_TOPICS:
        assert not (_readers(topic.name) | _writers(topic.name)) & set(outside), topic.name
    for name in OUTSIDE_SUBSCRIBERS:  # their reads: only production topics
        assert all(t.startswith("flexledger.") for t in principal(name).reads), name


def test_only_admin_is_a_super_user_and_only_the_tools_are_local_only() -> None:
    assert [p.name for p in PRINCIPALS if p.super_user] == ["admin"]
    assert not any(a.principal == "admin" for a in acls())
    assert [p.name for p in PRINCIPALS if p.dev_only] == ["subscriber", "sandbox_finance", "bench"]
    for name in ("subscriber", "sandbox_finance", "bench"):
        assert name not in {p.name for p in principals(dev=False)}
        assert not any(a.principal == name for a in acls(dev=False))
    assert len({p.name for p in PRINCIPALS}) == len(PRINCIPALS)
    with pytest.raises(KeyError):
        principal("mallory")


def test_each_service_may_do_what_its_broker_subscribes_and_publishes() -> None:
    """Derived from the services' own FastStream brokers, so a new subscriber, group or publisher
    without its row in the table fails here rather than on the broker."""
    for name, broker in service_brokers().items():
        granted = {a for a in acls() if a.principal == name}
        for subscriber in broker.subscribers:
            assert Acl(name, "GROUP", "LITERAL", subscriber.group_id, READ) in granted, subscriber.group_id
            for topic in subscriber.topic_names:
                assert Acl(name, "TOPIC", "LITERAL", topic, READ) in granted, topic
        for publisher in broker.publishers:
            assert Acl(name, "TOPIC", "LITERAL", publisher.topic, WRITE) in granted, publisher.topic
    # Each service's dead letters are published from its outbox (a declared publisher, above), by it alone.
    dead_letters = {"intake": DEAD_LETTERS, "eligibility": ELIGIBILITY_DEAD_LETTERS,
                    "payments": PAYMENTS_DEAD_LETTERS}
    for name, topic in dead_letters.items():
        assert topic.name in {p.topic for p in service_brokers()[name].publishers}
        assert _writers(topic.name) == {name}


def test_the_design_note_shows_the_table_of_the_code() -> None:
    note = (PROJECT_ROOT / "docs" / "design" / "kafka-trust.md").read_text()
    assert markdown_table() in note, "paste flexledger.kafka_access.markdown_table() into kafka-trust.md"


def test_acl_command_args_group_resources_that_get_the_same_operations() -> None:
    intake = [(a, "*") for a in acls() if a.principal == "intake"]
    calls = acl_command_args("--add", intake)
    assert len(calls) == 2  # WRITE on its three topics; READ on its feeds and its group
    write = next(c for c in calls if "WRITE" in c)
    assert write[:7] == ["--add", "--allow-principal", "User:intake", "--allow-host", "*",
                         "--resource-pattern-type", "literal"]
    assert write[-6:] == ["--topic", DEAD_LETTERS.name, "--topic", FACTS.name,
                          "--topic", sandbox_twin(FACTS).name]
    read = next(c for c in calls if "READ" in c)
    assert read[read.index("--group"):read.index("--group") + 2] == ["--group", "intake"]


_TAX_GROUP = "`ResourcePattern(resourceType=GROUP, name=tax., patternType=PREFIXED)`"
_FACTS = f"`ResourcePattern(resourceType=TOPIC, name={FACTS.name}, patternType=LITERAL)`"
ACL_LIST = f"""Current ACLs for resource {_TAX_GROUP}:
\t(principal=User:tax, host=*, operation=READ, permissionType=ALLOW)

Current ACLs for resource {_FACTS}:
\t(principal=User:eligibility, host=*, operation=READ, permissionType=ALLOW)
\t(principal=User:mallory, host=*, operation=WRITE, permissionType=ALLOW)
\t(principal=User:payments, host=*, operation=WRITE, permissionType=DENY)
\t(principal=User:intake, host=*, operation=WRITE, permissionType=ALLOW)
"""


def test_plan_adds_what_is_missing_and_removes_only_stray_allows() -> None:
    listed = parse_acls(ACL_LIST)
    assert Listed(Acl("tax", "GROUP", "PREFIXED", "tax.", "READ")) in listed
    assert Listed(Acl("payments", "TOPIC", "LITERAL", FACTS.name, "WRITE"), "*", "DENY") in listed
    changes = plan(listed, acls())
    assert [entry.acl.principal for entry in changes.removed] == ["mallory"]  # the DENY stays
    assert set(changes.added) == acls() - {entry.acl for entry in listed}
    assert plan([Listed(a) for a in acls()], acls()).added == ()


# ---- client security settings -------------------------------------------------------------------


def test_client_security_per_protocol(tmp_path: Path) -> None:
    assert client_security(Settings(kafka_security_protocol="PLAINTEXT")) == {}
    assert broker_security(Settings(kafka_security_protocol="PLAINTEXT")) is None
    scram = Settings().as_kafka_principal("intake", "s3cret")
    assert client_security(scram) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "intake", "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(scram)
    tls = Settings(kafka_security_protocol="SASL_SSL").as_kafka_principal("admin", "pw", "PLAIN")
    args = client_security(tls)
    assert (args["security_protocol"], args["sasl_mechanism"]) == ("SASL_SSL", "PLAIN")
    assert isinstance(args["ssl_context"], ssl.SSLContext) and args["ssl_context"].check_hostname
    security = broker_security(tls)
    assert security is not None and security.use_ssl


def test_settings_that_cannot_connect_are_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="FLEXLEDGER_KAFKA_SECURITY_PROTOCOL"):
        client_security(Settings(kafka_security_protocol="SSL"))
    with pytest.raises(ValueError, match="FLEXLEDGER_KAFKA_SASL_MECHANISM"):
        client_security(Settings(kafka_sasl_mechanism="GSSAPI").as_kafka_principal("x", "y", "GSSAPI"))
    with pytest.raises(ValueError, match="FLEXLEDGER_KAFKA_USERNAME"):
        client_security(Settings())


# ---- flexledger dev env ----------------------------------------------------------------------


def test_dev_env_names_the_principal_and_prints_its_password_only_when_asked(tmp_path: Path) -> None:
    from flexledger.devstack import credentials
    from flexledger.devstack.cli import app

    settings = Settings(state_dir=str(tmp_path))
    password = credentials.ensure_password(settings, "finance")
    assert credentials.password_file(settings, "finance").stat().st_mode & 0o777 == 0o600
    env = settings.as_env()
    shown = CliRunner().invoke(app, ["env", "--principal", "finance"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "export FLEXLEDGER_KAFKA_USERNAME=finance" in shown.output
    assert password not in shown.output and "--show-password" in shown.output
    revealed = CliRunner().invoke(app, ["env", "--principal", "finance", "--show-password"], env=env)
    assert f"export FLEXLEDGER_KAFKA_PASSWORD={password}" in revealed.output
    unknown = CliRunner().invoke(app, ["env", "--principal", "mallory"], env=env)
    assert unknown.exit_code == 1 and "no password" in unknown.output
