"""The dead letters the consumers kept (services/runtime/dead_letters.py `DeadLetter.Kept`; intake's
agency feed: services/intake/aggregates.py `DeadLetter.Recorded`) and their re-drives (`Redriven`), read
from the services' event tables the way `flexledger audit` reads them: for the dead-letters page
(operators and auditors). Synchronous: run it off the event loop."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import psycopg
from eventsourcing.utils import get_topic

from contracts.identifiers import mask_identifiers
from flexledger.audit.store import SERVICE_SCHEMAS, Decoder, EventTable, Row, Undecodable
from services.runtime.dead_letters import DeadLetter
from services.runtime.settings import Settings

KEPT_TOPIC = get_topic(DeadLetter.Kept)
REDRIVEN_TOPIC = get_topic(DeadLetter.Redriven)
# Intake's own dead letters, by their stored topics (the console imports no service; a unit test checks
# them against the classes).
INTAKE_KEPT_TOPIC = "services.intake.aggregates:DeadLetter.Recorded"
INTAKE_REDRIVEN_TOPIC = "services.intake.aggregates:DeadLetter.Redriven"
INTAKE_GROUP = "intake"  # the agency feed's consumer group
SHOWN_MAX = 200  # the newest ones; the counts on the page cover all of them


def kept(settings: Settings) -> list[dict[str, Any]]:
    """The newest `SHOWN_MAX` dead letters of every service, newest first; the message itself only as
    its size and SHA-256 (it may hold identity numbers)."""
    decoder = Decoder(settings)
    found: list[dict[str, Any]] = []
    tables = {schema: EventTable(settings, schema) for schema in SERVICE_SCHEMAS}
    for schema, table in tables.items():
        if not table.exists():
            continue
        for row in table.rows(topic=INTAKE_KEPT_TOPIC if schema == "intake" else KEPT_TOPIC):
            try:
                state = decoder.decode(row)
            except Undecodable:
                continue
            body = base64.b64decode(state.get("body_b64") or "")
            found.append({
                "id": row.originator_id, "service": schema,
                "group": state.get("consumer_group", INTAKE_GROUP),
                "source": f"{state.get('source_topic')}[{state.get('source_partition')}]"
                          f"@{state.get('source_offset')}",
                "reason": mask_identifiers(str(state.get("reason", ""))),
                "kept_at": str(state.get("timestamp", "")),
                # intake keeps at most its one-fact limit: the length is the message's, the hash the kept
                "body_bytes": state.get("body_bytes", len(body)),
                "body_sha256": hashlib.sha256(body).hexdigest()[:16],
            })
    found.sort(key=lambda letter: letter["kept_at"], reverse=True)
    shown = found[:SHOWN_MAX]
    for schema, table in tables.items():
        ids = [letter["id"] for letter in shown if letter["service"] == schema]
        redrives = _redrives(settings, table, decoder, ids) if ids else {}
        for letter in shown:
            if letter["service"] == schema:
                letter["redrives"] = history = redrives.get(letter["id"], [])
                letter["taken_in"] = any(r["result"] == "accepted" for r in history)
    return shown


def _redrives(
    settings: Settings, table: EventTable, decoder: Decoder, ids: list[str],
) -> dict[str, list[dict[str, str]]]:
    """The re-drives of these dead letters (ids in `table`), by dead letter id, in order: their own
    streams' later events, in one query by the primary key (no scan of the table)."""
    with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id::text, originator_version, topic, state "
            f"FROM {table.table} WHERE originator_id = ANY(%s::uuid[]) AND originator_version > 1 "
            "AND topic = %s ORDER BY originator_id, originator_version",
            (ids, INTAKE_REDRIVEN_TOPIC if table.schema == "intake" else REDRIVEN_TOPIC),
        ).fetchall()
    found: dict[str, list[dict[str, str]]] = {}
    for row in (Row(int(n), str(i), int(v), str(t), bytes(st)) for n, i, v, t, st in rows):
        try:
            state = decoder.decode(row)
        except Undecodable:
            continue
        found.setdefault(row.originator_id, []).append({
            "result": str(state.get("result", "")), "by": str(state.get("by", "")),
            "at": str(state.get("timestamp", "")), "detail": mask_identifiers(str(state.get("detail", ""))),
        })
    return found
