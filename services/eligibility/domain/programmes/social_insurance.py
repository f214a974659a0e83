"""4.2 social_insurance — 灵活就业社会保险补贴 (Art. 2, 财社〔2017〕164号): 2/3 of the worker's own
contribution for 36 months (就业困难人员, extended by 12 when not stably employed at the end) or 24
months (graduates within two years of leaving school)."""

from __future__ import annotations

from dataclasses import dataclass

from services.eligibility.domain.entitlement import Basis, Key, Line, Lines, flag_key, money_key
from services.eligibility.domain.months import first_day, month_index, month_name
from services.eligibility.domain.parameters import ParameterValue
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import Declaration, WorkerFile

PROGRAM = "social_insurance"
TRACK_NAMES = {"employment_difficulty": "就业困难人员", "graduate_unemployed": "离校2年内未就业高校毕业生"}


def round_half_up(numerator: int, denominator: int) -> int:
    """四舍五入 of a non-negative fraction, in integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def _residence(wf: WorkerFile, rs: RuleSet, month: int) -> tuple[str, str] | None:
    """W's residence on m-01 when m is covered (RULES.md 4.2), else None."""
    if month < rs.policy_start_month or month not in wf.contributions or wf.total_income(month) <= 0:
        return None
    residence = wf.residence_on(first_day(month))
    return residence if residence is not None and residence[0] in rs.wuxi_divisions else None


def _covered(wf: WorkerFile, rs: RuleSet, month: int) -> bool:
    return _residence(wf, rs, month) is not None


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


def _extension_basis(
    p0: int, x: int, extra: int, length_name: str, length: int, declaration_id: str
) -> Basis:
    return Basis(
        article="Art. 2",
        reason_en=(
            f"period {month_name(p0)}..{month_name(x - 1)} ended without stable employment in "
            f"{month_name(x - 6)}..{month_name(x - 1)}; still 就业困难人员 on {first_day(x)}: "
            f"extended by {extra} months"
        ),
        reason_zh=f"享受期满仍未稳定就业，政策享受期限延长{extra}个月至{month_name(x + extra - 1)}",
        params=((length_name, str(length), "2021-05-31"), ("social_insurance_extension_months", str(extra),
                                                             "2021-05-31")),
        fact_ids=(declaration_id,),
    )


def _line_basis(
    month: int, p0: int, track: str, rate: ParameterValue, contribution: int, contribution_id: str,
    declaration: Declaration, length_name: str, length: int, extension_note: str, report_ids: tuple[str, ...],
    residence_id: str,
) -> Basis:
    return Basis(
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
        fact_ids=(contribution_id, declaration.fact_id, *report_ids, residence_id),
    )


@dataclass(slots=True)
class _Kept:
    """What social_insurance keeps in the worker's file between facts: the lines of the last evaluation
    and what they were computed under. A month's line depends on that month's facts (its contribution,
    reports, the residence and category on m-01) and on the period: while the period is the same and
    neither residence nor category changed, only the months touched since need computing again."""

    rule_set: str
    period: tuple[int, str, int, int, str]  # P0, track, length, last month, extension note
    flags: Lines  # the extension flag, when granted
    money: Lines  # the monthly lines
    lines: Lines  # flags and money: what was returned


def _line(wf: WorkerFile, rs: RuleSet, month: int, p0: int, track: str, length_name: str, length: int,
          extension_note: str) -> Line | None:
    """The line for month m of the period (RULES.md 4.2), or None."""
    residence = _residence(wf, rs, month)
    if residence is None:
        return None
    day = first_day(month)
    declaration = wf.category_on(track, day)
    if declaration is None:
        return None
    contribution, contribution_id = wf.contributions[month]
    rate = rs.params.at("social_insurance_rate", day)
    amount = round_half_up(contribution * rate.value.numerator, rate.value.denominator)
    return Line.lazy(amount, _line_basis, month, p0, track, rate, contribution, contribution_id, declaration,
                     length_name, length, extension_note, tuple(wf.report_ids(month)), residence[1])


def social_insurance(wf: WorkerFile, rs: RuleSet) -> Lines:
    changes = wf.take_changes(PROGRAM)
    if "employment_difficulty" not in wf.categories and "graduate_unemployed" not in wf.categories:
        wf.cache.pop(PROGRAM, None)
        return {}  # no track without one of the two categories
    found = _start(wf, rs)
    if found is None:
        wf.cache.pop(PROGRAM, None)
        return {}
    p0, track = found
    day0 = first_day(p0)
    short = "difficulty" if track == "employment_difficulty" else "graduate"
    length_name = f"social_insurance_months_{short}"
    length = rs.value(length_name, day0)
    end = p0 + length - 1
    extension_note = ""
    extension: Key | None = None
    extra = 0
    if track == "employment_difficulty":
        x = p0 + length
        extra = rs.value("social_insurance_extension_months", day0)
        if (
            wf.last_month >= x  # a bound of the latest current activity, cheaper than computing it
            and (latest := wf.latest_activity_month()) is not None
            and latest >= x
            and wf.category_on("employment_difficulty", first_day(x))
            and not _stably_employed(wf, rs, range(x - 6, x))
        ):
            extension = flag_key("extension", PROGRAM, wf.worker, wf.worker, None, month_name(x))
            end = x + extra - 1
            extension_note = " (extended)"
    period = (p0, track, length, end, extension_note)
    kept = wf.cache.get(PROGRAM)
    if kept is not None and changes is not None and kept.rule_set == rs.id and kept.period == period:
        months = {m for _, m in changes if p0 <= m <= end}
        if not months:
            return kept.lines  # nothing this programme reads has changed
        flags, money = kept.flags, dict(kept.money)  # a copy: the previous lines stay as they were
    else:
        months = set(range(p0, end + 1))
        flags, money = {}, {}
        if extension is not None:
            flags = {extension: Line.lazy(0, _extension_basis, p0, p0 + length, extra, length_name, length,
                                          wf.categories["employment_difficulty"].fact_id)}
    for month in sorted(months):
        key = money_key(PROGRAM, wf.worker, wf.worker, None, month_name(month))
        line = _line(wf, rs, month, p0, track, length_name, length, extension_note)
        if line is None:
            money.pop(key, None)
        else:
            money[key] = line
    lines = {**flags, **money} if flags else money
    wf.cache[PROGRAM] = _Kept(rs.id, period, flags, money, lines)
    return lines
