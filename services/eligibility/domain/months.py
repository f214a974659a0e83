"""Calendar months as integers (year * 12 + month - 1), so that `m + k` is k months after m.

The conversions are cached: the rules read the same few hundred months millions of times."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def month_index(month: str) -> int:
    """'2021-06' -> index; the month of a date 'YYYY-MM-DD' works too."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


@lru_cache(maxsize=4096)
def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@lru_cache(maxsize=4096)
def first_day(index: int) -> str:
    """`m-01`, the date a month's parameters and categories are read on."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}-01"
