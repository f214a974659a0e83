"""Contracts: committed schemas match the models, CloudEvents headers, partition keys, keyed ids, traces."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider

from contracts.cloudevents import CloudEvent, CloudEventError, from_headers
from contracts.decisions import DecisionV1
from contracts.messages import NO_SUBJECT, WIRE_MODELS, FactMessageV1, fact_subject, valid_book
from contracts.topics import ALL_TOPICS
from flexledger import contracts_gen as generate
from services.runtime.eventstore import keyed_uuid
from services.runtime.publishing import PartitionKeys
from services.runtime.telemetry import JsonLinesSpanExporter, context_from, current_carrier, trace_id_hex

WORKER = "320213197804121019"
ENTERPRISE = "91320213MA1XY0001L"


def test_committed_schemas_and_asyncapi_match_the_code() -> None:
    drifted = [str(p.relative_to(generate.CONTRACTS_DIR.parent)) for p in generate.drifted()]
    assert drifted == [], f"run `python -m flexledger.contracts_gen` and commit: {drifted}"


def test_every_wire_model_has_a_schema_file_naming_its_version() -> None:
    for name, model in WIRE_MODELS.items():
        schema = json.loads((generate.SCHEMAS_DIR / f"{name}.json").read_text())
        assert schema["properties"]["schema_version"]["const"] == 1, name
        assert schema["title"] == model.__name__


def test_asyncapi_names_every_topic_the_services_use() -> None:
    document = json.loads(generate.ASYNCAPI_FILE.read_text())
    addresses = {c["address"] for c in document["channels"].values()}
    assert {"flexledger.intake.facts.v1", "flexledger.eligibility.decisions.v1",
            "flexledger.payments.orders.v1", "flexledger.payments.disbursements.v1",
            "flexledger.payments.settlements.v1"} <= addresses
    assert addresses <= {topic.name for topic in ALL_TOPICS}  # nothing outside the topic catalogue
    assert {"FactMessageV1", "DecisionV1", "PaymentOrderV1"} <= set(document["components"]["schemas"])


def test_cloudevent_headers_round_trip_in_binary_mode() -> None:
    traceparent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    event = CloudEvent(id="e1", source="/flexledger/intake", type="flexledger.intake.fact.v1",
                       subject="main/7", time=datetime(2021, 6, 1, 1, 0, tzinfo=UTC), traceparent=traceparent)
    headers = event.headers()
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_time"] == "2021-06-01T01:00:00Z"
    assert headers["content-type"] == "application/json"
    assert from_headers(headers) == event
    as_kafka = [(k, v.encode()) for k, v in headers.items()]  # aiokafka's list of (str, bytes)
    assert from_headers(as_kafka) == event


def test_cloudevent_without_required_headers_is_refused() -> None:
    with pytest.raises(CloudEventError, match="ce_source"):
        from_headers({"ce_id": "x", "ce_type": "t", "ce_specversion": "1.0"})
    with pytest.raises(CloudEventError, match="specversion"):
        from_headers({"ce_id": "x", "ce_type": "t", "ce_source": "s", "ce_specversion": "0.3"})


def test_facts_about_one_worker_share_a_partition_key_that_does_not_name_them() -> None:
    report = {"type": "monthly_report", "enterprise": ENTERPRISE, "worker": WORKER}
    registration = {"type": "worker_registered", "worker": WORKER}
    keys, other_keys = PartitionKeys(b"k" * 32), PartitionKeys(b"o" * 32)
    key = keys("main", fact_subject(report))
    assert key == keys("main", fact_subject(registration)) and key.startswith("main/") and WORKER not in key
    assert keys("sandbox-1", WORKER) != key and other_keys("main", WORKER) != key  # per book, per secret
    assert fact_subject({"type": "enterprise_registered", "enterprise": ENTERPRISE}) == ENTERPRISE
    assert fact_subject({"type": "park_recognized", "park": ENTERPRISE}) == ENTERPRISE


@pytest.mark.parametrize("raw", [[1, 2], "text", {"worker": 5}, {"worker": "x" * 65}, {}])
def test_a_malformed_fact_gets_the_catch_all_subject(raw: object) -> None:
    assert fact_subject(raw) == NO_SUBJECT


def test_books_are_short_lowercase_names() -> None:
    assert valid_book("main") and valid_book("scenario-" + uuid.uuid4().hex)
    for wrong in ("Main", "", "a/b", "x" * 65):
        assert not valid_book(wrong), wrong


def test_fact_message_round_trips_and_refuses_a_bad_book() -> None:
    message = FactMessageV1(
        book="main", seq=3, fact_id="f3", subject=WORKER, outcome="accepted", fact={"id": "f3"}, digest="d",
        recorded_at=datetime(2021, 6, 1, tzinfo=UTC),
    )
    assert FactMessageV1.model_validate_json(message.model_dump_json()) == message
    with pytest.raises(ValueError):
        FactMessageV1.model_validate({**message.model_dump(), "book": "Not A Book"})


def test_decision_messages_ignore_fields_they_do_not_know() -> None:
    decision = DecisionV1.model_validate({
        "book": "main", "decision_id": "d", "rule_set": "wuxi-2021-26/1", "after": "f1", "kind": "grant",
        "amount_fen": 5, "something_new": 1,
    })
    assert decision.amount_fen == 5


def test_a_clawback_names_the_decisions_it_reverses_in_an_optional_field() -> None:
    """Issue 17.2: `reverses` is in decision.v1 (optional: within v1), the AsyncAPI document carries a
    clawback example that has it, and the example validates against the schema and the model."""
    import jsonschema_rs

    schema = json.loads((generate.SCHEMAS_DIR / "decision.v1.json").read_text())
    assert "reverses" in schema["properties"] and "reverses" not in schema.get("required", [])
    document = json.loads(generate.ASYNCAPI_FILE.read_text())
    examples = document["components"]["messages"]["flexledger.eligibility.decisions.v1:Message"]["examples"]
    clawback = next(e["payload"] for e in examples if e["payload"]["kind"] == "clawback")
    assert clawback["reverses"] and clawback["reverses"] == sorted(clawback["reverses"])
    assert [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(clawback)] == []
    assert DecisionV1.model_validate(clawback).reverses == clawback["reverses"]
    grant = next(e["payload"] for e in examples if e["payload"]["kind"] == "grant")
    assert DecisionV1.model_validate(grant).reverses is None  # absent: older messages, other kinds


def test_keyed_ids_are_stable_opaque_version_8_uuids() -> None:
    first = keyed_uuid(b"k1", "main", WORKER)
    assert first == keyed_uuid(b"k1", "main", WORKER)
    assert first.version == 8 and first.variant == uuid.RFC_4122
    assert first != keyed_uuid(b"k2", "main", WORKER)
    assert first != keyed_uuid(b"k1", "other", WORKER)


def test_trace_context_survives_a_round_trip_through_a_stored_traceparent() -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        carrier = current_carrier()
        trace_id = trace_id_hex(span)
    assert trace_id is not None and carrier["traceparent"].split("-")[1] == trace_id
    with tracer.start_as_current_span("later", context=context_from(carrier["traceparent"])) as child:
        assert trace_id_hex(child) == trace_id


def test_json_lines_exporter_writes_one_span_per_line(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    path = tmp_path / "traces.jsonl"
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
        pass
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["b", "a"]


def test_static_group_membership_only_when_the_process_is_named() -> None:
    from services.runtime.kafka import static_member
    from services.runtime.settings import Settings

    named = Settings(kafka_instance_id="eligibility-b")
    assert static_member(named, "eligibility") == "eligibility-b/eligibility"
    assert static_member(Settings(), "eligibility") is None
