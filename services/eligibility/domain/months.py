"""Calendar months as integers (year * 12 + month - 1), so that `m + k` is k months after m."""

from __future__ import annotations


def month_index(month: str) -> int:
    """'2021-06' -> index; the month of a date 'YYYY-MM-DD' works too."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_name(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def first_day(index: int) -> str:
    """`m-01`, the date a month's parameters and categories are read on."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}-01"
