"""Re-deriving decisions from stored facts with the pure core, under a recorded (or another) rule set.

A subject's decision chain holds every fact about it in processing order, with the decisions each one
caused. Entitlement decomposes by subject (services/eligibility/domain/entitlement_state.py), so
replaying one stream's facts through a fresh `EntitlementState` reproduces its decisions exactly — the
same code the service and `--via engine` run, not a copy.

`audit replay DECISION_ID`: find the decision's event, replay the stream's earlier facts under the
rule set the decision records, re-derive the event's decisions and compare them, field by field
(explanation included), with what was stored.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.facts import FactShapeError, parse_fact
from flexledger.audit.history import describe_decision, reverses_line
from flexledger.audit.show import fact_line, masked_json, reason
from flexledger.audit.store import (
    PROCESSED,
    Decoder,
    EventTable,
    Row,
    Undecodable,
    masked,
    stream_id,
)
from services.eligibility.domain.decision import decision_id
from services.eligibility.domain.entitlement_state import EntitlementState
from services.eligibility.domain.ruleset import RuleSet, rule_set
from services.runtime.settings import Settings


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


class SubjectReplay:
    """A subject's rules state under one rule set, fed the stored facts of its stream in order."""

    def __init__(self, rules: str | RuleSet, book: str) -> None:
        self.rules = EntitlementState(rule_set(rules) if isinstance(rules, str) else rules, book)

    def decide(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The decisions the stored fact `event` causes now (the state moves on), as stored dicts."""
        if event["outcome"] == "accepted":
            decisions = self.rules.apply(parse_fact(event["fact"]))
        else:
            decision = self.rules.reject(
                event["fact_id"], event.get("reason") or "rejected", event["digest"], int(event["seq"])
            )
            legacy = legacy_rejection_id(self.rules.book, event["fact_id"], event["digest"])
            if [d.get("decision_id") for d in event.get("decisions") or []] == [legacy]:
                # recorded before rejection ids included intake's seq (docs/design/audit.md)
                decision = dataclasses.replace(decision, decision_id=legacy)
            decisions = [decision]
        return [d.stored() for d in decisions]


def legacy_rejection_id(book: str, after: str | None, digest: str) -> str:
    """A rejection's id as the core derived it before it included intake's seq (two identical
    rejections then shared it). Rejections recorded that way still replay."""
    return decision_id(book, after, f"rejected|{digest}")


def same_decisions(stored: list[dict[str, Any]], derived: list[dict[str, Any]]) -> bool:
    """Byte for byte, explanations included."""
    if not stored and not derived:
        return True  # most facts decide nothing: no JSON to compare
    return canonical(stored) == canonical(derived)


def same_in_substance(stored: list[dict[str, Any]], derived: list[dict[str, Any]]) -> bool:
    """Equal once what an earlier version recorded differently is set aside (`earlier_formats`): the
    same decisions (ids, kinds, programmes, periods, amounts, rule set). A ledger recorded before the
    wording of explanations was improved (issue 16: the clawback's reason names the fact that ended the
    entitlement, the triggering fact joined `fact_ids`), or before clawbacks and revocations named the
    decisions they reverse (issue 17), re-derives in substance, not byte for byte; the stored bytes are
    still held to their hash chain, so what was recorded cannot have been altered."""
    if same_decisions(stored, derived):
        return True
    if len(stored) != len(derived):
        return False
    return canonical([_substance(s, s) for s in stored]) == canonical(
        [_substance(d, s) for s, d in zip(stored, derived, strict=True)])


WORDING = "explained by an earlier wording"
WITHOUT_REVERSES = "recorded before decisions named what they reverse"


def earlier_formats(stored: list[dict[str, Any]], derived: list[dict[str, Any]]) -> list[str]:
    """What `same_in_substance` set aside between these decisions (each at most once): an explanation
    worded otherwise (`WORDING`), a `reverses` absent from the stored decision (`WITHOUT_REVERSES`)."""
    pairs = list(zip(stored, derived, strict=False))
    found = []
    if any(canonical(s.get("explanation")) != canonical(d.get("explanation")) for s, d in pairs):
        found.append(WORDING)
    if any("reverses" not in s and d.get("reverses") is not None for s, d in pairs):
        found.append(WITHOUT_REVERSES)
    return found


def _substance(decision: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """`decision` without its explanation, and without `reverses` when the `stored` one has none."""
    return {name: value for name, value in decision.items()
            if name != "explanation" and (name != "reverses" or "reverses" in stored)}


@dataclass
class Located:
    """A decision found in its stream: the stream's stored facts up to and including its event."""

    decision: dict[str, Any]
    events: list[tuple[Row, dict[str, Any]]]  # FactProcessed rows of the stream, up to the decision's

    @property
    def event(self) -> dict[str, Any]:
        return self.events[-1][1]

    @property
    def row(self) -> Row:
        return self.events[-1][0]


@dataclass
class Replayed:
    located: Located
    rule_set: str
    derived: list[dict[str, Any]]
    reproduced: bool  # in substance (`same_in_substance`)
    problem: str | None = None
    worded_as_recorded: bool = True  # and the explanation byte for byte


    @property
    def decision_derived(self) -> dict[str, Any] | None:
        wanted = self.located.decision["decision_id"]
        return next((d for d in self.derived if d["decision_id"] == wanted), None)


def replay(located: Located, rule_set_id: str | None = None) -> Replayed:
    """Rebuild the subject's state from the facts before the decision's event, under the decision's
    recorded rule set (or `rule_set_id`), and re-derive that event's decisions."""
    target_rules = rule_set_id or located.decision["rule_set"]
    book = located.event["book"]
    try:
        state = SubjectReplay(target_rules, book)
        for _, earlier in located.events[:-1]:
            state.decide(earlier)
        derived = state.decide(located.event)
    except (LookupError, FactShapeError) as exc:
        return Replayed(located, target_rules, [], False, f"cannot replay: {exc}")
    stored = located.event["decisions"]
    reproduced = same_in_substance(stored, derived)
    return Replayed(located, target_rules, derived, reproduced,
                    worded_as_recorded=reproduced and same_decisions(stored, derived))


def _find_in(events: Iterable[tuple[Row, dict[str, Any]]], decision_id: str) -> Located | None:
    seen: list[tuple[Row, dict[str, Any]]] = []
    for row, state in events:
        seen.append((row, state))
        for d in state.get("decisions") or []:
            if d.get("decision_id") == decision_id:
                return Located(d, seen)
    return None


def _decoded_stream(
    table: EventTable, decoder: Decoder, originator_id: Any
) -> list[tuple[Row, dict[str, Any]]]:
    out = []
    for row in table.stream(originator_id):
        if row.topic != PROCESSED:
            continue
        try:
            out.append((row, decoder.decode(row)))
        except Undecodable:
            continue  # reported by `audit verify`; a replay skips what it cannot read
    return out


def _candidates(settings: Settings, decision_id: str, book: str | None) -> list[tuple[str, str]]:
    """(book, subject) streams that may hold the decision, from the read side (a hint only: the
    decision itself is then read from the events)."""
    import psycopg

    try:
        with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
            row = conn.execute(
                "SELECT book, subject, beneficiary FROM eligibility.eligibility_decisions "
                "WHERE decision_id = %s",
                (decision_id,),
            ).fetchone()
    except psycopg.Error:
        return []
    if row is None:
        return []
    found_book = book or row[0]
    return [(found_book, s) for s in (row[1], row[2]) if s]


def locate(settings: Settings, decision_id: str, book: str | None = None) -> Located | None:
    """Find a decision in eligibility's event table: in the stream the read side points to, else by
    reading the whole log."""
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    for cand_book, subject in _candidates(settings, decision_id, book):
        found = _find_in(
            _decoded_stream(table, decoder, stream_id(settings, cand_book, subject)), decision_id
        )
        if found is not None:
            return found
    streams: dict[str, list[tuple[Row, dict[str, Any]]]] = {}
    for row in table.rows(topic=PROCESSED):
        try:
            state = decoder.decode(row)
        except Undecodable:
            continue
        if book is not None and state.get("book") != book:
            continue
        events = streams.setdefault(row.originator_id, [])
        events.append((row, state))
        for d in state.get("decisions") or []:
            if d.get("decision_id") == decision_id:
                return Located(d, events)
    return None


def rests_on(located: Located) -> list[dict[str, Any]]:
    """The stored facts the decision's explanation names (all in its stream), in the stream's order."""
    wanted = set((located.decision.get("explanation") or {}).get("fact_ids") or [])
    wanted.add(located.decision.get("after"))
    return [state["fact"] for _, state in located.events
            if state.get("fact_id") in wanted and isinstance(state.get("fact"), dict)]


def render(located: Located, result: Replayed, lang: str = "en") -> list[str]:
    """`audit replay` as text: the decision, its reason in `lang`, the facts it rests on (masked) and
    whether it was reproduced."""
    d, event = located.decision, located.event
    lines = [
        f"decision {d['decision_id']} ({d['rule_set']})",
        f"  {describe_decision(d)}",
        f"  after fact {d.get('after')} — book {event['book']}, seq {event['seq']}, about "
        f"{masked(event.get('subject'))}, recorded {event.get('timestamp')} (trace {event.get('trace_id')})",
        f"  stored at notification {located.row.notification_id}, stream {located.row.originator_id} "
        f"version {located.row.version}; replayed {len(located.events) - 1} earlier facts of the stream "
        f"under {result.rule_set}",
    ]
    if d.get("reverses"):
        lines.append(f"  {reverses_line(d)}")
    explanation = d.get("explanation")
    if explanation:
        lines.append(f"  explanation: {reason(explanation, lang)}")
        for p in explanation.get("parameters") or []:
            lines.append(f"    parameter {p.get('name')} = {p.get('value')} (since {p.get('since')})")
    facts = rests_on(located)
    if facts:
        lines.append("  rests on facts:" if lang == "en" else "  依据的事实：")
        lines.extend(f"    {fact_line(raw, lang)}" for raw in facts)
    if result.problem:
        lines.append(f"  {result.problem}")
    elif not result.reproduced:
        again = result.decision_derived
        lines.append(
            "  re-derived: "
            + (describe_decision(again) if again else "no such decision")
            + f" (the fact now decides {len(result.derived)}: "
            + ", ".join(describe_decision(x) for x in result.derived)
            + ")"
        )
    if result.reproduced and not result.worded_as_recorded:
        again = result.decision_derived
        earlier = earlier_formats(located.event["decisions"], result.derived)
        if WORDING in earlier:
            today = reason(again["explanation"], lang) if again and again.get("explanation") else "-"
            lines.append(f"  the explanation was worded by an earlier version; today it reads: {today}")
        if WITHOUT_REVERSES in earlier and again and again.get("reverses") is not None:
            lines.append("  recorded before decisions named what they reverse; today it reverses: "
                         + (", ".join(again["reverses"]) or "-"))
    lines.append(f"reproduced: {'yes' if result.reproduced else 'no'}")
    return lines


def as_json(located: Located, result: Replayed) -> dict[str, Any]:
    """`audit replay --json`: the same, identity numbers masked."""
    event, row = located.event, located.row
    return masked_json({
        "decision": located.decision, "reproduced": result.reproduced, "replayed_under": result.rule_set,
        "explanation_as_recorded": result.worded_as_recorded,
        "book": event.get("book"), "seq": event.get("seq"), "subject": event.get("subject"),
        "recorded_at": event.get("timestamp"), "trace_id": event.get("trace_id"),
        "notification_id": row.notification_id, "stream": str(row.originator_id), "version": row.version,
        "earlier_facts": len(located.events) - 1, "rests_on": rests_on(located),
        "re_derived": None if result.reproduced and result.worded_as_recorded else result.derived,
        "problem": result.problem,
    })
