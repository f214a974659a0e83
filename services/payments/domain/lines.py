"""Money lines and the fiscal-year rule.

A money line is `(program, beneficiary, subject, ref, month)` as in `contracts.decisions`. The fiscal
year of a money decision is the calendar year (China's fiscal year, 1 January to 31 December) of the
line's month when it has one, otherwise of the date the decision was recorded by eligibility, read in
China Standard Time (UTC+08:00, whatever offset the timestamp carries). The recorded timestamp is an
explicit input, never the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from contracts.decisions import DecisionV1
from services.payments.domain.errors import InvalidDecision

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class Line(NamedTuple):
    program: str
    beneficiary: str
    subject: str | None
    ref: str | None
    month: str | None

    def __str__(self) -> str:
        return "/".join("-" if part is None else part for part in self)


def require_aware(at: datetime) -> datetime:
    """Every time the core sees comes from outside and must carry its UTC offset."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamp {at.isoformat()} has no UTC offset")
    return at


def fiscal_year(month: str | None, recorded_at: datetime) -> int:
    """Calendar year of `month` ('YYYY-MM') when given, else of `recorded_at` in China Standard Time."""
    require_aware(recorded_at)
    if month is None:
        return recorded_at.astimezone(CHINA_STANDARD_TIME).year
    match = _MONTH.match(month)
    if match is None:
        raise InvalidDecision(f"month {month!r} is not YYYY-MM")
    return int(match.group(1))


def line_of(decision: DecisionV1) -> Line:
    """The money line of a grant or clawback; refuses one without programme or beneficiary."""
    if not decision.program:
        raise InvalidDecision(f"decision {decision.decision_id}: program is missing")
    if not decision.beneficiary:
        raise InvalidDecision(f"decision {decision.decision_id}: beneficiary is missing")
    return Line(decision.program, decision.beneficiary, decision.subject, decision.ref, decision.month)


def decision_line(decision: DecisionV1) -> Line | None:
    """The money line a decision names, or None when it names no programme or beneficiary."""
    return line_named(decision.program, decision.beneficiary, decision.subject, decision.ref, decision.month)


def line_named(
    program: str | None, beneficiary: str | None, subject: str | None, ref: str | None, month: str | None
) -> Line | None:
    """The money line of these parts, or None without a programme or a beneficiary."""
    return Line(program, beneficiary, subject, ref, month) if program and beneficiary else None


@dataclass(slots=True)
class LineTally:
    """What the decisions said about one line, and how the clawbacks were split."""

    granted_fen: int = 0
    clawed_fen: int = 0
    cancelled_fen: int = 0  # clawed back before disbursement
    claimed_fen: int = 0  # clawed back after disbursement: receivables raised

    @property
    def net_fen(self) -> int:
        """The line's net entitlement: grants minus clawbacks."""
        return self.granted_fen - self.clawed_fen
