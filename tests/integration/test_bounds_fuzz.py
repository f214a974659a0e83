"""Schemathesis against eligibility's and payments' own OpenAPI documents, with the three services running
as processes on the real database and broker: generated requests — within the schema and violating it —
never get a 5xx, every response's status is documented and its body, content type and headers conform,
and whatever violates the schema is refused. Bounded (a few dozen examples per operation and mode), as
test_intake_fuzz.py. Requests carry the bootstrap operator key, so they keep working once every
endpoint asks for a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from intake_support import operator_token
from opentelemetry import trace
from schemathesis import checks

from services.eligibility.entrypoints.http import create_http as eligibility_http
from services.payments.entrypoints.http import create_http as payments_http
from services.runtime.access.gate import AccessGate
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 30


class _DocumentOnly:
    """Stores that serve nothing: enough to build an app and read its OpenAPI document."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("documentation only")


def _health() -> dict[str, Any]:
    return {"status": "starting"}


def eligibility_document() -> dict[str, Any]:
    app = eligibility_http(_DocumentOnly(), _health, trace.get_tracer(__name__),  # type: ignore[arg-type]
                           AccessGate("eligibility", Settings()))
    return app.openapi()


def payments_document() -> dict[str, Any]:
    app = payments_http(_DocumentOnly(), trace.get_tracer(__name__), lambda: None, _health,  # type: ignore[arg-type]
                        AccessGate("payments", Settings()))
    return app.openapi()


def _schema(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document)
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        # every request carries a valid key (`_auth`): keys are tests/integration/test_http_access.py's
        with_security_parameters=False,
    )
    return schema


# Built from the services' own code at collection time (a test checks the running services serve them).
eligibility_schema = _schema(eligibility_document())
payments_schema = _schema(payments_document())

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.fixture(scope="module")
def running(services: Settings) -> Iterator[Settings]:
    yield services


def _base(settings: Settings, service: str) -> str:
    port = settings.eligibility_port if service == "eligibility" else settings.payments_port
    return f"http://127.0.0.1:{port}"


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token(settings)}"}


@pytest.mark.parametrize(("service", "document"), [
    ("eligibility", eligibility_document), ("payments", payments_document),
])
def test_the_running_services_serve_these_documents(running: Settings, service: str, document: Any) -> None:
    served = httpx.get(f"{_base(running, service)}/openapi.json", headers=_auth(running), timeout=10)
    assert served.json() == document()


@eligibility_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_eligibility_api_never_fails_and_keeps_to_its_document(case: Any, running: Settings) -> None:
    case.call_and_validate(base_url=_base(running, "eligibility"), headers=_auth(running), checks=CHECKS)


@payments_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_payments_api_never_fails_and_keeps_to_its_document(case: Any, running: Settings) -> None:
    case.call_and_validate(base_url=_base(running, "payments"), headers=_auth(running), checks=CHECKS)


def test_payments_commands_then_their_reads_keep_to_the_document(running: Settings) -> None:
    """Stateful: a command, then the reads its OpenAPI links name (the totals of the appropriated year,
    the reconciliation of the book, the balance of the repaying beneficiary), several steps a scenario."""
    base_url, auth = _base(running, "payments"), _auth(running)

    class Workflow(payments_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "headers": auth}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None,
                              **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=settings(max_examples=MAX_EXAMPLES, stateful_step_count=4, deadline=None,
                                   suppress_health_check=list(HealthCheck)))
