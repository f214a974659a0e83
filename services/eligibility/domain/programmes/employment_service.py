"""4.1 employment_service — 就业创业服务补助 (Art. 2): once per worker, to the platform whose
qualifying run of six consecutive stable months starts first."""

from __future__ import annotations

from services.eligibility.domain.entitlement import Basis, Line, Lines, money_key
from services.eligibility.domain.months import first_day, month_name
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

PROGRAM = "employment_service"
CATEGORY_NAMES = {"employment_difficulty": "就业困难人员", "registered_unemployed": "失业人员"}


def _qualifying_run(
    wf: WorkerFile, rs: RuleSet, enterprise: str, months: dict[int, tuple[int, str]]
) -> tuple[int, Line] | None:
    """The earliest qualifying run of W through `enterprise`: (start month, line), or None."""
    stable = {m for m, (income, _) in months.items() if m >= rs.policy_start_month and income >= rs.min_wage(m)}
    for start in sorted(stable):
        day = first_day(start)
        run_length = rs.value("stable_income_months", day)
        run = range(start, start + run_length)
        if not all(m in stable for m in run):
            continue
        category = next(
            (c for c in ("employment_difficulty", "registered_unemployed") if wf.category_on(c, day)), None
        )
        residence = wf.residence_on(first_day(start + run_length - 1))
        if category is None or residence is None or residence[0] not in rs.wuxi_divisions:
            continue
        name = "employment_service_difficulty_fen" if category == "employment_difficulty" else (
            "employment_service_unemployed_fen")
        param = rs.params.at(name, day)
        wage = rs.params.at("min_wage_monthly_fen", day)
        declaration = wf.categories[category]
        span = f"{month_name(start)}..{month_name(start + run_length - 1)}"
        basis = Basis(
            article="Art. 2",
            reason_en=(
                f"{run_length} consecutive months {span} with income through {enterprise} at or above the "
                f"minimum wage; {category} since {declaration.since}; resident in {residence[0]}"
            ),
            reason_zh=(
                f"{span} 连续{run_length}个月经{enterprise}取得不低于最低工资的收入；"
                f"{CATEGORY_NAMES[category]} 自{declaration.since}；户籍/居住地 {residence[0]}"
            ),
            params=(
                (param.name, str(param.value), param.since),
                ("stable_income_months", str(run_length), rs.params.at("stable_income_months", day).since),
                (wage.name, str(wage.value), wage.since),
            ),
            fact_ids=(*(months[m][1] for m in run), declaration.fact_id, residence[1]),
        )
        return start, Line(int(param.value), basis)
    return None


def employment_service(wf: WorkerFile, rs: RuleSet) -> Lines:
    best: tuple[int, str, Line] | None = None
    for enterprise, months in wf.reports.items():
        found = _qualifying_run(wf, rs, enterprise, months)
        if found is not None and (best is None or (found[0], enterprise) < best[:2]):
            best = (found[0], enterprise, found[1])
    if best is None:
        return {}
    return {money_key(PROGRAM, best[1], wf.worker, None, None): best[2]}
