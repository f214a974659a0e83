"""4.8 new_employment — 城镇新增就业统计 (Art. 4): each calendar year, the first month whose total
income reaches the minimum wage and for which social insurance was paid."""

from __future__ import annotations

from services.eligibility.domain.entitlement import Basis, Line, Lines, flag_key
from services.eligibility.domain.months import month_name
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

PROGRAM = "new_employment"


def new_employment(wf: WorkerFile, rs: RuleSet) -> Lines:
    lines: Lines = {}
    counted_years: set[int] = set()
    for month in sorted(wf.contributions):
        year = month // 12
        if month < rs.policy_start_month or year in counted_years:
            continue
        income = wf.total_income(month)
        wage = rs.min_wage(month)
        if income < wage:
            continue
        counted_years.add(year)
        lines[flag_key("statistic", PROGRAM, None, wf.worker, None, month_name(month))] = Line(0, Basis(
            article="Art. 4",
            reason_en=f"first month of {year} with income {income} fen >= minimum wage {wage} and insurance paid",
            reason_zh=f"{year}年首个劳动收入达到最低工资标准并缴纳社会保险的月份",
            params=(("min_wage_monthly_fen", str(wage), rs.params.at("min_wage_monthly_fen",
                                                                     f"{month_name(month)}-01").since),),
            fact_ids=(wf.contributions[month][1], *wf.report_ids(month)),
        ))
    return lines
