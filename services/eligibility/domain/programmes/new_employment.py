"""4.8 new_employment — 城镇新增就业统计 (Art. 4): each calendar year, the first month whose total
income reaches the minimum wage and for which social insurance was paid."""

from __future__ import annotations

from dataclasses import dataclass

from services.eligibility.domain.entitlement import Basis, Key, Line, Lines, flag_key
from services.eligibility.domain.months import first_day, month_name
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

PROGRAM = "new_employment"


def _basis(year: int, income: int, wage: int, wage_since: str, contribution_id: str,
           report_ids: tuple[str, ...]) -> Basis:
    return Basis(
        article="Art. 4",
        reason_en=f"first month of {year} with income {income} fen >= minimum wage {wage} and insurance paid",
        reason_zh=f"{year}年首个劳动收入达到最低工资标准并缴纳社会保险的月份",
        params=(("min_wage_monthly_fen", str(wage), wage_since),),
        fact_ids=(contribution_id, *report_ids),
    )


@dataclass(slots=True)
class _Kept:
    """What new_employment keeps in the worker's file between facts: each year's counted month. A year's
    count reads only that year's reports and contributions, so a fact re-evaluates its own year."""

    rule_set: str
    years: dict[int, tuple[int, Key, Line]]  # year -> (counted month, key, line)
    lines: Lines  # what was returned


def _count(file: WorkerFile, rules: RuleSet, year: int) -> tuple[int, Key, Line] | None:
    """The statistic of `year`: its first month >= policy start, stable in total, with a contribution."""
    for month in range(max(year * 12, rules.policy_start_month), year * 12 + 12):
        if month not in file.contributions:
            continue
        income = file.total_income(month)
        wage = rules.min_wage(month)
        if income < wage:
            continue
        return month, flag_key("statistic", PROGRAM, None, file.worker, None, month_name(month)), Line.lazy(
            0, _basis, year, income, wage, rules.params.at("min_wage_monthly_fen", first_day(month)).since,
            file.contributions[month][1], tuple(file.report_ids(month)))
    return None


def new_employment(file: WorkerFile, rules: RuleSet) -> Lines:
    changes = file.take_changes(PROGRAM)
    kept = file.cache.get(PROGRAM)
    if kept is not None and changes is not None and kept.rule_set == rules.id:
        # a year counted before every change in it keeps its count: the months up to it are unchanged
        dirty = {month // 12 for _, month in changes if month <= kept.years.get(month // 12, (month,))[0]}
        if not dirty:
            return kept.lines
        years = dict(kept.years)
    else:
        dirty = {month // 12 for month in file.contributions}
        years = {}
    for year in sorted(dirty):
        found = _count(file, rules, year)
        if found is None:
            years.pop(year, None)
        else:
            years[year] = found
    lines = {years[year][1]: years[year][2] for year in sorted(years)}
    file.cache[PROGRAM] = _Kept(rules.id, years, lines)
    return lines
