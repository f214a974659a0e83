"""Identity checks for workers (GB 11643-1999) and enterprises/parks (GB 32100-2015).

Written out rather than taken from python-stdnum: its `ric.is_valid` refuses valid Wuxi numbers whose
area code is younger than the holder (RULES.md section 1) and its `uscc.is_valid` refuses codes that
do not start with eight digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

# RULES.md section 5: province codes that may open a resident identity number.
PROVINCE_CODES = frozenset(
    [*range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66),
     71, 81, 82]
)
_RIC_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_RIC_SHAPE = re.compile(r"[0-9]{17}[0-9X]")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(f"[{USCC_ALPHABET}]{{18}}")


def ric_check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS, strict=True))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def ric_problem(number: str) -> str | None:
    """Why `number` is not a valid resident identity number, or None when it is."""
    if len(number) != 18:
        return f"must have 18 characters, has {len(number)}"
    if not _RIC_SHAPE.fullmatch(number):
        return "must be 17 digits and a check character 0-9 or X (uppercase)"
    if int(number[:2]) not in PROVINCE_CODES:
        return f"province code {number[:2]} does not exist"
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"birth date {number[6:14]} is not a calendar date"
    expected = ric_check_character(number[:17])
    if number[17] != expected:
        return f"check character is {number[17]}, expected {expected}"
    return None


def uscc_check_character(first17: str) -> str:
    """Check character of a unified social credit code (mod 31 over its alphabet)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_problem(code: str) -> str | None:
    """Why `code` is not a valid unified social credit code, or None when it is."""
    if len(code) != 18:
        return f"must have 18 characters, has {len(code)}"
    if not _USCC_SHAPE.fullmatch(code):
        return "may only use 0-9 and uppercase A-H J-N P-R T-U W-Y"
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        return f"check character is {code[17]}, expected {expected}"
    return None


def mask(identifier: str | None) -> str | None:
    """Operator view of an identity number: first 4 and last 4 characters only."""
    if identifier is None or len(identifier) <= 8:
        return identifier
    return identifier[:4] + "*" * (len(identifier) - 8) + identifier[-4:]


# A resident identity number (17 digits and a check character) standing alone anywhere in a text,
# tracebacks included (a database error's DETAIL quotes the row it refused). Enterprises' credit codes
# are public registry data and stay readable.
_IDENTITY_NUMBER_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])")


def mask_identifiers(text: str) -> str:
    """`text` with every identity number masked (`3202**********1019`): what operators see in logs,
    spans, error messages and published reasons (docs/design/audit.md)."""
    return replace_identifiers(text, lambda number: str(mask(number)))


def replace_identifiers(text: str, replacement: Callable[[str], str]) -> str:
    """`text` with every identity number standing alone replaced by `replacement(number)`."""
    return _IDENTITY_NUMBER_IN_TEXT.sub(lambda m: replacement(m.group(0)), text)


def identifiers_in(text: str) -> list[str]:
    """The identity numbers standing alone in `text`, in order."""
    return _IDENTITY_NUMBER_IN_TEXT.findall(text)

