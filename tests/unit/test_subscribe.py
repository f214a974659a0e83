"""The reference subscriber's checks, and the project's CloudEvents headers read and written by the
official CloudEvents SDK (Kafka binding, binary mode): the two interoperate both ways."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from contracts.cloudevents import CloudEvent, from_headers
from contracts.messages import OrderEventV1
from flexledger.subscribe import Refused, read

TOPIC = "flexledger.payments.order-events.v1"
TYPE = "flexledger.payments.order-event.v1"
TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
CHANGE = OrderEventV1(book="main", event_id="main/42/0", order_id="d-1", change="committed",
                      amount_fen=60_000, at=datetime(2024, 6, 1, 1, 2, 3, tzinfo=UTC))


def project_record(headers: dict[str, str], value: bytes) -> ConsumerRecord[bytes, bytes]:
    pairs = [(name, text.encode()) for name, text in headers.items()]
    return ConsumerRecord(TOPIC, 0, 7, 0, 0, b"main/key", value, None, 8, len(value), pairs)


def project_event() -> CloudEvent:
    return CloudEvent(id=CHANGE.event_id, source="/flexledger/payments", type=TYPE, subject="main/d-1",
                      time=CHANGE.at, traceparent=TRACEPARENT)


def test_the_sdk_reads_the_project_headers() -> None:
    value = CHANGE.model_dump_json().encode()
    message = KafkaMessage(headers={k: v.encode() for k, v in project_event().headers().items()},
                           key=b"main/key", value=value)
    event = from_binary(message, JSONFormat())
    attributes = event.get_attributes()
    assert {name: attributes[name] for name in ("specversion", "id", "source", "type", "subject",
                                                "datacontenttype")} == {
        "specversion": "1.0", "id": "main/42/0", "source": "/flexledger/payments", "type": TYPE,
        "subject": "main/d-1", "datacontenttype": "application/json"}
    assert attributes["time"] == CHANGE.at
    assert OrderEventV1.model_validate(event.get_data()) == CHANGE


def test_the_subscriber_reads_what_the_sdk_writes() -> None:
    sdk_event = SdkEvent(
        attributes={"id": CHANGE.event_id, "source": "/flexledger/payments", "type": TYPE,
                    "specversion": "1.0", "subject": "main/d-1", "time": CHANGE.at,
                    "datacontenttype": "application/json"},
        data=CHANGE.model_dump(mode="json"))
    message = to_binary(sdk_event, JSONFormat())
    headers = {name: value.decode() for name, value in message.headers.items()}
    assert from_headers(headers).time == CHANGE.at
    read_back = read(project_record(headers, message.value), OrderEventV1, TYPE)
    assert read_back["ce"]["id"] == CHANGE.event_id
    assert OrderEventV1.model_validate(read_back["data"]) == CHANGE


def test_a_record_of_the_contract_becomes_one_json_line() -> None:
    message = read(project_record(project_event().headers(), CHANGE.model_dump_json().encode()), OrderEventV1,
                   TYPE)
    assert json.loads(json.dumps(message)) == message
    assert (message["key"], message["offset"], message["ce"]["traceparent"]) == ("main/key", 7, TRACEPARENT)
    assert message["data"]["change"] == "committed"


@pytest.mark.parametrize(("headers", "value", "why"), [
    ({"ce_id": "x", "ce_type": TYPE, "ce_specversion": "1.0"}, None, "ce_source"),
    ({**project_event().headers(), "ce_type": "flexledger.payments.order.v1"}, None, "is not"),
    (project_event().headers(), {"change": "committed"}, "not a OrderEventV1"),
    (project_event().headers(), {**CHANGE.model_dump(mode="json"), "change": "teleported"},
     "not a OrderEventV1"),
])
def test_a_record_outside_the_contract_is_refused(headers: dict[str, str], value: Any, why: str) -> None:
    body = CHANGE.model_dump_json().encode() if value is None else json.dumps(value).encode()
    with pytest.raises(Refused, match=why):
        read(project_record(headers, body), OrderEventV1, TYPE)
