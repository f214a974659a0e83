"""4.2 social_insurance — 灵活就业社会保险补贴 (Art. 2, 财社〔2017〕164号): 2/3 of the worker's own
contribution for 36 months (就业困难人员, extended by 12 when not stably employed at the end) or 24
months (graduates within two years of leaving school)."""

from __future__ import annotations

from services.eligibility.domain.entitlement import Basis, Line, Lines, flag_key, money_key
from services.eligibility.domain.months import first_day, month_index, month_name
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

PROGRAM = "social_insurance"
TRACK_NAMES = {"employment_difficulty": "就业困难人员", "graduate_unemployed": "离校2年内未就业高校毕业生"}


def round_half_up(numerator: int, denominator: int) -> int:
    """四舍五入 of a non-negative fraction, in integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def _covered(wf: WorkerFile, rs: RuleSet, month: int) -> bool:
    if month < rs.policy_start_month or month not in wf.contributions or wf.total_income(month) <= 0:
        return False
    residence = wf.residence_on(first_day(month))
    return residence is not None and residence[0] in rs.wuxi_divisions


def _start(wf: WorkerFile, rs: RuleSet) -> tuple[int, str] | None:
    """P0 and its track: the earliest covered month with a valid category (and window, for graduates)."""
    for month in sorted(wf.contributions):
        if not _covered(wf, rs, month):
            continue
        day = first_day(month)
        if wf.category_on("employment_difficulty", day):
            return month, "employment_difficulty"
        graduate = wf.category_on("graduate_unemployed", day)
        if graduate is not None and graduate.graduated is not None:
            window = rs.value("graduate_window_months", day)
            if month <= month_index(graduate.graduated) + window:
                return month, "graduate_unemployed"
    return None


def _stably_employed(wf: WorkerFile, rs: RuleSet, months: range) -> bool:
    return all(wf.total_income(m) >= rs.min_wage(m) for m in months)


def social_insurance(wf: WorkerFile, rs: RuleSet) -> Lines:
    found = _start(wf, rs)
    if found is None:
        return {}
    p0, track = found
    day0 = first_day(p0)
    length_name = f"social_insurance_months_{'difficulty' if track == 'employment_difficulty' else 'graduate'}"
    length = rs.value(length_name, day0)
    lines: Lines = {}
    end = p0 + length - 1
    extension_note = ""
    if track == "employment_difficulty":
        x = p0 + length
        extra = rs.value("social_insurance_extension_months", day0)
        latest = wf.latest_activity_month()
        if (
            not _stably_employed(wf, rs, range(x - 6, x))
            and wf.category_on("employment_difficulty", first_day(x))
            and latest is not None
            and latest >= x
        ):
            declaration = wf.categories["employment_difficulty"]
            lines[flag_key("extension", PROGRAM, wf.worker, wf.worker, None, month_name(x))] = Line(0, Basis(
                article="Art. 2",
                reason_en=(
                    f"period {month_name(p0)}..{month_name(x - 1)} ended without stable employment in "
                    f"{month_name(x - 6)}..{month_name(x - 1)}; still 就业困难人员 on {first_day(x)}: "
                    f"extended by {extra} months"
                ),
                reason_zh=f"享受期满仍未稳定就业，政策享受期限延长{extra}个月至{month_name(x + extra - 1)}",
                params=((length_name, str(length), "2021-05-31"), ("social_insurance_extension_months", str(extra),
                                                                     "2021-05-31")),
                fact_ids=(declaration.fact_id,),
            ))
            end = x + extra - 1
            extension_note = " (extended)"
    for month in range(p0, end + 1):
        if month not in wf.contributions or not _covered(wf, rs, month):
            continue
        day = first_day(month)
        declaration = wf.category_on(track, day)
        if declaration is None:
            continue
        contribution, contribution_id = wf.contributions[month]
        rate = rs.params.at("social_insurance_rate", day)
        amount = round_half_up(contribution * rate.value.numerator, rate.value.denominator)
        residence = wf.residence_on(day)
        lines[money_key(PROGRAM, wf.worker, wf.worker, None, month_name(month))] = Line(amount, Basis(
            article="Art. 2; 财社〔2017〕164号",
            reason_en=(
                f"{rate.value} of contribution {contribution} fen for {month_name(month)}, rounded half up; "
                f"{track} since {declaration.since}; month {month - p0 + 1} of period from {month_name(p0)}"
                f"{extension_note}"
            ),
            reason_zh=(
                f"{month_name(month)} 个人缴费{contribution}分的{rate.value}（四舍五入）；"
                f"{TRACK_NAMES[track]} 自{declaration.since}；享受期第{month - p0 + 1}个月"
            ),
            params=((rate.name, str(rate.value), rate.since), (length_name, str(length), "2021-05-31")),
            fact_ids=(contribution_id, declaration.fact_id, *wf.report_ids(month),
                      *([residence[1]] if residence else [])),
        ))
    return lines
