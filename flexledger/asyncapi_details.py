"""What FastStream's AsyncAPI document leaves out, added by `flexledger.contracts_gen`: for every channel
its delivery semantics (at least once, the de-duplication key, the ordering key, retention, which books),
and for every message a descriptive name, its headers (CloudEvents binary mode, trace context,
`correlation_id`), its key and an example (`contracts/examples/<message name>.json`, a real demo record
with its identity numbers replaced). Receive channels declare the same object payload as the send
channel of their address (FastStream writes the batch subscriber's argument, a list, instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.facts import FACT_TYPES
from contracts.topics import ALL_TOPICS, BOOK_TOPICS, SANDBOX_PREFIX, Topic

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "contracts" / "examples"
RETENTION = ("Retention: the cluster's default, 7 days on the shipped brokers (deploy/kafka: "
             "log.retention.hours=168): a subscriber reads within that window or misses messages.")

TOPIC_CONFIGURATION = {"cleanup.policy": ["delete"], "retention.ms": 7 * 24 * 3600 * 1000}


@dataclass(frozen=True)
class Message:
    """One kind of message: its name, what ce_id/ce_subject/the key hold, and how it is ordered."""

    name: str
    summary: str
    ce_type: str | None  # None: not a CloudEvent (the agency feeds)
    ce_id: str
    ce_subject: str
    key: str
    ordering: str
    schema: str | None = None  # the payload's component schema; None: keep FastStream's


_PSEUDONYMOUS_KEY = ("<book>/<keyed pseudonym of the beneficiary>: HMAC-SHA256 of the beneficiary under the "
                     "partition-key secret, so the key names no one")
_SOURCE_POSITION = "<source topic>/<partition>/<offset> of the message that could not be taken in"


def _dead_letter(service: str) -> Message:
    return Message(
        "DeadLetter", f"A message {service}'s consumer refused, with the reason (identity numbers masked)",
        f"flexledger.{service}.dead-letter.v1", "dead_letter_id", _SOURCE_POSITION, _SOURCE_POSITION,
        "per source position: one message's repeats stay together", "DeadLetterV1")


MESSAGES: dict[str, Message] = {
    "flexledger.intake.facts.v1": Message(
        "RecordedFact", "A submission intake recorded, accepted or rejected",
        "flexledger.intake.fact.v1", "a UUID derived from <book>/<seq>", "<book>/<seq>",
        "<book>/<keyed pseudonym of the fact's worker, else enterprise or park>",
        "per subject, in intake's recording order; seq is gap-free per book", "FactMessageV1"),
    "flexledger.intake.agency-facts.v1": Message(
        "AgencyFact", "One fact an agency submits for intake to validate", None,
        "(not required: intake de-duplicates by the fact's id)", "(not required)",
        "<book>/<subject> (the agency's choice; keep one subject's facts on one key)",
        "per key, as the agency sent them"),
    "flexledger.intake.dead-letters.v1": _dead_letter("intake"),
    "flexledger.eligibility.decisions.v1": Message(
        "LedgerDecision", "A decision of the eligibility ledger: grant, clawback, extension, statistic, "
        "recognition (and their revocations) or rejection", "flexledger.eligibility.decision.v1",
        "decision_id", "<book>/<decision_id>", _PSEUDONYMOUS_KEY,
        "per beneficiary, in ledger order (ledger_sequence)", "DecisionV1"),
    "flexledger.eligibility.statistics.v1": Message(
        "NewEmploymentStatistic", "An urban new-employment statistic or its revocation, pseudonymised",
        "flexledger.eligibility.statistic.v1", "statistic_id (the ledger decision's id)",
        "<book>/<statistic_id>", "<book>/<pseudonym>", "per worker pseudonym", "StatisticV1"),
    "flexledger.eligibility.dead-letters.v1": _dead_letter("eligibility"),
    "flexledger.payments.orders.v1": Message(
        "PaymentOrderRecorded", "What payments recorded for one money decision: an order created, or a "
        "clawback's cancellation and receivable", "flexledger.payments.order.v1",
        "order_id (= the decision id)", "<book>/<order_id>", _PSEUDONYMOUS_KEY,
        "per beneficiary, in payments' recording order", "PaymentOrderV1"),
    "flexledger.payments.order-events.v1": Message(
        "PaymentOrderChanged", "One change of one payment order's state; fold them to mirror every order",
        "flexledger.payments.order-event.v1", "event_id (<book>/<position in payments' log>/<index>)",
        "<book>/<order_id>", _PSEUDONYMOUS_KEY,
        "per beneficiary (so per order), in payments' recording order", "OrderEventV1"),
    "flexledger.payments.disbursements.v1": Message(
        "DisbursementInstruction", "A batch of payments for the Finance Bureau",
        "flexledger.payments.disbursement.v1", "batch_id", "<book>/<batch_id>", "batch_id",
        "per batch", "DisbursementInstructionV1"),
    "flexledger.payments.settlements.v1": Message(
        "BankSettlement", "The bank's results for entries of one batch (the Finance Bureau publishes it)",
        "flexledger.payments.settlement.v1", "settlement_id", "<book>/<batch_id>", "batch_id",
        "per batch; each entry's result is final", "SettlementV1"),
    "flexledger.payments.dead-letters.v1": _dead_letter("payments"),
    "flexledger.audit.checkpoints.v1": Message(
        "SignedCheckpoint", "An Ed25519-signed checkpoint of the decision ledger's hash chain",
        "flexledger.audit.checkpoint.v1", "<ledger>-<up_to_notification_id>",
        "<ledger>/<up_to_notification_id>", "ledger", "one partition: in signing order", "CheckpointV1"),
}


def _production_name(address: str) -> str:
    name = address.removeprefix(SANDBOX_PREFIX)
    if name.startswith("flexledger.intake.agency-facts.v1."):
        return "flexledger.intake.agency-facts.v1"
    return name


def _topic(address: str) -> Topic:
    return next(topic for topic in ALL_TOPICS if topic.name == address)


def headers_schema(message: Message) -> dict[str, Any]:
    """The Kafka headers of `message`, as a JSON Schema object (AsyncAPI `headers`)."""
    if message.ce_type is None:  # an agency's fact: intake reads only the book header
        return {"type": "object", "properties": {"flexledger-book": {
            "type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$",
            "description": "the book the fact is for; 'main' when absent"}}}
    properties: dict[str, Any] = {
        "ce_specversion": {"const": "1.0",
                           "description": "CloudEvents 1.0, Kafka protocol binding, binary mode"},
        "ce_id": {"type": "string", "description": f"the event's id: {message.ce_id}. The same message "
                  "published again (at least once) has the same ce_id: de-duplicate by it"},
        "ce_source": {"type": "string", "description": "the publishing service: /flexledger/<service> "
                      "(settlements: the Finance Bureau's bank)"},
        "ce_type": {"const": message.ce_type, "description": "the kind of event (one per message kind)"},
        "ce_time": {"type": "string", "format": "date-time",
                    "description": "when the event happened (RFC 3339, UTC)"},
        "ce_subject": {"type": "string", "description": f"{message.ce_subject}; never an identity number"},
        "content-type": {"const": "application/json", "description": "the value is UTF-8 JSON"},
        "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                        "description": "W3C trace context of the work that produced the message (optional)"},
        "tracestate": {"type": "string", "description": "W3C trace state (optional)"},
        "correlation_id": {"type": "string", "description": "FastStream's correlation id; the outbox relays "
                           "set it to ce_id. Informational: de-duplicate by ce_id"},
    }
    if message.schema in ("FactMessageV1", "DecisionV1"):
        properties["flexledger_mac"] = {"type": "string", "description": (
            "HMAC-SHA256 tag (base64) of the topic and value for the consuming service "
            "(docs/design/kafka-trust.md); outside subscribers may ignore it")}
    return {"type": "object", "required": ["ce_specversion", "ce_id", "ce_source", "ce_type"],
            "properties": properties}


def channel_semantics(message: Message, address: str) -> str:
    topic = _topic(address)
    if address.startswith(SANDBOX_PREFIX):
        books = "Books: sandbox books only (every book not in FLEXLEDGER_PRODUCTION_BOOKS); no outside " \
                "subscriber may read it."
    elif topic in BOOK_TOPICS:
        books = "Books: the production books only (FLEXLEDGER_PRODUCTION_BOOKS, default main); the field " \
                "`book` says which."
    else:
        books = "Books: every book (the field `book`, when known, says which)."
    dedupe = f"de-duplicate by ce_id ({message.ce_id})" if message.ce_type else \
        "intake de-duplicates by the fact's id"
    return (f"Delivery: at least once; {dedupe}. Ordering: per Kafka key ({message.key}); "
            f"{message.ordering}; {topic.partitions} partition(s). {RETENTION} {books}")


def _example(message: Message) -> list[dict[str, Any]]:
    """`<name>.json`, then its variants `<name>.<variant>.json` (e.g. a clawback besides a grant)."""
    paths = [EXAMPLES_DIR / f"{message.name}.json", *sorted(EXAMPLES_DIR.glob(f"{message.name}.*.json"))]
    out = []
    for path in paths:
        if path.is_file():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            out.append({"name": recorded["name"], "summary": recorded["summary"],
                        "headers": recorded["headers"], "payload": recorded["payload"]})
    return out


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastStream's AsyncAPI 3.0, as a dict) with the details above."""
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    renamed: dict[str, str] = {}  # old "#/channels/<c>/messages/<m>" -> new
    for channel_id, channel in document["channels"].items():
        message = MESSAGES[_production_name(channel["address"])]
        semantics = channel_semantics(message, channel["address"])
        channel["description"] = f"{channel.get('description', '').rstrip()} {semantics}".strip()
        channel["bindings"]["kafka"].update(partitions=_topic(channel["address"]).partitions,
                                            topicConfiguration=TOPIC_CONFIGURATION)
        new_messages = {}
        for old_name, ref in channel["messages"].items():
            component_id = _unescape(ref["$ref"].removeprefix("#/components/messages/"))
            component = messages[component_id]
            component["payload"] = {"$ref": f"#/components/schemas/{message.schema}"} if message.schema \
                else _any_fact(schemas)
            component.update(name=message.name, title=message.name, summary=message.summary,
                             contentType="application/json", headers=headers_schema(message),
                             bindings={"kafka": {"bindingVersion": "0.4.0", "key": {
                                 "type": "string", "description": message.key}}})
            if examples := _example(message):
                component["examples"] = examples
            new_messages[message.name] = ref
            renamed[f"#/channels/{_escape(channel_id)}/messages/{old_name}"] = \
                f"#/channels/{_escape(channel_id)}/messages/{message.name}"
        channel["messages"] = new_messages
    for operation in document["operations"].values():
        operation["messages"] = [{"$ref": renamed.get(ref["$ref"], ref["$ref"])}
                                 for ref in operation["messages"]]
    for unused in [name for name in schemas if name.endswith(":Payload") and not _referenced(document, name)]:
        del schemas[unused]
    return document


def _any_fact(schemas: dict[str, Any]) -> dict[str, Any]:
    """One fact of any type (contracts/schemas/fact.<type>.json), each added to the components."""
    for name, model in FACT_TYPES.items():
        schemas[f"Fact_{name}"] = model.model_json_schema(mode="validation")
    return {"oneOf": [{"$ref": f"#/components/schemas/Fact_{name}"} for name in sorted(FACT_TYPES)],
            "description": "one fact, told apart by its `type`"}


def _escape(channel_id: str) -> str:
    """A channel id as FastStream writes it in a JSON pointer (`<`, `>` percent-encoded)."""
    return channel_id.replace("<", "%3C").replace(">", "%3E")


def _unescape(pointer: str) -> str:
    return pointer.replace("%3C", "<").replace("%3E", ">")


def _referenced(document: dict[str, Any], schema: str) -> bool:
    return f'"#/components/schemas/{_escape(schema)}"' in json.dumps(document)
