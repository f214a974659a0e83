"""The subject page's timeline on its two time axes (pure: no I/O).

- *Known as of*: what the ledger knew then — the facts and decisions recorded at or before that time,
  as `flexledger audit history --as-of` reads them (its `parse_time`: a date means the end of that day,
  UTC).
- *Law as of*: the law in force then — each rule set's parameter values in force on that day (what a
  decision about that period applies), and the decisions about periods up to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from contracts.facts import FactShapeError, parse_fact
from contracts.identifiers import mask_identifiers
from flexledger.audit.history import parse_time
from services.eligibility.domain.fact_text import fact_text
from services.eligibility.domain.ruleset import CURRENT, rule_set


@dataclass(frozen=True)
class AsOf:
    known: datetime | None  # None: now
    law: str | None  # YYYY-MM-DD; None: today, and no decision left out

    @property
    def law_day(self) -> str:
        return self.law or datetime.now(UTC).date().isoformat()


def as_of(known: str | None, law: str | None) -> AsOf:
    """The picker's two values as the form sends them (`datetime-local` and `date`; a law month
    YYYY-MM means its first day); ValueError when either is not a time."""
    known_at = parse_time(known) if known else None
    if not law:
        return AsOf(known_at, None)
    day = law.strip()
    if len(day) == 7:
        day += "-01"
    return AsOf(known_at, date.fromisoformat(day).isoformat())


def own_facts(states: list[dict[str, Any]], enterprise: str | None) -> list[dict[str, Any]]:
    """The facts a platform may read: those naming its enterprise or no enterprise at all — as
    eligibility shows it decisions (docs/design/http-auth.md: another enterprise's reports about the
    same worker stay hidden)."""
    return [s for s in states if _enterprise_of(s.get("fact")) in (None, enterprise)]


def names_another_enterprise(bundle: dict[str, Any], enterprise: str | None) -> bool:
    """Whether an evidence bundle holds a fact naming an enterprise other than `enterprise`: a stream's
    facts cannot be left out of its bundle (the hash chain needs each), so such a bundle is not a
    platform's to read."""
    return any(_enterprise_of((event.get("content") or {}).get("fact")) not in (None, enterprise)
               for stream in bundle.get("streams", []) for event in stream.get("events", []))


def _enterprise_of(fact: Any) -> str | None:
    value = fact.get("enterprise") if isinstance(fact, dict) else None
    return value if isinstance(value, str) else None


def fact_rows(states: list[dict[str, Any]], clear: bool) -> list[dict[str, Any]]:
    """Each stored fact for the timeline: when it was recorded, what it says in both languages and its
    contents (identity numbers masked unless `clear`), whether it was accepted."""
    show = (lambda text: text) if clear else mask_identifiers
    rows = []
    for state in states:
        raw = state.get("fact")
        says = _says(raw)
        content = {k: v for k, v in raw.items() if k not in ("id", "type")} if isinstance(raw, dict) else raw
        rows.append({
            "recorded_at": state.get("recorded_at"), "seq": state.get("seq"), "fact_id": state.get("fact_id"),
            "type": raw.get("type") if isinstance(raw, dict) else None, "outcome": state.get("outcome"),
            "day": says[0], "zh": show(says[1]), "en": show(says[2]),
            "content": show(json.dumps(content, ensure_ascii=False, sort_keys=True, default=str)),
            "reason": show(str(state.get("reason") or "")),
        })
    return rows


def _says(raw: Any) -> tuple[str, str, str]:
    """(day, 中文, English) of a stored fact; blanks when it does not parse (a rejected fact)."""
    try:
        text = fact_text(parse_fact(raw))
    except (FactShapeError, ValueError, TypeError):
        return "", "", ""
    return text.day, text.zh, text.en


def law_in_force(rule_set_ids: Iterable[str], day: str) -> list[dict[str, Any]]:
    """Each named rule set's parameters (none named: the current rule set's) as in force on `day`:
    value, unit, since when, legal source. A rule set this build does not know is listed without."""
    rows: list[dict[str, Any]] = []
    for rule_set_id in sorted(set(rule_set_ids) or {CURRENT.id}):
        try:
            params = rule_set(rule_set_id).params
        except LookupError:
            rows.append({"rule_set": rule_set_id, "name": None})
            continue
        for name in params.names():
            value = params.find(name, day)
            if value is not None:
                rows.append({"rule_set": rule_set_id, "name": name, "value": value.value, "unit": value.unit,
                             "since": value.since, "source": value.source})
    return rows
