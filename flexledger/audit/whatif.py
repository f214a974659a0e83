"""`flexledger audit what-if`: re-run a book's stored facts under another rule set or under changed
parameters (a reform), and list the decisions that would differ and the money difference per programme
and fiscal year. Nothing is written.

A reform is the rule set (`--rules`, default the current one) with some parameters changed: `--set
NAME=VALUE[@DATE]` (from DATE on; without a date, from the parameter's first value), or `--parameters
FILE`, a YAML file in the format of the rule set's own (services/eligibility/domain/rule_sets/): each
parameter it holds replaces that parameter's whole history. OpenFisca's reforms are the model.

Each subject's stream is replayed through a fresh `EntitlementState` (entitlement decomposes by subject).
Decisions are compared as scenarios/FORMAT.md compares them: (after, kind, program, beneficiary,
subject, ref, month, amount_fen); rejections stay what intake decided. The fiscal year of a money line
is its month's year, else the year its fact was recorded in China Standard Time (as payments books it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from contracts.facts import FactShapeError
from flexledger.audit.replay import SubjectReplay
from flexledger.audit.store import PROCESSED, Decoder, EventTable, Undecodable, masked
from services.eligibility.domain.parameters import Change, ParameterError, parse_table
from services.eligibility.domain.ruleset import CURRENT, RuleSet, rule_set
from services.payments.domain.lines import fiscal_year
from services.runtime.settings import Settings

FIELDS = ("after", "kind", "program", "beneficiary", "subject", "ref", "month", "amount_fen")
SIGN = {"grant": 1, "clawback": -1}


def normal(d: dict[str, Any]) -> tuple[Any, ...]:
    if d.get("kind") == "rejected":
        return (d.get("after"), "rejected")
    return tuple(d.get(name) for name in FIELDS)


def reformed(base: str | None, changes: Sequence[str] = (), parameters: Path | None = None) -> RuleSet:
    """The rule set `base` (default: the current one) with the changes `NAME=VALUE[@DATE]` and the
    parameter file applied. LookupError for an unknown rule set, ParameterError for a bad reform."""
    rules = rule_set(base) if base else CURRENT
    if not changes and parameters is None:
        return rules
    params = rules.params
    if parameters is not None:
        try:
            document = yaml.safe_load(parameters.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(f"cannot read {parameters}: {exc}") from exc
        params = params.replaced(parse_table(document, str(parameters)))
    params = params.reformed(Change.parse(text) for text in changes)
    return rules.with_parameters(params, f"{rules.id}+reform")


@dataclass(frozen=True)
class Difference:
    book: str
    seq: int
    fact_id: str | None
    subject: str | None
    recorded_at: datetime
    recorded: tuple[tuple[Any, ...], ...]  # only under the recorded rules
    would_be: tuple[tuple[Any, ...], ...]  # only under the other rules

    def money(self) -> dict[tuple[str, int], int]:
        """Would-be minus recorded money, per (programme, fiscal year)."""
        out: dict[tuple[str, int], int] = defaultdict(int)
        for decisions, sign in ((self.would_be, 1), (self.recorded, -1)):
            for d in decisions:
                if len(d) == len(FIELDS) and d[1] in SIGN:
                    key = (str(d[2]), fiscal_year(d[6], self.recorded_at))
                    out[key] += sign * SIGN[d[1]] * int(d[7])
        return out


@dataclass
class WhatIf:
    rules: str
    book: str
    facts: int = 0
    decisions_recorded: int = 0
    decisions_would_be: int = 0
    differences: list[Difference] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def money(self) -> dict[tuple[str, int], int]:
        """Would-be minus recorded money, per (programme, fiscal year), zeros left out."""
        total: dict[tuple[str, int], int] = defaultdict(int)
        for diff in self.differences:
            for key, fen in diff.money().items():
                total[key] += fen
        return {key: fen for key, fen in sorted(total.items()) if fen}


def replay_streams(
    events: Iterable[tuple[str, str, dict[str, Any]]], rules: RuleSet, book: str
) -> WhatIf:
    """What-if over stored events `(stream, where, state)` in log order: the pure part of `what_if`."""
    result = WhatIf(rules.id, book)
    replays: dict[str, SubjectReplay | None] = {}
    for stream, where, state in events:
        if state.get("book") != book:
            continue
        result.facts += 1
        if stream not in replays:
            replays[stream] = SubjectReplay(rules, book)
        replay = replays[stream]
        if replay is None:
            continue
        try:
            derived = replay.decide(state)
        except (FactShapeError, KeyError, ValueError, TypeError) as exc:
            result.problems.append(f"{where}: cannot replay ({exc})")
            replays[stream] = None
            continue
        stored = state.get("decisions") or []
        result.decisions_recorded += len(stored)
        result.decisions_would_be += len(derived)
        before, after = Counter(map(normal, stored)), Counter(map(normal, derived))
        if before != after:
            result.differences.append(Difference(
                book, int(state["seq"]), state.get("fact_id"), state.get("subject"), _recorded_at(state),
                tuple(sorted((before - after).elements(), key=str)),
                tuple(sorted((after - before).elements(), key=str)),
            ))
    return result


def _recorded_at(state: dict[str, Any]) -> datetime:
    moment = state.get("timestamp")
    return moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))


def what_if(settings: Settings, rules: str | RuleSet, *, book: str = "main") -> WhatIf:
    chosen = rule_set(rules) if isinstance(rules, str) else rules  # LookupError before reading anything
    table, decoder = EventTable(settings, "eligibility"), Decoder(settings)
    problems: list[str] = []

    def events() -> Iterable[tuple[str, str, dict[str, Any]]]:
        for row in table.rows(topic=PROCESSED):
            try:
                yield str(row.originator_id), f"notification {row.notification_id}", decoder.decode(row)
            except Undecodable as exc:
                problems.append(f"notification {row.notification_id}: {exc}")

    result = replay_streams(events(), chosen, book)
    result.problems[:0] = problems
    return result


def _describe(decision: tuple[Any, ...]) -> str:
    if len(decision) == 2:
        return f"rejected (fact {decision[0]})"
    _, kind, program, beneficiary, _, ref, month, amount = decision
    money = f" {_cny(int(amount))}" if amount else ""
    return f"{kind} {program} {month or ref or ''} to {masked(beneficiary)}{money}".replace("  ", " ")


def _cny(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d} CNY"


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
    money = result.money()
    lines.append("money difference (would be minus recorded):" if money else "no money difference")
    for (program, year), fen in money.items():
        lines.append(f"  {program:<20} {year}  {fen:>+15d} fen  {_cny(fen)}")
    lines.extend(f"  problem: {p}" for p in result.problems)
    return lines


def _decision_json(d: tuple[Any, ...]) -> dict[str, Any]:
    if len(d) == 2:
        return {"after": d[0], "kind": "rejected"}
    return {**dict(zip(FIELDS, d, strict=True)), "beneficiary": masked(d[3]), "subject": masked(d[4])}


def as_json(result: WhatIf) -> dict[str, Any]:
    """The result for `--json`: identity numbers masked, money in fen."""
    return {
        "rule_set": result.rules, "book": result.book, "facts": result.facts,
        "decisions_recorded": result.decisions_recorded, "decisions_would_be": result.decisions_would_be,
        "differences": [
            {"seq": d.seq, "fact_id": d.fact_id, "subject": masked(d.subject),
             "recorded": [_decision_json(x) for x in d.recorded],
             "would_be": [_decision_json(x) for x in d.would_be]}
            for d in result.differences
        ],
        "money": [
            {"program": p, "fiscal_year": y, "difference_fen": fen} for (p, y), fen in result.money().items()
        ],
        "problems": result.problems,
    }
