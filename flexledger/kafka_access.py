"""Who may do what on Kafka: the one access table (docs/design/kafka-trust.md shows it, rendered by
`markdown_table`; a unit test keeps the two the same).

Every client connects as a principal of its own: a service, an agency's feed client, a subscriber
(another agency), or one of the project's tools. A principal may write the topics under `writes`, read
the topics under `reads`, and consume in the groups under `groups` (or any group starting with
`group_prefix`: subscribers name their own groups). Nothing else: the broker runs with
`allow.everyone.if.no.acl.found=false`, so what is not granted here is refused. `admin` is the broker's
super user (`super.users`) and needs no ACL; it provisions topics, SCRAM users and these ACLs, and no
service or subscriber runs as it.

`acls()` expands the table into the broker's ACLs (ALLOW, any host); `flexledger kafka acls apply`
makes the broker's ACLs exactly these.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from contracts.topics import (
    AGENCIES,
    AGENCY_FACTS,
    CHECKPOINTS,
    DEAD_LETTERS,
    DECISIONS,
    DISBURSEMENTS,
    ELIGIBILITY_DEAD_LETTERS,
    FACTS,
    ORDERS,
    PAYMENTS_DEAD_LETTERS,
    SETTLEMENTS,
    STATISTICS,
    agency_feed,
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


def _agency(agency: str) -> Principal:
    return Principal(agency, f"{agency}'s feed client: publishes its facts for intake",
                     writes=(agency_feed(agency).name,))


PRINCIPALS: tuple[Principal, ...] = (
    Principal(ADMIN, "the broker's super user: topic provisioning, SCRAM users, ACLs (`flexledger dev`, "
                     "`flexledger kafka`, tests that inject or inspect messages)", super_user=True),
    Principal("intake", "the intake service",
              writes=(FACTS.name, DEAD_LETTERS.name),
              reads=(AGENCY_FACTS.name, *(agency_feed(a).name for a in AGENCIES)), groups=("intake",)),
    Principal("eligibility", "the eligibility service",
              writes=(DECISIONS.name, STATISTICS.name, CHECKPOINTS.name, ELIGIBILITY_DEAD_LETTERS.name),
              reads=(FACTS.name,), groups=("eligibility",)),
    Principal("payments", "the payments service",
              writes=(ORDERS.name, DISBURSEMENTS.name, PAYMENTS_DEAD_LETTERS.name),
              reads=(DECISIONS.name, SETTLEMENTS.name), groups=("payments", "payments-settlements")),
    *(_agency(agency) for agency in AGENCIES),
    Principal("finance", "the Finance Bureau and its bank (`flexledger payments bank-simulator`)",
              writes=(SETTLEMENTS.name,), reads=(ORDERS.name, DISBURSEMENTS.name), group_prefix="finance."),
    Principal("statistics", "the Statistics Bureau", reads=(STATISTICS.name,), group_prefix="statistics."),
    Principal("tax", "the tax bureau", reads=(DECISIONS.name,), group_prefix="tax."),
    Principal("auditor", "outside auditors (`flexledger audit checkpoints`)", reads=(CHECKPOINTS.name,),
              group_prefix="auditor."),
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
