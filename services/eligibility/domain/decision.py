"""Decisions: what the ledger records after each fact (RULES.md section 3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from typing import Any

from contracts.facts import AnyFact
from services.eligibility.domain.entitlement import MONEY, Basis, Key, Line
from services.eligibility.domain.fact_text import KIND_ZH, PROGRAMME_ZH, FactText, fact_text

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
    # What a clawback or revocation takes back: the sorted ids of the decisions that granted it (the
    # grants of the money line, the decision that granted the flag). None on every other decision.
    reverses: tuple[str, ...] | None = None

    def stored(self) -> dict[str, Any]:
        """The decision as the ledger records it: every field, `reverses` only when it has one (so the
        other decisions keep the shape they were recorded with before `reverses` existed)."""
        out = {name: getattr(self, name) for name in _STORED_FIELDS}
        if self.reverses is not None:
            out["reverses"] = list(self.reverses)
        return out

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
        if self.reverses is not None:
            out["reverses"] = list(self.reverses)
        return out


# Not a copy of the explanation (as `dataclasses.asdict` makes): a fresh dict per decision, never changed.
_STORED_FIELDS = tuple(field.name for field in fields(Decision) if field.name != "reverses")


def _cny(fen: int) -> str:
    return f"{fen // 100}" + (f".{fen % 100:02d}" if fen % 100 else "")


def _what(program: str | None, kind: str, month: str | None, ref: str | None) -> tuple[str, str]:
    """The line a decision is about, in English and Chinese: 'social_insurance 2023-04'."""
    at = " ".join(part for part in (month, ref) if part)
    name_zh = PROGRAMME_ZH.get(program or "", program or "")
    if kind != MONEY:
        name_zh = f"{name_zh}{KIND_ZH.get(kind, kind)}"
        return " ".join(p for p in (kind, program, at) if p), " ".join(p for p in (name_zh, at) if p)
    return " ".join(p for p in (program, at) if p), " ".join(p for p in (name_zh, at) if p)


def _explanation(
    rule_set: str, kind: str, amount: int, basis: Basis, reason_en: str, reason_zh: str, after: str
) -> dict[str, Any]:
    head = f"{basis.article} — {_cny(amount)} CNY" if amount else f"{basis.article} — {kind}"
    fact_ids = list(basis.fact_ids)
    if after not in fact_ids:
        fact_ids.append(after)  # the fact that caused the decision is always among those it rests on
    return {
        "article": basis.article,
        "rule_set": rule_set,
        "summary": f"{head}: {reason_en}",
        "reason_en": reason_en,
        "reason_zh": reason_zh,
        "parameters": [{"name": n, "value": v, "since": s} for n, v, s in basis.params],
        "fact_ids": fact_ids,
    }


def _money_reasons(
    before: int, after_amount: int, basis: Basis, fact: AnyFact, what: tuple[str, str]
) -> tuple[str, str]:
    """Why a money line changed, in English and Chinese. A new line gives its basis; a raised, reduced
    or ended one also names the fact that changed it (and, reduced or ended, what is clawed back)."""
    if after_amount > before and not before:
        return basis.reason_en, basis.reason_zh  # most decisions: the grant's basis says it all
    trigger = fact_text(fact)
    if after_amount > before:
        return (f"raised from {before} to {after_amount} fen by {trigger.cite_en()}: {basis.reason_en}",
                f"因{trigger.cite_zh()}，由{before}分增至{after_amount}分：{basis.reason_zh}")
    delta = before - after_amount
    if after_amount:
        return (
            f"reduced from {before} to {after_amount} fen by {trigger.cite_en()}: {delta} fen "
            f"({_cny(delta)} CNY) of {what[0]} clawed back; it now rests on: {basis.reason_en}",
            f"因{trigger.cite_zh()}，{what[1]}由{before}分核减为{after_amount}分，追回{_cny(delta)}元；"
            f"现依据：{basis.reason_zh}",
        )
    return (
        f"entitlement ended by {trigger.cite_en()}: the {delta} fen ({_cny(delta)} CNY) granted for "
        f"{what[0]} are clawed back (it rested on: {basis.reason_en})",
        f"因{trigger.cite_zh()}，{what[1]}的享受资格终止，追回已享受的{_cny(delta)}元"
        f"（原依据：{basis.reason_zh}）",
    )


def _flag_reasons(granted: bool, basis: Basis, trigger: FactText, what: tuple[str, str]) -> tuple[str, str]:
    if granted:
        return (f"{basis.reason_en} (decided on {trigger.cite_en()})",
                f"{basis.reason_zh}（依据{trigger.cite_zh()}认定）")
    return (
        f"{what[0]} revoked by {trigger.cite_en()}: its condition no longer holds (it rested on: "
        f"{basis.reason_en})",
        f"因{trigger.cite_zh()}，{what[1]}的条件不再成立，予以撤销（原依据：{basis.reason_zh}）",
    )


def line_identity(key: Key) -> str:
    """What names a line in the ids of its decisions."""
    return "|".join(str(part) for part in key)


def line_decisions(
    book: str, rule_set: str, fact: AnyFact, key: Key, old: Line | None, new: Line | None,
    granted_after: tuple[str, ...] = (),
) -> list[Decision]:
    """The decisions that take line `key` from `old` to `new` (empty when nothing changed); `fact` is the
    fact that caused the change, `granted_after` the facts after which the line's current grants (or its
    flag) were decided: a clawback or revocation reverses those decisions."""
    kind_of_key, program, beneficiary, subject, ref, month = key
    after = fact.id
    common = {"program": program, "beneficiary": beneficiary, "subject": subject, "ref": ref, "month": month}
    identity = line_identity(key)
    reverses = tuple(sorted(decision_id(book, granted, identity) for granted in granted_after))
    what = _what(program, kind_of_key, month, ref)
    if kind_of_key == MONEY:
        before = old.amount_fen if old else 0
        after_amount = new.amount_fen if new else 0
        if before == after_amount:
            return []
        kind = "grant" if after_amount > before else "clawback"
        basis = new.basis if new else old.basis  # type: ignore[union-attr]
        reason_en, reason_zh = _money_reasons(before, after_amount, basis, fact, what)
        delta = abs(after_amount - before)
        explanation = _explanation(rule_set, kind, delta, basis, reason_en, reason_zh, after)
        return [Decision(decision_id(book, after, identity), rule_set, after, kind, amount_fen=delta,
                         explanation=explanation, reverses=reverses if kind == "clawback" else None,
                         **common)]
    if (old is None) == (new is None):
        return []
    kind = kind_of_key if new is not None else f"{kind_of_key}_revoked"
    basis = (new or old).basis  # type: ignore[union-attr]
    reason_en, reason_zh = _flag_reasons(new is not None, basis, fact_text(fact), what)
    explanation = _explanation(rule_set, kind, 0, basis, reason_en, reason_zh, after)
    return [Decision(decision_id(book, after, identity), rule_set, after, kind, amount_fen=0,
                     explanation=explanation, reverses=None if new is not None else reverses, **common)]


def rejection(
    book: str, rule_set: str, after: str | None, reason: str, content_digest: str, seq: int
) -> Decision:
    """The decision recording a rejected submission. Its identity includes intake's recording sequence
    number `seq` (per book, 1, 2, 3, ...), so two recorded rejections never share a decision id, whatever
    their content. (Resending a rejected fact's id with the same content records nothing: RULES.md 5.)"""
    return Decision(decision_id(book, after, f"rejected|{seq}|{content_digest}"), rule_set, after, "rejected",
                    reason=reason)
