"""`flexledger subscribe TOPIC`: the reference subscriber of the published topics.

Written to be read by another agency's developers (docs/design/contracts.md, "For subscribing
agencies"): plain aiokafka, the wire models of `contracts` (the published JSON Schemas are generated
from them) and the CloudEvents headers. Each record is checked (CloudEvents 1.0 binary-mode headers of
the topic's event type; a value valid against the topic's schema), repeats are dropped by ce_id
(delivery is at least once), and each message is printed as one JSON line.

It connects as a Kafka principal: FLEXLEDGER_KAFKA_USERNAME/_PASSWORD when set, else the local stack's
`--principal` (default `subscriber`, read-only on the published topics). It reads every partition
itself (no consumer group, nothing committed): a production subscriber would consume in a group of its
own (`<principal>.<name>`) and keep the ce_ids it has handled with what it did about them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import OrderedDict
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError

from contracts import topics
from contracts.cloudevents import CloudEventError, from_headers
from contracts.decisions import DecisionV1
from contracts.messages import (
    CheckpointV1,
    DisbursementInstructionV1,
    FactMessageV1,
    OrderEventV1,
    PaymentOrderV1,
    SettlementV1,
    StatisticV1,
)

# What each published topic carries: its model (= contracts/schemas/<name>.json) and CloudEvents type.
PUBLISHED: dict[str, tuple[type[BaseModel], str]] = {
    topics.FACTS.name: (FactMessageV1, "flexledger.intake.fact.v1"),
    topics.DECISIONS.name: (DecisionV1, "flexledger.eligibility.decision.v1"),
    topics.STATISTICS.name: (StatisticV1, "flexledger.eligibility.statistic.v1"),
    topics.ORDERS.name: (PaymentOrderV1, "flexledger.payments.order.v1"),
    topics.ORDER_EVENTS.name: (OrderEventV1, "flexledger.payments.order-event.v1"),
    topics.DISBURSEMENTS.name: (DisbursementInstructionV1, "flexledger.payments.disbursement.v1"),
    topics.SETTLEMENTS.name: (SettlementV1, "flexledger.payments.settlement.v1"),
    topics.CHECKPOINTS.name: (CheckpointV1, "flexledger.audit.checkpoint.v1"),
}
SEEN_MAX = 1_000_000  # ce_ids remembered for de-duplication (a redelivery comes soon after the original)


class Refused(ValueError):
    """A record that is not the topic's contract."""


def read(record: ConsumerRecord[bytes, bytes], model: type[BaseModel], ce_type: str) -> dict[str, Any]:
    """One record as a JSON line: its position and key, its CloudEvent attributes and its data."""
    try:
        event = from_headers([(name, value) for name, value in record.headers if value is not None])
    except CloudEventError as exc:
        raise Refused(str(exc)) from None
    if event.type != ce_type:
        raise Refused(f"ce_type {event.type!r} is not {ce_type}")
    try:
        data = model.model_validate_json(record.value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]["msg"]
        raise Refused(f"not a {model.__name__}: {exc.error_count()} error(s), first: {first}") from None
    return {
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "key": record.key.decode() if record.key else None,
        "ce": {"id": event.id, "type": event.type, "source": event.source, "subject": event.subject,
               "time": event.time.isoformat() if event.time else None, "traceparent": event.traceparent},
        "data": data.model_dump(mode="json"),
    }


async def subscribe(
    client: dict[str, Any], topic: str, out: IO[str], *, from_beginning: bool = False,
    book: str | None = None, as_json: bool = True, stop_at_end: bool = False,
) -> int:
    """Print `topic`'s messages to `out` until interrupted (or, with `stop_at_end`, once it has read
    what the topic held when it started); the number printed."""
    model, ce_type = PUBLISHED[topic.removeprefix(topics.SANDBOX_PREFIX)]  # a sandbox twin: the same contract
    consumer = AIOKafkaConsumer(**client, enable_auto_commit=False)
    await consumer.start()
    seen: OrderedDict[str, None] = OrderedDict()
    printed = 0
    try:
        if topic not in await consumer.topics():  # the topics this principal may see
            raise Refused(f"{topic}: no such topic, or this principal may not read it")
        count = next(t.partitions for t in topics.ALL_TOPICS if t.name == topic)  # as the AsyncAPI says
        partitions = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(partitions)
        await (consumer.seek_to_beginning if from_beginning else consumer.seek_to_end)(*partitions)
        ends = await consumer.end_offsets(partitions)
        while not (stop_at_end and all([await consumer.position(tp) >= ends[tp] for tp in partitions])):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    try:
                        message = read(record, model, ce_type)
                    except Refused as exc:  # say so, and go on: one bad record stops no one
                        where = f"{record.topic}/{record.partition}/{record.offset}"
                        print(f"refused {where}: {exc}", file=sys.stderr)
                        continue
                    if message["ce"]["id"] in seen or (book and message["data"].get("book") != book):
                        continue
                    seen[message["ce"]["id"]] = None
                    if len(seen) > SEEN_MAX:
                        seen.popitem(last=False)
                    out.write(json.dumps(message, ensure_ascii=False) if as_json else _line(message))
                    out.write("\n")
                    out.flush()
                    printed += 1
    finally:
        await consumer.stop()
    return printed


def _line(message: dict[str, Any]) -> str:
    data = message["data"]
    what = data.get("kind") or data.get("event") or data.get("change") or data.get("outcome") or ""
    return f"{message['ce']['time'] or '-'}  {message['ce']['type']}  {message['ce']['subject']}  {what}"


def subscribe_command(
    topic: str = typer.Argument(..., help=f"one of: {', '.join(PUBLISHED)}"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="read the topic from its start"),
    book: str | None = typer.Option(None, help="only this book's messages"),
    as_json: bool = typer.Option(False, "--json", help="print JSON Lines (default: one short line each)"),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="append JSON Lines to a file")] = None,
    principal: str = typer.Option("subscriber", help="the local stack's principal to connect as"),
    stop_at_end: bool = typer.Option(False, "--stop-at-end", help="stop once caught up with the topic"),
) -> None:
    """Consume a published topic as a subscriber would: validate, de-duplicate by ce_id, print JSON Lines."""
    from flexledger.devstack.credentials import as_principal, for_tool
    from services.runtime.kafka import client_security
    from services.runtime.settings import Settings

    if topic.removeprefix(topics.SANDBOX_PREFIX) not in PUBLISHED:
        raise typer.BadParameter(f"not a published topic; the topics: {', '.join(PUBLISHED)}",
                                 param_hint="TOPIC")
    # The local stack's listener is SASL_PLAINTEXT on loopback by design (docs/design/kafka-trust.md):
    # aiokafka's warning about it on every connection would bury the output.
    logging.getLogger("aiokafka.conn").setLevel(logging.ERROR)
    settings = Settings.from_env()
    client = for_tool(settings, principal) if principal == "subscriber" else as_principal(settings, principal)
    args = {"bootstrap_servers": client.kafka_bootstrap, **client_security(client)}
    out = output.open("a", encoding="utf-8") if output else sys.stdout
    try:
        asyncio.run(subscribe(args, topic, out, from_beginning=from_beginning, book=book,
                              as_json=as_json or output is not None, stop_at_end=stop_at_end))
    except KeyboardInterrupt:
        pass
    except Refused as exc:
        print(f"flexledger subscribe: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        if output:
            out.close()
