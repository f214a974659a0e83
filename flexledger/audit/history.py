"""`flexledger audit history SUBJECT [--as-of TIMESTAMP]`: a worker's or enterprise's facts and
decisions as they stood at a time — the events recorded at or before it, read from eligibility's
event table (the subject's own stream, and the decisions of other streams that name it as their
beneficiary or subject, e.g. an enterprise's employment-service subsidies, decided on its workers'
facts)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flexledger.audit.show import fact_line, masked_json, reason
from flexledger.audit.store import PROCESSED, Decoder, EventTable, Row, Undecodable, masked, stream_id
from services.runtime.settings import Settings


@dataclass(frozen=True)
class Entry:
    notification_id: int
    recorded_at: datetime
    state: dict[str, Any]
    decisions: list[dict[str, Any]]  # those concerning the subject (all of them for its own stream)
    own: bool


@dataclass
class History:
    subject: str
    book: str
    as_of: datetime | None
    stream: str
    entries: list[Entry] = field(default_factory=list)
    unreadable: int = 0

    def standing(self) -> dict[tuple[Any, ...], int]:
        """Net money per line (grants minus clawbacks) over the decisions shown."""
        net: dict[tuple[Any, ...], int] = defaultdict(int)
        for entry in self.entries:
            for d in entry.decisions:
                if d.get("kind") in ("grant", "clawback"):
                    line = (
                        d.get("program"),
                        d.get("beneficiary"),
                        d.get("subject"),
                        d.get("ref"),
                        d.get("month"),
                    )
                    net[line] += int(d["amount_fen"]) * (1 if d["kind"] == "grant" else -1)
        return {line: amount for line, amount in net.items() if amount}


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; a date means the end of that day (UTC); without a zone, UTC."""
    value = text.strip()
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(
            hour=23, minute=59, second=59, microsecond=999999, tzinfo=UTC
        )
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _recorded_at(state: dict[str, Any]) -> datetime:
    moment = state.get("timestamp")
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(moment))


def history(
    settings: Settings, subject: str, *, book: str = "main", as_of: datetime | None = None
) -> History:
    found = History(subject, book, as_of, str(stream_id(settings, book, subject)))
    _collect(found, EventTable(settings, "eligibility").rows(topic=PROCESSED), Decoder(settings))
    return found


def own_history(
    settings: Settings, subject: str, *, book: str = "main", as_of: datetime | None = None
) -> History:
    """`history` of the subject's own stream only (its facts and their decisions), read by stream id
    rather than by scanning the log: cheap enough for a page view. The decisions of other streams
    that name the subject are left out."""
    found = History(subject, book, as_of, str(stream_id(settings, book, subject)))
    rows = EventTable(settings, "eligibility").stream(found.stream)
    _collect(found, (row for row in rows if row.topic == PROCESSED), Decoder(settings))
    return found


def _collect(found: History, rows: Iterable[Row], decoder: Decoder) -> None:
    """The `rows` (FactProcessed, in order) that belong in `found`, decoded, as its entries."""
    for row in rows:
        try:
            state = decoder.decode(row)
        except Undecodable:
            found.unreadable += 1
            continue
        if state.get("book") != found.book:
            continue
        recorded_at = _recorded_at(state)
        if found.as_of is not None and recorded_at > found.as_of:
            continue
        decisions = state.get("decisions") or []
        if row.originator_id == found.stream:
            found.entries.append(Entry(row.notification_id, recorded_at, state, decisions, True))
            continue
        naming = [d for d in decisions if found.subject in (d.get("beneficiary"), d.get("subject"))]
        if naming:
            found.entries.append(Entry(row.notification_id, recorded_at, state, naming, False))


def _money(d: dict[str, Any]) -> str:
    fen = int(d.get("amount_fen") or 0)
    return f"{fen // 100}.{fen % 100:02d} CNY" if fen else ""


def describe_decision(d: dict[str, Any]) -> str:
    if d.get("kind") == "rejected":
        return f"rejected: {d.get('reason')}"
    parts = [str(d.get("kind")), str(d.get("program"))]
    if d.get("month"):
        parts.append(str(d["month"]))
    if d.get("ref"):
        parts.append(f"ref {d['ref']}")
    if d.get("beneficiary"):
        parts.append(f"to {masked(d['beneficiary'])}")
    if money := _money(d):
        parts.append(money)
    return " ".join(parts)


def reverses_line(d: dict[str, Any]) -> str:
    """The decisions a clawback or revocation takes back (`reverses`), by id."""
    return "reverses decision " + ", ".join(d.get("reverses") or [])


def render(found: History, lang: str = "en") -> list[str]:
    """The history as text: each fact with its content (masked) and its decisions with their reasons,
    in `lang` (en or zh), then the standing per money line."""
    when = f"as of {found.as_of.isoformat()}" if found.as_of else "now"
    own = [e for e in found.entries if e.own]
    lines = [
        f"history of {masked(found.subject)} in book {found.book}, {when} (stream {found.stream}): "
        f"{len(own)} facts, {sum(len(e.decisions) for e in found.entries)} decisions",
    ]
    for entry in found.entries:
        state = entry.state
        head = f"  seq {state.get('seq')}  {entry.recorded_at.isoformat()}  {state.get('outcome')}"
        if not entry.own:
            head += f"  (fact about {masked(state.get('subject'))})"
        lines.append(head)
        lines.append(f"    {fact_line(state.get('fact') or {'id': state.get('fact_id')}, lang)}")
        for d in entry.decisions:
            lines.append(
                f"      {describe_decision(d)}  [{d.get('rule_set')}, decision {d.get('decision_id')}]"
            )
            if d.get("reverses"):
                lines.append(f"        {reverses_line(d)}")
            explanation = d.get("explanation") or {}
            if explanation:
                lines.append(f"        {reason(explanation, lang)}")
    standing = found.standing()
    lines.append("standing (grants minus clawbacks per money line):" if standing else "no money lines open")
    for (program, beneficiary, subject, ref, month), amount in sorted(standing.items(), key=str):
        lines.append(
            f"  {program} {month or ref or ''} to {masked(beneficiary)} (about {masked(subject)}): "
            f"{amount // 100}.{amount % 100:02d} CNY"
        )
    if found.unreadable:
        lines.append(f"warning: {found.unreadable} stored events could not be decrypted (run `audit verify`)")
    return lines


def as_json(found: History) -> Any:
    """The history for `--json`: every fact with its content and decisions, identity numbers masked."""
    return masked_json({
        "subject": found.subject, "book": found.book, "as_of": found.as_of, "stream": found.stream,
        "entries": [
            {"notification_id": e.notification_id, "recorded_at": e.recorded_at, "own": e.own,
             "seq": e.state.get("seq"), "fact_id": e.state.get("fact_id"), "outcome": e.state.get("outcome"),
             "subject": e.state.get("subject"), "fact": e.state.get("fact"), "decisions": e.decisions}
            for e in found.entries
        ],
        "standing": [
            {"program": p, "beneficiary": b, "subject": s, "ref": r, "month": m, "net_fen": fen}
            for (p, b, s, r, m), fen in sorted(found.standing().items(), key=str)
        ],
        "unreadable": found.unreadable,
    })
