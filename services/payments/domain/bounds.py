"""The bounds of an operator command, checked before it reaches the book (docs/design/http-bounds.md).

No reading of the rules needs a value outside them: a budget is for a programme of RULES.md section 4
that carries money, for a fiscal year from the one the measures took effect in (2021) up to the year
after the command's own (a budget may be set ahead, not for 2099), of at most RULES.md's sanity bound
of a money field (10^13 fen); a repayment names an 18-character identity number or credit code, and
its texts hold no control character (PostgreSQL text cannot hold NUL). `InvalidCommand` names the
field; nothing is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import get_args

from contracts.decisions import MoneyProgramme
from services.payments.domain.lines import CHINA_STANDARD_TIME, require_aware

MONEY_PROGRAMMES = frozenset(get_args(MoneyProgramme))
FIRST_FISCAL_YEAR = 2021  # 锡政办发〔2021〕26号 took effect in 2021-06
LAST_FISCAL_YEAR = 2100  # the static bound of the HTTP schema; the command's year + 1 is the real one
MAX_FEN = 10**13  # RULES.md section 5: every money field at most 10^13 fen
MAX_TEXT_CHARS = 200  # as RULES.md's free text
BENEFICIARY_PATTERN = r"^[0-9A-Z]{18}$"  # a resident identity number or a unified social credit code
_BENEFICIARY = re.compile(BENEFICIARY_PATTERN)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class InvalidCommand(ValueError):
    """A command with a value outside its bounds: `field` names it, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_appropriation(program: str, fiscal_year: int, amount_fen: int, at: datetime) -> None:
    if program not in MONEY_PROGRAMMES:
        known = ", ".join(sorted(MONEY_PROGRAMMES))
        raise InvalidCommand("program", f"not a programme with a budget; one of {known}")
    last_year = require_aware(at).astimezone(CHINA_STANDARD_TIME).year + 1
    if not FIRST_FISCAL_YEAR <= fiscal_year <= last_year:
        raise InvalidCommand("fiscal_year", f"must be {FIRST_FISCAL_YEAR}..{last_year} (at most next year)")
    _check_fen("amount_fen", amount_fen, 0)


def check_repayment(beneficiary: str, amount_fen: int, reference: str) -> None:
    if not _BENEFICIARY.fullmatch(beneficiary):
        raise InvalidCommand("beneficiary", "must be an 18-character identity number or credit code")
    _check_fen("amount_fen", amount_fen, 1)
    check_text("reference", reference)


def check_text(field: str, text: str | None) -> None:
    if text is None:
        return
    if not 0 < len(text) <= MAX_TEXT_CHARS or not text.strip():
        raise InvalidCommand(field, f"must be 1..{MAX_TEXT_CHARS} characters, not blank")
    if _CONTROL.search(text):
        raise InvalidCommand(field, "a control character is not allowed")


def _check_fen(field: str, amount_fen: int, least: int) -> None:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise InvalidCommand(field, "must be an integer number of fen")
    if not least <= amount_fen <= MAX_FEN:
        raise InvalidCommand(field, f"must be {least}..{MAX_FEN} fen")
