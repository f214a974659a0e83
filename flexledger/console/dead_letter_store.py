"""The dead letters the consumers kept (services/runtime/dead_letters.py `DeadLetter.Kept`) and their
re-drives (`DeadLetter.Redriven`), read from the services' event tables the way `flexledger audit`
reads them: for the dead-letters page (operators and auditors). Synchronous: run it off the event loop."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from eventsourcing.utils import get_topic

from contracts.identifiers import mask_identifiers
from flexledger.audit.store import SERVICE_SCHEMAS, Decoder, EventTable, Undecodable
from services.runtime.dead_letters import DeadLetter
from services.runtime.settings import Settings

KEPT_TOPIC = get_topic(DeadLetter.Kept)
REDRIVEN_TOPIC = get_topic(DeadLetter.Redriven)
SHOWN_MAX = 200  # the newest ones; the counts on the page cover all of them


def kept(settings: Settings) -> list[dict[str, Any]]:
    """The newest `SHOWN_MAX` dead letters of every service, newest first; the message itself only as
    its size and SHA-256 (it may hold identity numbers)."""
    decoder = Decoder(settings)
    found: list[dict[str, Any]] = []
    for schema in SERVICE_SCHEMAS:
        table = EventTable(settings, schema)
        if not table.exists():
            continue
        redrives = _redrives(table, decoder)
        for row in table.rows(topic=KEPT_TOPIC):
            try:
                state = decoder.decode(row)
            except Undecodable:
                continue
            body = base64.b64decode(state.get("body_b64") or "")
            history = redrives.get(row.originator_id, [])
            found.append({
                "id": row.originator_id, "service": schema, "group": state.get("consumer_group"),
                "redrives": history, "taken_in": any(r["result"] == "accepted" for r in history),
                "source": f"{state.get('source_topic')}[{state.get('source_partition')}]"
                          f"@{state.get('source_offset')}",
                "reason": mask_identifiers(str(state.get("reason", ""))),
                "kept_at": str(state.get("timestamp", "")),
                "body_bytes": len(body), "body_sha256": hashlib.sha256(body).hexdigest()[:16],
            })
    found.sort(key=lambda letter: letter["kept_at"], reverse=True)
    return found[:SHOWN_MAX]


def _redrives(table: EventTable, decoder: Decoder) -> dict[str, list[dict[str, str]]]:
    """The re-drives of the table's dead letters, by dead letter id, in order."""
    found: dict[str, list[dict[str, str]]] = {}
    for row in table.rows(topic=REDRIVEN_TOPIC):
        try:
            state = decoder.decode(row)
        except Undecodable:
            continue
        found.setdefault(row.originator_id, []).append({
            "result": str(state.get("result", "")), "by": str(state.get("by", "")),
            "at": str(state.get("timestamp", "")), "detail": mask_identifiers(str(state.get("detail", ""))),
        })
    return found
