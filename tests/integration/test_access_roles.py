"""The access store's database roles (docs/design/http-auth.md, docs/design/audit.md), on a real
PostgreSQL provisioned by `flexledger admin db-roles`:
- the services' runtime role records reads but cannot append a change to the API key ring, neither
  through the application nor by a raw INSERT; the owner (`flexledger keys`) can;
- `audit verify`'s role check covers the access store's event table: a grant of UPDATE to the runtime
  role, or the key ring trigger disabled, is a problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from intake_support import issue_key

from flexledger.audit.verify.report import Report
from flexledger.audit.verify.roles import check_roles
from services.runtime.access.credentials import issue_key as issue
from services.runtime.access.credentials import new_api_key
from services.runtime.access.store import KEY_RING_ID, AccessApplication
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def settings(infra: Settings) -> Settings:
    if not infra.pg_app_user:
        pytest.skip("no runtime role configured (pg_app_user): nothing to separate")
    issue_key(infra, "auditor")  # the ring exists, written by the owner as `flexledger keys` does
    return infra


def _ring_size(settings: Settings) -> int:
    app = AccessApplication(settings)
    try:
        return len(app.key_changes())
    finally:
        app.close()


@pytest.fixture
def as_service(settings: Settings) -> Iterator[AccessApplication]:
    app = AccessApplication(settings.for_service())
    try:
        yield app
    finally:
        app.close()


def test_the_services_role_records_reads_but_cannot_change_the_key_ring(
    settings: Settings, as_service: AccessApplication,
) -> None:
    before = _ring_size(settings)
    as_service.record_read(key_id="k", role="auditor", enterprise=None, service="payments",
                           endpoint="GET /v1/books/{book}/orders", book="main", view="all", rows=0,
                           subjects=[], trace_id=None)
    forged = new_api_key()
    with pytest.raises(Exception, match="only the owner role may change the API key ring"):
        as_service.change_keys(lambda ring: issue(ring, role="operator", at=datetime.now(UTC),
                                                  key=forged, label="forged"))  # type: ignore[arg-type]
    with (psycopg.connect(settings.for_service().pg_dsn(), autocommit=True) as conn,
          pytest.raises(psycopg.errors.InsufficientPrivilege)):
        conn.execute("INSERT INTO access.access_events (originator_id, originator_version, topic, state) "
                     "VALUES (%s, %s, %s, %s)", (KEY_RING_ID, 10**9, "forged", b"{}"))
    assert _ring_size(settings) == before
    issue_key(settings, "auditor")  # the owner still can
    assert _ring_size(settings) == before + 1


def _problems(settings: Settings) -> list[str]:
    report = Report()
    check_roles(settings, report)
    assert report.counts["event tables"] == 4, report.counts  # the three services' and access
    return [str(p) for p in report.problems]


def test_verify_checks_the_access_stores_grants_and_key_ring_trigger(settings: Settings) -> None:
    assert _problems(settings) == []
    app_role = settings.pg_app_user
    with psycopg.connect(settings.pg_dsn(), autocommit=True) as conn:
        conn.execute(f'GRANT UPDATE ON access.access_events TO "{app_role}"')
        try:
            problems = _problems(settings)
        finally:
            conn.execute(f'REVOKE UPDATE ON access.access_events FROM "{app_role}"')
        assert problems == [f"table access.access_events: the services' role {app_role} can UPDATE, "
                            "DELETE or TRUNCATE it"]
        conn.execute("ALTER TABLE access.access_events DISABLE TRIGGER access_key_ring_owner_only")
        try:
            problems = _problems(settings)
        finally:
            conn.execute("ALTER TABLE access.access_events ENABLE TRIGGER access_key_ring_owner_only")
        assert len(problems) == 1 and "access_key_ring_owner_only is missing or disabled" in problems[0]
    assert _problems(settings) == []
