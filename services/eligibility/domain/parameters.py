"""Effective-dated policy parameters (RULES.md section 2), kept as data beside their legal source.

A rule set's parameters are a YAML file (`rule_sets/*.yaml`, OpenFisca's parameter files are the model):
each parameter with its unit, legal reference and values by the date from which each is in force. A
value is looked up by the date it applies to (`m-01` for a month), never by the date of computing.

A reform (`reformed`) is the same table with some values changed from a date on: what `audit what-if`
replays the ledger under. Parsing is pure; reading the file is the rule set's, once, at import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RATIO = "ratio"  # the unit of an exact fraction, written "a/b"


@dataclass(frozen=True)
class ParameterValue:
    name: str
    value: int | Fraction
    since: str  # YYYY-MM-DD
    source: str
    unit: str = ""

    def cite(self) -> str:
        return f"{self.name}={self.value} since {self.since} ({self.source})"


class ParameterError(ValueError):
    """A parameter file or a reform that cannot be read: the message says where."""


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

    def values(self) -> tuple[ParameterValue, ...]:
        return tuple(v for name in self.names() for v in self._by_name[name])

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

    def reformed(self, changes: Iterable[Change]) -> ParameterTable:
        """This table with each change applied in turn: from its date on (from the parameter's first
        date when it has none) the parameter takes the new value; its earlier values stay."""
        by_name = {name: list(values) for name, values in self._by_name.items()}
        for change in changes:
            if change.name not in by_name:
                raise ParameterError(f"unknown parameter {change.name!r}; known: {', '.join(self.names())}")
            old = by_name[change.name]
            since = change.since or old[0].since
            value = parse_value(change.name, change.value, old[0].unit)
            kept = [v for v in old if v.since < since]
            new = ParameterValue(change.name, value, since, change.source, old[0].unit)
            by_name[change.name] = [*kept, new]
        return ParameterTable(tuple(v for values in by_name.values() for v in values))

    def replaced(self, other: ParameterTable) -> ParameterTable:
        """This table with every parameter `other` holds replaced by `other`'s history of it."""
        unknown = sorted(set(other.names()) - set(self.names()))
        if unknown:
            raise ParameterError(f"unknown parameters {', '.join(unknown)}; known: {', '.join(self.names())}")
        kept = tuple(v for v in self.values() if v.name not in other._by_name)
        return ParameterTable(kept + other.values())


@dataclass(frozen=True)
class Change:
    """One change of a reform: parameter `name` is `value` (as written) from `since` (None: always)."""

    name: str
    value: str
    since: str | None = None
    source: str = "reform"

    @classmethod
    def parse(cls, text: str) -> Change:
        """`NAME=VALUE` or `NAME=VALUE@YYYY-MM-DD`."""
        name, sep, rest = text.partition("=")
        value, _, since = rest.partition("@")
        if not sep or not name.strip() or not value.strip():
            raise ParameterError(f"{text!r} is not NAME=VALUE[@YYYY-MM-DD]")
        return cls(name.strip(), value.strip(), _day(since.strip(), text) if since else None,
                   f"reform {text.strip()}")


def _day(text: str, where: str) -> str:
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        date.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"{where}: {text!r} is not a date YYYY-MM-DD") from None
    return text


def parse_value(name: str, raw: Any, unit: str) -> int | Fraction:
    """A value as written in a file or a reform: an exact fraction "a/b" for a ratio, else an integer."""
    text = str(raw).strip()
    try:
        if unit == RATIO:
            value = Fraction(text)
            if value < 0:
                raise ValueError
            return value
        if isinstance(raw, bool) or not re.fullmatch(r"-?[0-9]+", text):
            raise ValueError
        return int(text)
    except (ValueError, ZeroDivisionError):
        kind = "a fraction a/b" if unit == RATIO else f"an integer ({unit or 'no unit'})"
        raise ParameterError(f"parameter {name}: {text!r} is not {kind}") from None


def parse_table(document: Mapping[str, Any], where: str) -> ParameterTable:
    """The parameters of a parsed YAML document (`parameters:` name -> unit, reference, values)."""
    parameters = document.get("parameters") if isinstance(document, Mapping) else None
    if not isinstance(parameters, Mapping) or not parameters:
        raise ParameterError(f"{where}: no `parameters:` mapping")
    out: list[ParameterValue] = []
    for name, spec in parameters.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("values"), Mapping) or not spec["values"]:
            raise ParameterError(f"{where}: parameter {name} has no `values:` mapping")
        unit, reference = str(spec.get("unit") or ""), str(spec.get("reference") or where)
        for since, raw in spec["values"].items():
            day = _day(since.isoformat() if isinstance(since, date) else str(since), f"{where}: {name}")
            out.append(ParameterValue(str(name), parse_value(str(name), raw, unit), day, reference, unit))
    return ParameterTable(tuple(out))
