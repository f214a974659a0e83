"""The Kafka topic catalogue: every topic that crosses a service boundary, with its partition key.

Keys keep all messages about one subject in order without naming anyone: a fact is keyed by its
worker, else its enterprise or park, a decision or order by its beneficiary — each as `<book>/` and a
keyed pseudonym of the subject (`services.runtime.publishing.PartitionKeys`, docs/design/kafka-trust.md).

Sandbox books never reach production subscribers: the topics that carry a book's data (`BOOK_TOPICS`)
each have a sandbox twin, `sandbox.` + the production name, and `topic_for` puts a message of the
city's production books (`Settings.production_books`) on the production topic and a message of every
other book on the twin. No `flexledger.`-prefixed name, ACL or subscription can match a twin.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    key: str
    purpose: str
    partitions: int = 6


FACTS = Topic(
    "flexledger.intake.facts.v1", "intake", "book/pseudonym(subject)",
    "accepted facts and rejections, in intake's acceptance order per subject",
)
# The agencies that publish facts on Kafka, each on a feed of its own that only its own principal may
# write (docs/design/kafka-trust.md): a consumer cannot see who produced a message, so the topic is
# what says which agency sent it, never a header.
AGENCIES: tuple[str, ...] = ("hr_bureau", "social_insurance_agency", "talent_office", "park_authority")
AGENCY_FEED_PREFIX = "flexledger.intake.agency-facts.v1."


def agency_feed(agency: str) -> Topic:
    """The feed only `agency`'s principal may write: `flexledger.intake.agency-facts.v1.<agency>`."""
    if agency not in AGENCIES:
        raise ValueError(f"unknown agency {agency!r}; the agencies are {', '.join(AGENCIES)}")
    return Topic(
        AGENCY_FEED_PREFIX + agency, agency, "book/subject",
        f"facts published by {agency} for intake to validate (the topic names the agency)",
    )


AGENCY_FEEDS: tuple[Topic, ...] = tuple(agency_feed(agency) for agency in AGENCIES)
DEAD_LETTERS = Topic(
    "flexledger.intake.dead-letters.v1", "intake", "source topic/partition/offset",
    "agency messages that could not be decoded or were rejected, with the reason", partitions=1,
)
DECISIONS = Topic(
    "flexledger.eligibility.decisions.v1", "eligibility", "book/pseudonym(beneficiary)",
    "grants, clawbacks, extensions, statistics, recognitions and rejections",
)
STATISTICS = Topic(
    "flexledger.eligibility.statistics.v1", "eligibility", "book/pseudonym",
    "urban new employment statistic for the Statistics Bureau, pseudonymised",
)
ORDERS = Topic(
    "flexledger.payments.orders.v1", "payments", "book/pseudonym(beneficiary)",
    "payment orders, cancellations and recoveries",
)
ORDER_EVENTS = Topic(
    "flexledger.payments.order-events.v1", "payments", "book/pseudonym(beneficiary)",
    "every change of every payment order's state (created, awaiting budget, committed, cancelled, offset, "
    "batched, paid, returned), for subscribers that mirror orders",
)
DISBURSEMENTS = Topic(
    "flexledger.payments.disbursements.v1", "payments", "batch id",
    "disbursement instructions for the Finance Bureau",
)
SETTLEMENTS = Topic(
    "flexledger.payments.settlements.v1", "finance bureau / bank", "batch id",
    "confirmations and bank returns of disbursed payments",
)
CHECKPOINTS = Topic(
    "flexledger.audit.checkpoints.v1", "eligibility", "ledger",
    "Ed25519-signed checkpoints of the decision ledger's hash chain", partitions=1,
)

# Poison input of the eligibility and payments consumers, kept in the service's event store and
# published from its outbox (services.runtime.dead_letters), as `contracts.messages.DeadLetterV1` like
# intake's: the reason, the source position (also the key), the value with identity numbers masked.
# Only `admin` reads them (flexledger/kafka_access.py).
ELIGIBILITY_DEAD_LETTERS = Topic(
    "flexledger.eligibility.dead-letters.v1", "eligibility", "source topic/partition/offset",
    "messages on the facts topic eligibility could not decode, with the reason", partitions=1,
)
PAYMENTS_DEAD_LETTERS = Topic(
    "flexledger.payments.dead-letters.v1", "payments", "source topic/partition/offset",
    "messages on the decisions and settlements topics payments could not decode, with the reason",
    partitions=1,
)

# ---- sandbox books (docs/design/kafka-trust.md, "Sandbox books") --------------------------------

SANDBOX_PREFIX = "sandbox."
# The topics that carry one book's data between services or to subscribers: each has a sandbox twin.
# Checkpoints cover the whole ledger (every book's chain) and stay one topic; dead-letter topics hold
# what their consumer could not read, whatever its book, and stay one per service.
BOOK_TOPICS: tuple[Topic, ...] = (
    FACTS, DECISIONS, STATISTICS, ORDERS, DISBURSEMENTS, SETTLEMENTS, ORDER_EVENTS,
)


def _twin(topic: Topic) -> Topic:
    return replace(topic, name=SANDBOX_PREFIX + topic.name, purpose=f"{topic.purpose}, of sandbox books only")


_TWINS: dict[Topic, Topic] = {topic: _twin(topic) for topic in BOOK_TOPICS}


def sandbox_twin(topic: Topic) -> Topic:
    """The topic that carries `topic`'s messages of sandbox books: `sandbox.<production name>`."""
    twin = _TWINS.get(topic)
    if twin is None:
        raise ValueError(f"{topic.name} is not split by book; the topics that are: "
                         f"{', '.join(t.name for t in BOOK_TOPICS)}")
    return twin


def topic_for(topic: Topic, book: str, production_books: Collection[str]) -> Topic:
    """The topic a message of `book` goes on, where `topic` is the production topic of its kind (one of
    `BOOK_TOPICS`): `topic` itself for a production book, its sandbox twin for every other book."""
    twin = sandbox_twin(topic)  # refuses a topic that is not split by book, whatever the book
    return topic if book in production_books else twin


SANDBOX_FACTS = sandbox_twin(FACTS)
SANDBOX_DECISIONS = sandbox_twin(DECISIONS)
SANDBOX_STATISTICS = sandbox_twin(STATISTICS)
SANDBOX_ORDERS = sandbox_twin(ORDERS)
SANDBOX_DISBURSEMENTS = sandbox_twin(DISBURSEMENTS)
SANDBOX_SETTLEMENTS = sandbox_twin(SETTLEMENTS)
SANDBOX_ORDER_EVENTS = sandbox_twin(ORDER_EVENTS)
SANDBOX_TOPICS: tuple[Topic, ...] = tuple(_TWINS.values())

ALL_TOPICS: tuple[Topic, ...] = (
    FACTS, *AGENCY_FEEDS, DEAD_LETTERS, DECISIONS, STATISTICS, ORDERS, DISBURSEMENTS,
    SETTLEMENTS, CHECKPOINTS, ELIGIBILITY_DEAD_LETTERS, PAYMENTS_DEAD_LETTERS, ORDER_EVENTS, *SANDBOX_TOPICS,
)
