"""`python -m flexledger.contracts_gen`: write the committed contract documents from the code.

- `contracts/schemas/<name>.json`: JSON Schema of every wire model and of every fact type;
- `contracts/asyncapi.json`: the AsyncAPI 3.0 document of the three services' FastStream brokers.

`python -m flexledger.contracts_gen --check` exits 1 listing the files that drifted (the unit tests run it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.facts import FACT_TYPES
from contracts.messages import WIRE_MODELS
from flexledger.asyncapi_details import complete
from services.runtime.settings import Settings

CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"
SCHEMAS_DIR = CONTRACTS_DIR / "schemas"
ASYNCAPI_FILE = CONTRACTS_DIR / "asyncapi.json"


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_documents() -> dict[Path, str]:
    models = dict(WIRE_MODELS) | {f"fact.{name}": model for name, model in FACT_TYPES.items()}
    out = {}
    for name, model in sorted(models.items()):
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"flexledger:{name}",
                  **model.model_json_schema(mode="serialization")}
        out[SCHEMAS_DIR / f"{name}.json"] = _dump(schema)
    return out


DESCRIBED_ONLY = bytes(32)  # the message-tag key of brokers built only to be described, never connected


def service_brokers() -> dict[str, Any]:
    """Each service's FastStream broker with every subscriber and publisher it declares, built as its
    own Kafka principal from default settings (never connected): what the AsyncAPI document and the
    access table's test describe."""
    from services.eligibility.entrypoints.audit import add_audit_publishers
    from services.eligibility.entrypoints.kafka import build_broker as eligibility_broker
    from services.eligibility.entrypoints.kafka import consume_facts
    from services.intake.entrypoints.kafka import documented_broker as intake_broker
    from services.payments.entrypoints.kafka import build_broker as payments_broker

    settings = Settings()  # defaults, not the environment: the document must not depend on who runs it

    def service(name: str) -> Settings:  # each broker as its service's principal, as it connects
        return settings.as_kafka_principal(name, "")

    eligibility = eligibility_broker(service("eligibility"))[0]
    consume_facts(eligibility, service("eligibility"), None, DESCRIBED_ONLY)  # the facts subscriber
    add_audit_publishers(eligibility, settings.production_book_set)  # statistics and checkpoints
    return {"intake": intake_broker(service("intake")), "eligibility": eligibility,
            "payments": payments_broker(service("payments"), None, DESCRIBED_ONLY)[0]}


def asyncapi_document() -> str:
    from faststream.specification import AsyncAPI

    spec = AsyncAPI(
        *service_brokers().values(),
        title="flexledger", version="1",
        description="Kafka topics between intake, eligibility and payments. Every message is a CloudEvent "
                    "1.0 in binary mode (ce_id, ce_source, ce_type, ce_specversion, ce_time, ce_subject, "
                    "content-type headers; each message's `headers` says what they hold) with W3C "
                    "traceparent/tracestate headers. Sandbox books: the "
                    "messages of the production books (FLEXLEDGER_PRODUCTION_BOOKS, default main) appear "
                    "only on the flexledger.* topics, those of every other book only on their sandbox.* "
                    "twins, which no outside subscriber may read.",
        schema_version="3.0.0",
    )
    return _dump(complete(json.loads(spec.to_specification().to_json())))


def documents() -> dict[Path, str]:
    return schema_documents() | {ASYNCAPI_FILE: asyncapi_document()}


def drifted() -> list[Path]:
    """Committed files that differ from what the code generates, or are missing or stale."""
    expected = documents()
    stale = [p for p in SCHEMAS_DIR.glob("*.json") if p not in expected]
    changed = [p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    return sorted(changed + stale)


def write() -> list[Path]:
    SCHEMAS_DIR.mkdir(exist_ok=True)
    expected = documents()
    for stale in SCHEMAS_DIR.glob("*.json"):
        if stale not in expected:
            stale.unlink()
    for path, text in expected.items():
        path.write_text(text, encoding="utf-8")
    return sorted(expected)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        paths = drifted()
        for path in paths:
            print(f"drifted: {path.relative_to(CONTRACTS_DIR.parent)}", file=sys.stderr)
        return 1 if paths else 0
    for path in write():
        print(path.relative_to(CONTRACTS_DIR.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
