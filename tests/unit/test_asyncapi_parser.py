"""The committed AsyncAPI document passes the official AsyncAPI parser (@asyncapi/parser, which
scripts/setup.sh installs into .cache/asyncapi with npm) with no error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from flexledger.contracts_gen import ASYNCAPI_FILE
from services.runtime.settings import PROJECT_ROOT

PARSER_DIR = PROJECT_ROOT / ".cache" / "asyncapi"
VALIDATE = PROJECT_ROOT / "scripts" / "asyncapi_validate.mjs"


def _parser() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (scripts/setup.sh installs the parser when they are)")
    if not (PARSER_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(PARSER_DIR),
                        "@asyncapi/parser@3.6.6"], check=True, capture_output=True, timeout=600)


def test_the_asyncapi_document_has_no_error_for_the_official_parser() -> None:
    _parser()
    done = subprocess.run(["node", str(VALIDATE), str(ASYNCAPI_FILE)], capture_output=True, text=True,
                          env={**os.environ, "ASYNCAPI_PARSER_DIR": str(PARSER_DIR)}, timeout=300)
    diagnostics = [json.loads(line) for line in done.stdout.splitlines()]
    errors = [d for d in diagnostics if d["severity"] == 0]
    assert done.returncode == 0 and errors == [], done.stderr or errors
    warnings = [d for d in diagnostics if d["severity"] == 1]
    assert warnings == [], warnings


def test_every_published_message_has_an_example_that_matches_its_payload_and_headers() -> None:
    """The official parser does not check examples against their schemas: this does (JSON Schema)."""
    import jsonschema_rs

    document = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    components = document["components"]
    checked = set()
    for message in components["messages"].values():
        for example in message.get("examples", []):
            for part in ("payload", "headers"):
                schema = {**message[part], "components": components}  # resolves #/components/... refs
                errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(example[part])]
                assert errors == [], (message["name"], part, errors)
            checked.add(message["name"])
    assert checked == {"RecordedFact", "LedgerDecision", "NewEmploymentStatistic", "PaymentOrderRecorded",
                       "PaymentOrderChanged", "DisbursementInstruction", "BankSettlement", "SignedCheckpoint"}
