"""Who may do what on Kafka: the one access table (docs/design/kafka-trust.md shows it, rendered by
`markdown_table`; a unit test keeps the two the same).

Every client connects as a principal of its own: a service, an agency's feed client, a subscriber
(another agency), or one of the project's tools. A principal may write the topics under `writes`, read
the topics under `reads`, and consume in the groups under `groups` (or any group starting with
`group_prefix`: subscribers name their own groups). Nothing else: the broker runs with
`allow.everyone.if.no.acl.found=false`, so what is not granted here is refused. `admin` is the broker's
super user (`super.users`) and needs no ACL; it provisions topics, SCRAM users and these ACLs, and no
service or subscriber runs as it.

Sandbox books (every book but `Settings.production_books`) have topics of their own, the `sandbox.`
twins of the topics that carry a book's data (`contracts.topics.BOOK_TOPICS`). The services get the
same rights on a twin as on its production topic; no outside subscriber gets any, so Finance,
Statistics, tax and auditors never see a sandbox book. The bank simulator settles sandbox books as
`sandbox_finance`, so the `finance` principal never touches them either.

`acls()` expands the table into the broker's ACLs (ALLOW, any host); `flexledger kafka acls apply`
makes the broker's ACLs exactly these.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from contracts.topics import (
    AGENCIES,
    CHECKPOINTS,
    DEAD_LETTERS,
    DECISIONS,
    DISBURSEMENTS,
    ELIGIBILITY_DEAD_LETTERS,
    FACTS,
    ORDER_EVENTS,
    ORDERS,
    PAYMENTS_DEAD_LETTERS,
    SETTLEMENTS,
    STATISTICS,
    Topic,
    agency_feed,
    sandbox_twin,
)

ADMIN = "admin"
BENCH_TOPIC_PREFIX = "flexledger.bench."


@dataclass(frozen=True)
class Principal:
    name: str
    who: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    group_prefix: str = ""
    topic_prefix: str = ""  # read and write any topic starting with it (the benchmark's scratch topics)
    super_user: bool = False
    dev_only: bool = False  # only on the local stack (`flexledger dev`), never in compose


def _with_twins(*topics: Topic) -> tuple[str, ...]:
    """Each topic's name and its sandbox twin's: a service handles every book."""
    return tuple(name for topic in topics for name in (topic.name, sandbox_twin(topic).name))


def _agency(agency: str) -> Principal:
    return Principal(agency, f"{agency}'s feed client: publishes its facts for intake",
                     writes=(agency_feed(agency).name,))


PRINCIPALS: tuple[Principal, ...] = (
    Principal(ADMIN, "the broker's super user: creates topics, SCRAM users and ACLs (`flexledger dev`, "
                     "`flexledger kafka`); tests inject and inspect messages as it", super_user=True),
    Principal("intake", "the intake service",
              writes=(*_with_twins(FACTS), DEAD_LETTERS.name),
              reads=tuple(agency_feed(a).name for a in AGENCIES), groups=("intake",)),
    Principal("eligibility", "the eligibility service",
              writes=(*_with_twins(DECISIONS, STATISTICS), CHECKPOINTS.name, ELIGIBILITY_DEAD_LETTERS.name),
              reads=_with_twins(FACTS), groups=("eligibility",)),
    Principal("payments", "the payments service",
              writes=(*_with_twins(ORDERS, DISBURSEMENTS, ORDER_EVENTS), PAYMENTS_DEAD_LETTERS.name),
              reads=_with_twins(DECISIONS, SETTLEMENTS), groups=("payments", "payments-settlements")),
    *(_agency(agency) for agency in AGENCIES),
    Principal("finance", "the Finance Bureau and its bank (`flexledger payments bank-simulator`)",
              writes=(SETTLEMENTS.name,), reads=(ORDERS.name, DISBURSEMENTS.name, ORDER_EVENTS.name),
              group_prefix="finance."),
    Principal("statistics", "the Statistics Bureau", reads=(STATISTICS.name,), group_prefix="statistics."),
    Principal("tax", "the tax bureau", reads=(DECISIONS.name,), group_prefix="tax."),
    Principal("auditor", "outside auditors (`flexledger audit checkpoints`)", reads=(CHECKPOINTS.name,),
              group_prefix="auditor."),
    Principal("subscriber", "another agency's developer trying the published contracts (`flexledger "
                            "subscribe`): reads the published topics, no book but the production ones",
              reads=(DECISIONS.name, STATISTICS.name, ORDERS.name, ORDER_EVENTS.name, CHECKPOINTS.name),
              group_prefix="subscriber.", dev_only=True),
    Principal("sandbox_finance", "the bank of sandbox books (`flexledger payments bank-simulator --sandbox`, "
                                 "tests, `flexledger demo` on a sandbox book)",
              writes=(sandbox_twin(SETTLEMENTS).name,),
              reads=(sandbox_twin(ORDERS).name, sandbox_twin(DISBURSEMENTS).name,
                     sandbox_twin(ORDER_EVENTS).name),
              group_prefix="sandbox_finance.", dev_only=True),
    Principal("bench", "the benchmarks' scratch topics (bench/raw_limits.py)",
              topic_prefix=BENCH_TOPIC_PREFIX, group_prefix="bench.", dev_only=True),
)


def principal(name: str) -> Principal:
    for p in PRINCIPALS:
        if p.name == name:
            return p
    raise KeyError(f"no Kafka principal {name!r} in the access table (flexledger.kafka_access); "
                   f"the principals are {', '.join(p.name for p in PRINCIPALS)}")


def principals(*, dev: bool = True) -> tuple[Principal, ...]:
    """The principals with a credential: all but the development-only ones unless `dev`."""
    return tuple(p for p in PRINCIPALS if dev or not p.dev_only)


# ---- the broker's ACLs ----------------------------------------------------------------------------

TOPIC, GROUP = "TOPIC", "GROUP"
LITERAL, PREFIXED = "LITERAL", "PREFIXED"
READ, WRITE = "READ", "WRITE"


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW ACL for any host, in the broker's words (AclCommand prints them so). READ and WRITE
    imply DESCRIBE; READ on a group lets a consumer join it and commit its offsets."""

    principal: str
    resource_type: str  # TOPIC | GROUP
    pattern_type: str  # LITERAL | PREFIXED
    resource: str
    operation: str  # READ | WRITE


def acls(table: Iterable[Principal] = PRINCIPALS, *, dev: bool = True) -> frozenset[Acl]:
    out: set[Acl] = set()
    for p in table:
        if p.dev_only and not dev:
            continue
        out.update(Acl(p.name, TOPIC, LITERAL, topic, WRITE) for topic in p.writes)
        out.update(Acl(p.name, TOPIC, LITERAL, topic, READ) for topic in p.reads)
        out.update(Acl(p.name, GROUP, LITERAL, group, READ) for group in p.groups)
        if p.group_prefix:
            out.add(Acl(p.name, GROUP, PREFIXED, p.group_prefix, READ))
        if p.topic_prefix:
            out.update(Acl(p.name, TOPIC, PREFIXED, p.topic_prefix, op) for op in (READ, WRITE))
    return frozenset(out)


_RESOURCE_OPTION = {"TOPIC": "--topic", "GROUP": "--group", "TRANSACTIONAL_ID": "--transactional-id",
                    "DELEGATION_TOKEN": "--delegation-token", "USER": "--user-principal"}


def acl_command_args(action: str, entries: Iterable[tuple[Acl, str]]) -> list[list[str]]:
    """AclCommand arguments (`--add` or `--remove`) for (ACL, host) pairs, in as few calls as they
    allow. One call grants (or revokes) every operation it names on every resource it names, so the
    resources that get the same operations for the same principal, host and pattern type share one."""
    per_resource: dict[tuple[str, str, str, str, str], set[str]] = {}
    for acl, host in entries:
        key = (acl.principal, host, acl.pattern_type, acl.resource_type, acl.resource)
        per_resource.setdefault(key, set()).add(acl.operation)
    calls: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
    for (who, host, pattern, kind, resource), operations in sorted(per_resource.items()):
        resource_args = ["--cluster"] if kind == "CLUSTER" else [_RESOURCE_OPTION[kind], resource]
        calls.setdefault((who, host, pattern, tuple(sorted(operations))), []).extend(resource_args)
    out = []
    for (who, host, pattern, ops), resources in calls.items():
        principal_arg = who if ":" in who else f"User:{who}"
        args = [action, "--allow-principal", principal_arg, "--allow-host", host,
                "--resource-pattern-type", pattern.lower()]
        out.append(args + [arg for op in ops for arg in ("--operation", op)] + resources)
    return out


# ---- the compose stack's users and ACLs (deploy/kafka/compose/access.sh) -------------------------


def password_variable(name: str) -> str:
    """The environment variable holding `name`'s password in deploy/compose.yaml."""
    return f"FLEXLEDGER_KAFKA_PASSWORD_{name.upper()}"


def compose_script(table: Iterable[Principal] = PRINCIPALS) -> str:
    """deploy/kafka/compose/access.sh: the table's SCRAM users (passwords from the environment) and
    ACLs, added as `admin` with Kafka's own scripts by the compose stack's one-shot `kafka-access`."""
    table = [p for p in table if not p.dev_only]
    users = [f'user {p.name} "${{{password_variable(p.name)}:?set {password_variable(p.name)}}}"'
             for p in table if not p.super_user]
    grants = [" ".join(["acl", *(shlex.quote(arg) for arg in args[1:])])
              for args in acl_command_args("--add", [(acl, "*") for acl in sorted(acls(table, dev=False))])]
    return _COMPOSE_SCRIPT.format(users="\n".join(users), acls="\n".join(grants))


_COMPOSE_SCRIPT = """#!/usr/bin/env bash
# GENERATED from flexledger/kafka_access.py by `flexledger kafka acls script`: do not edit (a unit test
# keeps it current). The compose stack's Kafka principals (SCRAM-SHA-512 users, each password from
# FLEXLEDGER_KAFKA_PASSWORD_<NAME>) and the access table's ACLs, added as `admin` by the one-shot
# `kafka-access` job (apache/kafka image) at every `docker compose up`: idempotent, and a changed password
# is the rotation. It only adds: an ACL taken out of the table stays until removed with kafka-acls.sh.
set -euo pipefail
: "${{FLEXLEDGER_KAFKA_ADMIN_PASSWORD:?set FLEXLEDGER_KAFKA_ADMIN_PASSWORD}}"
bootstrap=${{KAFKA_BOOTSTRAP:-kafka-1:9092,kafka-2:9092,kafka-3:9092}}
bin=${{KAFKA_BIN:-/opt/kafka/bin}}
umask 077
admin=$(mktemp)
scram=$(mktemp)
trap 'rm -f "$admin" "$scram"' EXIT
plain=org.apache.kafka.common.security.plain.PlainLoginModule
cat > "$admin" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=$plain required username="admin" password="$FLEXLEDGER_KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=${{KAFKA_CA_FILE:-/pki/ca/ca.crt}}
PROPERTIES

user() {{  # NAME PASSWORD: create or update NAME's SCRAM credential (the password never on a command line)
  printf 'SCRAM-SHA-512=iterations=8192,password=%s\\n' "$2" > "$scram"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$admin" \\
    --alter --entity-type users --entity-name "$1" --add-config-file "$scram"
}}

acl() {{  # AclCommand --add arguments
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$admin" --add "$@" >/dev/null
}}

{users}

{acls}
echo "kafka-access: users and ACLs of the access table applied"
"""


# ---- the table in docs/design/kafka-trust.md -----------------------------------------------------


def markdown_table(table: Iterable[Principal] = PRINCIPALS) -> str:
    rows = ["| principal | who | writes (topics) | reads (topics) | consumer groups |",
            "| --- | --- | --- | --- | --- |"]
    for p in table:
        if p.super_user:
            rows.append(f"| `{p.name}` | {p.who} | (super user) | (super user) | (super user) |")
            continue
        writes = [f"`{t}`" for t in p.writes] + ([f"`{p.topic_prefix}*`"] if p.topic_prefix else [])
        reads = [f"`{t}`" for t in p.reads] + ([f"`{p.topic_prefix}*`"] if p.topic_prefix else [])
        groups = [f"`{g}`" for g in p.groups] + ([f"`{p.group_prefix}*`"] if p.group_prefix else [])
        who = p.who + (" (local stack only)" if p.dev_only else "")
        rows.append(f"| `{p.name}` | {who} | {'<br>'.join(writes) or '-'} | {'<br>'.join(reads) or '-'} "
                    f"| {'<br>'.join(groups) or '-'} |")
    return "\n".join(rows) + "\n"
