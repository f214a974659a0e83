"""Effective-dated policy parameters (RULES.md section 2), kept as data beside their legal source.

A value is looked up by the date it applies to (`m-01` for a month), never by the date of computing.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class ParameterValue:
    name: str
    value: int | Fraction
    since: str  # YYYY-MM-DD
    source: str

    def cite(self) -> str:
        return f"{self.name}={self.value} since {self.since} ({self.source})"


class ParameterTable:
    """All values of a rule set's parameters; `at(name, day)` is the value in force on `day`."""

    def __init__(self, values: tuple[ParameterValue, ...]) -> None:
        by_name: dict[str, list[ParameterValue]] = {}
        for value in values:
            by_name.setdefault(value.name, []).append(value)
        self._by_name = {name: sorted(vals, key=lambda v: v.since) for name, vals in by_name.items()}
        self._cache: dict[tuple[str, str], ParameterValue | None] = {}

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def history(self, name: str) -> list[ParameterValue]:
        return list(self._by_name[name])

    def find(self, name: str, day: str) -> ParameterValue | None:
        """The value in force on `day`, or None before the parameter's first value."""
        key = (name, day)
        if key not in self._cache:
            found = None
            for value in self._by_name[name]:
                if value.since <= day:
                    found = value
            self._cache[key] = found
        return self._cache[key]

    def at(self, name: str, day: str) -> ParameterValue:
        value = self.find(name, day)
        if value is None:
            raise LookupError(f"parameter {name} has no value on {day}")
        return value
