"""Entitlement state: money lines and flags, each with the basis it was computed from.

A key is `(kind, program, beneficiary, subject, ref, month)`; kind is "money" for money lines and
`extension`, `statistic` or `recognition` for flags (RULES.md section 3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


class Line:
    """A money line's amount (> 0) or a flag (0), and the basis it was computed from.

    Lines are recomputed far more often than they change, and only a changed line becomes a decision
    with an explanation. So a line may carry, instead of its Basis, a function and the values it was
    computed from (immutable, taken when the line was computed), and build the Basis when asked.
    Equality is by amount only, as the basis explains a line but is not part of the entitlement.
    """

    __slots__ = ("_args", "_basis", "_make", "amount_fen")

    def __init__(self, amount_fen: int, basis: Basis | None = None) -> None:
        self.amount_fen = amount_fen
        self._basis = basis
        self._make: Callable[..., Basis] | None = None
        self._args: tuple[Any, ...] = ()

    @classmethod
    def lazy(cls, amount_fen: int, make: Callable[..., Basis], *args: Any) -> Line:
        line = cls(amount_fen)
        line._make, line._args = make, args
        return line

    @property
    def basis(self) -> Basis:
        if self._basis is not None:
            return self._basis
        assert self._make is not None
        return self._make(*self._args)  # not kept: a decision reads it once, the line may live for years

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Line) and other.amount_fen == self.amount_fen

    def __hash__(self) -> int:
        return hash(self.amount_fen)

    def __repr__(self) -> str:
        return f"Line(amount_fen={self.amount_fen})"


Lines = dict[Key, Line]


def money_key(program: str, beneficiary: str, subject: str | None, ref: str | None, month: str | None) -> Key:
    return (MONEY, program, beneficiary, subject, ref, month)


def flag_key(
    kind: str, program: str, beneficiary: str | None, subject: str, ref: str | None, month: str | None
) -> Key:
    return (kind, program, beneficiary, subject, ref, month)
