"""Database roles: the owner creates the event tables, the services run as a role that cannot change
them (deploy/postgres/roles.sql; docs/design/audit.md).

`provision(settings)`, connected as the owner `pg_user` (idempotent, a second or so):
1. roles.sql: the runtime role `pg_app_user` (LOGIN, no CREATEROLE), the `flexledger_auditor` group,
   the service schemas, the grants on the tables that exist, and the trigger that lets only the
   owner append to the access store's API key ring;
2. each service's event tables, created by the owner through eventsourcing (the service's own
   application class, so whatever tables it needs) when they are missing;
3. roles.sql again, for the tables step 2 created.

`flexledger dev up` and the test fixtures run it after PostgreSQL starts; in a deployment run
`flexledger admin db-roles` once as the owner before the services start (compose: the `db-roles` job).
"""

from __future__ import annotations

import importlib
import inspect
import logging

import psycopg

from flexledger.audit.store import SERVICE_SCHEMAS
from flexledger.resources import deploy_path
from services.runtime.access.store import KEY_RING_ID, AccessApplication
from services.runtime.eventstore import ServiceApplication
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
# The services' own schemas, and the access store they share (API keys, the read audit).
EVENT_SCHEMAS = (*SERVICE_SCHEMAS, AccessApplication.name)
ROLES_SQL = deploy_path("postgres", "roles.sql")
# roles.sql's trigger: only the owner role may append to the access store's API key ring stream.
KEY_RING_TRIGGER = "access_key_ring_owner_only"


def _roles_sql(settings: Settings) -> None:
    with psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=10) as conn:
        for name, value in (
            ("app_role", settings.pg_app_user),
            ("app_password", settings.pg_app_password),
            ("schemas", ",".join(EVENT_SCHEMAS)),
            ("key_ring_id", str(KEY_RING_ID)),
        ):
            conn.execute("SELECT set_config(%s, %s, false)", (f"flexledger.{name}", value))
        conn.execute(ROLES_SQL.read_text(encoding="utf-8"))


def _application_class(schema: str) -> type[ServiceApplication]:
    """The service's own application class (it knows which tables it needs), else a plain one."""
    if schema == AccessApplication.name:
        return AccessApplication
    try:
        module = importlib.import_module(f"services.{schema}.application")
    except ImportError:
        module = None
    if module is not None:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, ServiceApplication) and cls is not ServiceApplication and cls.name == schema:
                return cls
    return type(f"{schema.title()}Store", (ServiceApplication,), {"name": schema})


def create_event_tables(settings: Settings) -> None:
    """Create every service's event tables as the owner, where they are missing."""
    if settings.is_app_role:
        raise RuntimeError("event tables are created by the owner role (pg_user), not the runtime role")
    for schema in EVENT_SCHEMAS:
        app = _application_class(schema)(settings)
        app.close()


def provision(settings: Settings) -> None:
    """Roles, schemas, event tables and grants (idempotent). No-op without a runtime role."""
    if not settings.pg_app_user:
        log.info(
            "no runtime role configured (pg_app_user is empty): the services run as %s", settings.pg_user
        )
        return
    _roles_sql(settings)
    create_event_tables(settings)
    _roles_sql(settings)
    log.info("database roles provisioned: owner %s, services %s", settings.pg_user, settings.pg_app_user)
