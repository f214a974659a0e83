"""What each page shows, computed from the services' answers: pure, no I/O.

`PAGE_ROLES` is the console's own page x role table, checked before any service is asked; the
services then apply their own policy to the user's key (docs/design/console.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from contracts.identifiers import mask, mask_identifiers
from services.runtime.access.principals import ROLES, Principal, Role

Page = str
_READERS: frozenset[Role] = frozenset({"platform", "auditor", "operator", "statistics"})
PAGE_ROLES: dict[Page, frozenset[Role]] = {
    "overview": frozenset(ROLES),
    "subject": _READERS,
    "decision": _READERS,
    "payments": frozenset({"finance", "auditor", "operator", "statistics"}),
    "dead_letters": frozenset({"operator", "auditor"}),
    "replay": frozenset({"operator", "auditor"}),  # reads the facts in clear from the event store
    "redrive": frozenset({"operator"}),  # a dead letter taken in again (the services allow operators only)
}
UNMASKING_ROLES: frozenset[Role] = frozenset({"auditor"})  # may ask to see identity numbers in clear
IDENTITY_FIELDS = ("beneficiary", "subject", "worker", "enterprise")


def may_open(principal: Principal, page: Page) -> bool:
    return principal.role in PAGE_ROLES[page]


def may_unmask(principal: Principal) -> bool:
    return principal.role in UNMASKING_ROLES


def sees_identities(principal: Principal) -> bool:
    """Whether the services answer this role with identity numbers (masked on the page), not with
    keyed pseudonyms (statistics)."""
    return principal.role != "statistics"


def masked(row: dict[str, Any], unmasked: bool) -> dict[str, Any]:
    """`row` with identity numbers masked in its identity fields and free text, unless `unmasked`."""
    if unmasked:
        return row
    out = dict(row)
    for name in IDENTITY_FIELDS:
        if isinstance(out.get(name), str):
            out[name] = mask(out[name])
    for name in ("reason", "awaiting_reason", "last_return_reason", "return_reason"):
        if isinstance(out.get(name), str):
            out[name] = mask_identifiers(out[name])
    explanation = out.get("explanation")
    if isinstance(explanation, dict):
        out["explanation"] = {k: mask_identifiers(v) if isinstance(v, str) else v
                              for k, v in explanation.items()}
    return out


def masked_fact(fact: dict[str, Any], unmasked: bool) -> dict[str, Any]:
    """A fact's fields for display: every identity number in every text masked, unless `unmasked`."""
    if unmasked:
        return fact
    return {k: mask_identifiers(v) if isinstance(v, str) else
            mask_identifiers(json.dumps(v, ensure_ascii=False)) if isinstance(v, dict | list) else v
            for k, v in fact.items()}


def about(row: dict[str, Any], subject: str) -> bool:
    return subject in (row.get("beneficiary"), row.get("subject"))


def of_subject(rows: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    return [r for r in rows if about(r, subject)]


def as_of(decisions: list[dict[str, Any]], before_month: str | None) -> list[dict[str, Any]]:
    """The decisions about months up to `before_month` (YYYY-MM), or all."""
    if not before_month:
        return decisions
    return [d for d in decisions if not d.get("month") or str(d["month"])[:7] <= before_month]


def money_lines(orders: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(open, closed) orders: open while something is unpaid or in transit."""
    open_ = [o for o in orders if (o.get("unpaid_fen") or 0) or (o.get("in_transit_fen") or 0)]
    closed = [o for o in orders if o not in open_]
    return open_, closed


# ---- Prometheus text (GET /metrics of each service) -----------------------------------------------

def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    found = []
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, _, value = line[len(name) + 1:].rpartition("} ")
        labels = {}
        for part in labels_text.split('",'):
            key, _, raw = part.partition('="')
            labels[key.strip()] = raw.rstrip('"')
        try:
            found.append((labels, float(value)))
        except ValueError:
            continue
    return found


def lag_messages(text: str) -> int:
    return int(sum(v for _, v in _samples(text, "flexledger_kafka_consumer_lag_messages")))


def checkpoint_age_s(eligibility_metrics: str) -> float | None:
    """Seconds since eligibility's last signed checkpoint (its gauge), None when it does not say."""
    for line in eligibility_metrics.splitlines():
        name, _, figure = line.partition(" ")
        if name == "flexledger_eligibility_checkpoint_age_seconds":
            try:
                return float(figure)
            except ValueError:
                return None
    return None


def dead_letters(texts: Mapping[str, str]) -> list[dict[str, Any]]:
    """Dead letters kept by each service since it started, by source topic and reason."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for service, text in texts.items():
        for labels, value in _samples(text, "flexledger_dead_letters_total"):
            counts[(service, labels.get("topic", ""), labels.get("reason", ""))] += int(value)
    return [{"service": s, "topic": t, "reason": r, "count": n}
            for (s, t, r), n in sorted(counts.items()) if n]
