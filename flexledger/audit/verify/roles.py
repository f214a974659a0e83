"""Step 7 of `audit verify`: the services' runtime role cannot UPDATE, DELETE or TRUNCATE an event
table, nor own one (the grants `flexledger admin db-roles` sets up, docs/design/audit.md): the three
services' and the access store's (API key ring and read audit), where only the owner may append a key
ring change (the `access_key_ring_owner_only` trigger, docs/design/http-auth.md)."""

from __future__ import annotations

import psycopg

from flexledger.audit.roles import EVENT_SCHEMAS, KEY_RING_TRIGGER
from flexledger.audit.verify.report import ROLES, Problem, Report
from services.runtime.settings import Settings


def check_roles(settings: Settings, report: Report) -> None:
    """Step 7, over every event table that exists (the services' and the access store's)."""
    role = settings.pg_app_user
    if not role:
        report.notes.append("no runtime role configured (pg_app_user): the role check was skipped")
        return
    with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            report.notes.append(f"role {role} does not exist: the role check was skipped")
            return
        for schema in EVENT_SCHEMAS:
            table = f'"{schema}"."{schema}_events"'
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if not (found and found[0]):
                continue
            owner, can_change = conn.execute(
                "SELECT pg_get_userbyid(relowner), has_table_privilege(%s, %s::regclass, "
                "'UPDATE, DELETE, TRUNCATE') FROM pg_class WHERE oid = %s::regclass",
                (role, table, table),
            ).fetchone() or (None, False)
            report.counts["event tables"] += 1
            if owner == role or can_change:
                report.add(
                    Problem(
                        f"table {schema}.{schema}_events",
                        f"the services' role {role} can UPDATE, DELETE or TRUNCATE it",
                        (ROLES, 0),
                    )
                )
        _check_key_ring_trigger(conn, report)


def _check_key_ring_trigger(conn: psycopg.Connection[tuple[object, ...]], report: Report) -> None:
    """The runtime role may INSERT into the access store (it records reads), but not a key ring change:
    the trigger refusing it must be there and enabled."""
    table = '"access"."access_events"'
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if not (found and found[0]):
        return
    enabled = conn.execute(
        "SELECT tgenabled FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
        (table, KEY_RING_TRIGGER),
    ).fetchone()
    if enabled is None or enabled[0] == "D":
        report.add(Problem("table access.access_events",
                           f"trigger {KEY_RING_TRIGGER} is missing or disabled: the services' role could "
                           "append a key ring change", (ROLES, 0)))
