"""Decisions: what the ledger records after each fact (RULES.md section 3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from services.eligibility.domain.entitlement import MONEY, Basis, Key, Line

DECISION_NAMESPACE = uuid.UUID("6f1c2d1e-6a4b-5e0f-9a57-3c1d2b9e7a10")


def decision_id(book: str, after: str | None, identity: str) -> str:
    """Deterministic id: the engine and the running services give one decision the same id."""
    return str(uuid.uuid5(DECISION_NAMESPACE, f"{book}|{after}|{identity}"))


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    rule_set: str
    after: str | None
    kind: str
    program: str | None = None
    beneficiary: str | None = None
    subject: str | None = None
    ref: str | None = None
    month: str | None = None
    amount_fen: int = 0
    reason: str | None = None
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "after": self.after, "kind": self.kind, "program": self.program, "beneficiary": self.beneficiary,
            "subject": self.subject, "ref": self.ref, "month": self.month, "amount_fen": self.amount_fen,
            "rule_set": self.rule_set, "decision_id": self.decision_id,
        }
        if self.kind == "rejected":
            out = {"after": self.after, "kind": "rejected", "reason": self.reason,
                   "rule_set": self.rule_set, "decision_id": self.decision_id}
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out


def _explanation(rule_set: str, kind: str, amount: int, basis: Basis, note: str) -> dict[str, Any]:
    cny = f"{amount // 100}" + (f".{amount % 100:02d}" if amount % 100 else "")
    head = f"{basis.article} — {cny} CNY" if amount else f"{basis.article} — {kind}"
    return {
        "article": basis.article,
        "rule_set": rule_set,
        "summary": f"{head}: {note}{basis.reason_en}",
        "reason_en": f"{note}{basis.reason_en}",
        "reason_zh": basis.reason_zh,
        "parameters": [{"name": n, "value": v, "since": s} for n, v, s in basis.params],
        "fact_ids": list(basis.fact_ids),
    }


def line_decisions(
    book: str, rule_set: str, after: str, key: Key, old: Line | None, new: Line | None
) -> list[Decision]:
    """The decisions that take line `key` from `old` to `new` (empty when nothing changed)."""
    kind_of_key, program, beneficiary, subject, ref, month = key
    common = {"program": program, "beneficiary": beneficiary, "subject": subject, "ref": ref, "month": month}
    identity = "|".join(str(part) for part in key)
    if kind_of_key == MONEY:
        before = old.amount_fen if old else 0
        after_amount = new.amount_fen if new else 0
        if before == after_amount:
            return []
        if after_amount > before:
            assert new is not None
            delta, kind, basis = after_amount - before, "grant", new.basis
            note = f"raised from {before} to {after_amount} fen: " if before else ""
        else:
            delta, kind = before - after_amount, "clawback"
            basis = new.basis if new else old.basis  # type: ignore[union-attr]
            note = (f"reduced from {before} to {after_amount} fen: " if new
                    else f"entitlement ended after fact {after} (it rested on: ")
        explanation = _explanation(rule_set, kind, delta, basis, note)
        if new is None:
            explanation["reason_en"] += ")"
            explanation["summary"] += ")"
        return [Decision(decision_id(book, after, identity), rule_set, after, kind, amount_fen=delta,
                         explanation=explanation, **common)]
    if (old is None) == (new is None):
        return []
    kind = kind_of_key if new is not None else f"{kind_of_key}_revoked"
    basis = (new or old).basis  # type: ignore[union-attr]
    note = "" if new is not None else f"revoked after fact {after}; it rested on: "
    return [Decision(decision_id(book, after, identity), rule_set, after, kind, amount_fen=0,
                     explanation=_explanation(rule_set, kind, 0, basis, note), **common)]


def rejection(
    book: str, rule_set: str, after: str | None, reason: str, content_digest: str, seq: int
) -> Decision:
    """The decision recording a rejected submission. Its identity includes intake's recording sequence
    number `seq` (per book, 1, 2, 3, ...), so two recorded rejections never share a decision id, whatever
    their content. (Resending a rejected fact's id with the same content records nothing: RULES.md 5.)"""
    return Decision(decision_id(book, after, f"rejected|{seq}|{content_digest}"), rule_set, after, "rejected",
                    reason=reason)
