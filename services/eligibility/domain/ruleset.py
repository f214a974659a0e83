"""Rule sets by version. Version 1 is RULES.md of wuxi-2021-26; a version 2 is a new entry here.

Every decision records the id of the rule set it was made with, and replays under that rule set, so a
later version stands beside version 1 without changing what version 1 decided. Which version decides
a subject's facts is `RuleSets.for_subject`: the one its first fact was decided under.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.eligibility.domain.months import first_day, month_index
from services.eligibility.domain.parameters import ParameterTable, parse_table


@dataclass(frozen=True)
class RuleSet:
    id: str
    params: ParameterTable
    policy_start_month: int  # months before it never count (RULES.md section 1)
    policy_start_date: str  # dated events must be on or after it
    wuxi_divisions: frozenset[str]
    # month index -> minimum wage in force on m-01 (a cache: the wage is read for every month evaluated)
    _min_wage: dict[int, int] = field(default_factory=dict, init=False, compare=False, repr=False)
    # values programmes derive from the parameters once per rule set (a cache, keyed by the programme)
    derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def value(self, name: str, day: str) -> int:
        """An integer parameter in force on `day`."""
        value = self.params.at(name, day).value
        assert isinstance(value, int), name
        return value

    def min_wage(self, month: int) -> int:
        wage = self._min_wage.get(month)
        if wage is None:
            wage = self._min_wage[month] = self.value("min_wage_monthly_fen", first_day(month))
        return wage

    def with_parameters(self, params: ParameterTable, rule_set_id: str) -> RuleSet:
        """This rule set under other parameter values (a reform), named `rule_set_id`; fresh caches."""
        return dataclasses.replace(self, id=rule_set_id, params=params)


RULE_SET_FILES = Path(__file__).parent / "rule_sets"


def load_parameters(file_name: str) -> ParameterTable:
    """A rule set's parameter file (package data), read once when the rule set is built."""
    path = RULE_SET_FILES / file_name
    return parse_table(yaml.safe_load(path.read_text(encoding="utf-8")), file_name)


WUXI_2021_26_V1 = RuleSet(
    id="wuxi-2021-26/1",
    params=load_parameters("wuxi-2021-26-1.yaml"),
    policy_start_month=month_index("2021-06"),
    policy_start_date="2021-05-31",
    wuxi_divisions=frozenset({"320205", "320206", "320211", "320213", "320214", "320281", "320282"}),
)


@dataclass(frozen=True)
class RuleSets:
    """The rule sets eligibility knows, and the current one.

    Which rule set decides a subject's facts (docs/design/rules.md, "Which rule set decides a fact"):
    the one its first fact was decided under, for as long as the subject exists, so that a new version
    never re-decides what an older one decided and an auditor can name the law behind every payout. A
    new version decides the subjects first seen after it became current. Moving existing subjects to a
    new version would be an explicit, recorded operation (not built)."""

    current: RuleSet
    known: Mapping[str, RuleSet]

    def __post_init__(self) -> None:
        assert self.known.get(self.current.id) is self.current, "the current rule set must be known"

    def by_id(self, rule_set_id: str) -> RuleSet:
        try:
            return self.known[rule_set_id]
        except KeyError:
            raise LookupError(f"unknown rule set {rule_set_id!r}; known: {', '.join(self.known)}") from None

    def for_subject(self, first_decided_under: str | None) -> RuleSet:
        """The rule set that decides a subject's next fact. `first_decided_under`: the rule set id recorded
        with the subject's first processed fact; None for a subject not seen yet."""
        return self.current if first_decided_under is None else self.by_id(first_decided_under)


RULE_SETS: dict[str, RuleSet] = {WUXI_2021_26_V1.id: WUXI_2021_26_V1}
CURRENT = WUXI_2021_26_V1
IN_FORCE = RuleSets(current=CURRENT, known=RULE_SETS)


def rule_set(rule_set_id: str) -> RuleSet:
    return IN_FORCE.by_id(rule_set_id)
