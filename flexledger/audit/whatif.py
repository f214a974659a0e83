"""`flexledger audit what-if --rules VERSION`: re-run a book's stored facts under another rule set and
list the facts whose decisions would differ. Nothing is written.

Each subject's stream is replayed through a fresh `EntitlementState` of the chosen rule set (entitlement
decomposes by subject). Decisions are compared as scenarios/FORMAT.md compares them: (after, kind,
program, beneficiary, subject, ref, month, amount_fen); rejections stay what intake decided. Rule sets
come from `services.eligibility.domain.ruleset.RULE_SETS`: a version 2 is a new entry there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from contracts.facts import FactShapeError
from flexledger.audit.replay import SubjectReplay
from flexledger.audit.store import PROCESSED, Decoder, EventTable, Undecodable, masked
from services.eligibility.domain.ruleset import rule_set
from services.runtime.settings import Settings

FIELDS = ("after", "kind", "program", "beneficiary", "subject", "ref", "month", "amount_fen")


def normal(d: dict[str, Any]) -> tuple[Any, ...]:
    if d.get("kind") == "rejected":
        return (d.get("after"), "rejected")
    return tuple(d.get(name) for name in FIELDS)


@dataclass(frozen=True)
class Difference:
    book: str
    seq: int
    fact_id: str | None
    subject: str | None
    recorded: tuple[tuple[Any, ...], ...]  # only under the recorded rules
    would_be: tuple[tuple[Any, ...], ...]  # only under the other rules


@dataclass
class WhatIf:
    rules: str
    book: str
    facts: int = 0
    decisions_recorded: int = 0
    decisions_would_be: int = 0
    differences: list[Difference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def what_if(settings: Settings, rules: str, *, book: str = "main") -> WhatIf:
    rule_set(rules)  # LookupError for an unknown version, before reading anything
    result = WhatIf(rules, book)
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    replays: dict[str, SubjectReplay | None] = {}
    for row in table.rows(topic=PROCESSED):
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            result.problems.append(f"notification {row.notification_id}: {exc}")
            continue
        if state.get("book") != book:
            continue
        result.facts += 1
        if row.originator_id not in replays:
            replays[row.originator_id] = SubjectReplay(rules, book)
        replay = replays[row.originator_id]
        if replay is None:
            continue
        try:
            derived = replay.decide(state)
        except (FactShapeError, KeyError, ValueError, TypeError) as exc:
            result.problems.append(f"notification {row.notification_id}: cannot replay ({exc})")
            replays[row.originator_id] = None
            continue
        stored = state.get("decisions") or []
        result.decisions_recorded += len(stored)
        result.decisions_would_be += len(derived)
        before, after = Counter(map(normal, stored)), Counter(map(normal, derived))
        if before != after:
            result.differences.append(
                Difference(
                    book,
                    int(state["seq"]),
                    state.get("fact_id"),
                    state.get("subject"),
                    tuple(sorted((before - after).elements(), key=str)),
                    tuple(sorted((after - before).elements(), key=str)),
                )
            )
    return result


def _describe(decision: tuple[Any, ...]) -> str:
    if len(decision) == 2:
        return f"rejected (fact {decision[0]})"
    _, kind, program, beneficiary, _, ref, month, amount = decision
    money = f" {int(amount) // 100}.{int(amount) % 100:02d} CNY" if amount else ""
    return f"{kind} {program} {month or ref or ''} to {masked(beneficiary)}{money}".replace("  ", " ")


def render(result: WhatIf) -> list[str]:
    lines = [
        f"what-if {result.rules} over book {result.book}: {result.facts} facts, {result.decisions_recorded} "
        f"decisions recorded, {result.decisions_would_be} under {result.rules}; "
        f"{len(result.differences)} facts would decide differently (nothing was written)",
    ]
    for diff in result.differences:
        lines.append(f"  seq {diff.seq} fact {diff.fact_id} (about {masked(diff.subject)}):")
        lines.extend(f"    - {_describe(d)}" for d in diff.recorded)
        lines.extend(f"    + {_describe(d)}" for d in diff.would_be)
    lines.extend(f"  problem: {p}" for p in result.problems)
    return lines
