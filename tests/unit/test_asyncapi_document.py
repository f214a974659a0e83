"""What the AsyncAPI document tells a subscriber beyond FastStream's defaults (issue 17)."""

from __future__ import annotations

import json
from typing import Any

from contracts.topics import ELIGIBILITY_DEAD_LETTERS, ORDER_EVENTS, PAYMENTS_DEAD_LETTERS
from flexledger.contracts_gen import ASYNCAPI_FILE, SCHEMAS_DIR

DOCUMENT: dict[str, Any] = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))


def _message(ref: dict[str, str]) -> dict[str, Any]:
    name = ref["$ref"].removeprefix("#/components/messages/").replace("%3C", "<").replace("%3E", ">")
    message: dict[str, Any] = DOCUMENT["components"]["messages"][name]
    return message


def test_every_message_is_named_and_declares_its_headers_and_key() -> None:
    for channel_id, channel in DOCUMENT["channels"].items():
        for name, ref in channel["messages"].items():
            message = _message(ref)
            assert name == message["name"] and name not in ("Message", "SubscribeMessage"), channel_id
            assert message["headers"]["type"] == "object" and message["headers"]["properties"], channel_id
            assert message["bindings"]["kafka"]["key"]["description"], channel_id
        for promise in ("Delivery: at least once", "de-duplicate", "Ordering: per Kafka key", "Retention",
                        "Books"):
            assert promise in channel["description"], (channel_id, promise)


def test_a_cloudevent_message_states_each_binary_mode_header() -> None:
    channel = DOCUMENT["channels"]["flexledger.eligibility.decisions.v1"]
    decision = _message(channel["messages"]["LedgerDecision"])
    headers = decision["headers"]
    assert set(headers["required"]) == {"ce_specversion", "ce_id", "ce_source", "ce_type"}
    assert {"ce_time", "ce_subject", "content-type", "traceparent", "tracestate", "correlation_id"} <= set(
        headers["properties"])
    assert headers["properties"]["ce_type"]["const"] == "flexledger.eligibility.decision.v1"


def test_receive_channels_declare_the_object_payload_of_their_address() -> None:
    payloads: dict[str, set[str]] = {}
    for channel in DOCUMENT["channels"].values():
        for ref in channel["messages"].values():
            payloads.setdefault(channel["address"], set()).add(json.dumps(_message(ref)["payload"]))
    assert all(len(kinds) == 1 for kinds in payloads.values()), payloads
    assert not any('"array"' in kind for kinds in payloads.values() for kind in kinds)


def test_the_dead_letter_and_order_event_topics_are_described() -> None:
    addresses = {channel["address"] for channel in DOCUMENT["channels"].values()}
    assert {ELIGIBILITY_DEAD_LETTERS.name, PAYMENTS_DEAD_LETTERS.name, ORDER_EVENTS.name} <= addresses


def test_hours_bounds_are_json_schema_keywords() -> None:
    hours = json.loads((SCHEMAS_DIR / "fact.monthly_report.json").read_text())["properties"]["hours"]
    assert (hours["minimum"], hours["maximum"]) == (0, 744) and "ge" not in hours and "le" not in hours


def test_the_explanation_is_a_typed_object() -> None:
    decision = json.loads((SCHEMAS_DIR / "decision.v1.json").read_text())
    explanation = decision["properties"]["explanation"]["anyOf"][0]
    assert explanation["type"] == "object"
    assert {"article", "summary", "reason_en", "reason_zh", "parameters", "fact_ids"} <= set(
        explanation["properties"])
