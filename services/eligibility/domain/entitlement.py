"""Entitlement state: money lines and flags, each with the basis it was computed from.

A key is `(kind, program, beneficiary, subject, ref, month)`; kind is "money" for money lines and
`extension`, `statistic` or `recognition` for flags (RULES.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MONEY = "money"
Key = tuple[str, str, str | None, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Basis:
    """Why a line has its amount: the article, parameters used, fact ids and the reason's parts."""

    article: str
    reason_en: str
    reason_zh: str
    params: tuple[tuple[str, str, str], ...] = ()  # (name, value, since)
    fact_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Line:
    amount_fen: int  # > 0 for money lines, 0 for flags
    basis: Basis = field(compare=False)


Lines = dict[Key, Line]


def money_key(program: str, beneficiary: str, subject: str | None, ref: str | None, month: str | None) -> Key:
    return (MONEY, program, beneficiary, subject, ref, month)


def flag_key(kind: str, program: str, beneficiary: str | None, subject: str, ref: str | None, month: str | None) -> Key:
    return (kind, program, beneficiary, subject, ref, month)
