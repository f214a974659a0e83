"""Schemathesis against the running intake's own OpenAPI document (intake as a process, on the real
database and broker): generated requests — valid-shaped facts and bulk bodies, and schema-violating
ones — never get a 5xx, and every response matches the documented status codes, content type, headers
and schema. Bounded (a few dozen examples per operation and mode) so that it stays well under a minute.

Bulk bodies: the document shows an application/x-ndjson body as the array of its lines and a text/csv
body as the array of its rows; the serializers below write them as JSON Lines and as CSV with the
header intake expects, so that the generated facts reach intake's validation, not just its parser.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from intake_support import operator_token, url
from schemathesis import checks

from services.intake.domain.bulk import CSV_COLUMNS
from services.intake.entrypoints.http import openapi_document
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40


def _line(item: Any) -> bytes:
    try:
        return json.dumps(item, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        return repr(item).encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/x-ndjson")
def _jsonl(ctx: Any, value: Any) -> bytes:
    rows = value if isinstance(value, list) else [value]
    return b"".join(_line(row) + b"\n" for row in rows)


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> bytes:
    rows = value if isinstance(value, list) else [value]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = row if isinstance(row, dict) else {}
        writer.writerow(["" if cells.get(c) is None else str(cells.get(c)) for c in CSV_COLUMNS])
    return out.getvalue().encode("utf-8", "surrogatepass")


# The document is built from intake's own code (as the running service builds it, which a test checks),
# so that pytest can parametrize over its operations at collection time.
schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def test_the_running_intake_serves_this_document(intake: Settings) -> None:
    assert httpx.get(url(intake, "/openapi.json"), timeout=10).json() == openapi_document()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_intake_api_never_fails_and_keeps_to_its_document(case: Any, intake: Settings) -> None:
    auth = {"Authorization": f"Bearer {operator_token(intake)}"}
    case.call_and_validate(base_url=url(intake, ""), headers=auth, checks=CHECKS)
