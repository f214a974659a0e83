"""4.2 social_insurance — 灵活就业社会保险补贴 (Art. 2, 财社〔2017〕164号): 2/3 of the worker's own
contribution for 36 months (就业困难人员, extended by 12 when not stably employed at the end) or 24
months (graduates within two years of leaving school)."""

from __future__ import annotations

from dataclasses import dataclass

from services.eligibility.domain.entitlement import Basis, Line, Lines, flag_key, money_key
from services.eligibility.domain.months import first_day, month_index, month_name
from services.eligibility.domain.parameters import ParameterValue
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import Declaration, WorkerFile

PROGRAM = "social_insurance"
TRACK_NAMES = {"employment_difficulty": "就业困难人员", "graduate_unemployed": "离校2年内未就业高校毕业生"}
LENGTH_PARAMETERS = {
    "employment_difficulty": "social_insurance_months_difficulty",
    "graduate_unemployed": "social_insurance_months_graduate",
}


def round_half_up(numerator: int, denominator: int) -> int:
    """四舍五入 of a non-negative fraction, in integers."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class _Period:
    """The worker's subsidy period (RULES.md 4.2): from P0, the earliest covered month with a valid
    category, for the track's length; extended when a 就业困难人员 is not stably employed at its end.
    Its parameters are those in force on P0-01, kept with their dates for the explanations."""

    first_month: int  # P0
    track: str  # "employment_difficulty" or "graduate_unemployed"
    length: ParameterValue  # the track's length in months
    extension: ParameterValue | None  # the extension's length; None when the period is not extended
    stable_end: ParameterValue | None  # the end months that had to be stable (with the extension only)

    @property
    def length_months(self) -> int:
        return int(self.length.value)

    @property
    def extension_months(self) -> int | None:
        return None if self.extension is None else int(self.extension.value)

    @property
    def extension_month(self) -> int:
        """X: the month after the period's first `length_months`, where the extension is decided."""
        return self.first_month + self.length_months

    @property
    def last_month(self) -> int:
        return self.extension_month + (self.extension_months or 0) - 1


@dataclass(frozen=True, slots=True)
class _MonthBasis:
    """What a month's line rests on, taken when the line is computed (the worker's file changes later)."""

    month: int
    rate: ParameterValue
    contribution_fen: int
    contribution_id: str
    declaration: Declaration
    report_ids: tuple[str, ...]
    residence_id: str


@dataclass(slots=True)
class _Kept:
    """What social_insurance keeps in the worker's file between facts: the lines of the last evaluation
    and what they were computed under. A month's line depends on that month's facts (its contribution,
    reports, the residence and category on m-01) and on the period: while the period is the same and
    neither residence nor category changed, only the months touched since need computing again."""

    rule_set: str
    period: _Period
    flags: Lines  # the extension flag, when granted
    money: Lines  # the monthly lines
    lines: Lines  # flags and money: what was returned


def social_insurance(file: WorkerFile, rules: RuleSet) -> Lines:
    """The worker's social insurance lines (RULES.md 4.2): one per covered month of the period, and the
    extension's flag; only the months the facts since the last evaluation touched are computed again."""
    changes = file.take_changes(PROGRAM)
    period = _period(file, rules)
    if period is None:
        file.cache.pop(PROGRAM, None)
        return {}
    kept = file.cache.get(PROGRAM)
    if kept is not None and changes is not None and kept.rule_set == rules.id and kept.period == period:
        months = {m for _, m in changes if period.first_month <= m <= period.last_month}
        if not months:
            return kept.lines  # nothing this programme reads has changed
        flags, money = kept.flags, dict(kept.money)  # a copy: the previous lines stay as they were
    else:
        months = set(range(period.first_month, period.last_month + 1))
        flags, money = _extension_flag(file, period), {}
    for month in sorted(months):
        key = money_key(PROGRAM, file.worker, file.worker, None, month_name(month))
        line = _line(file, rules, period, month)
        if line is None:
            money.pop(key, None)
        else:
            money[key] = line
    lines = {**flags, **money} if flags else money
    file.cache[PROGRAM] = _Kept(rules.id, period, flags, money, lines)
    return lines


# ---- the period --------------------------------------------------------------------------------------

def _period(file: WorkerFile, rules: RuleSet) -> _Period | None:
    """The worker's subsidy period (RULES.md 4.2), or None when there is none."""
    if "employment_difficulty" not in file.categories and "graduate_unemployed" not in file.categories:
        return None  # no track without one of the two categories
    found = _start(file, rules)
    if found is None:
        return None
    first_month, track = found
    start_day = first_day(first_month)  # the parameters of the period are those in force on P0-01
    length = rules.params.at(LENGTH_PARAMETERS[track], start_day)
    period = _Period(first_month, track, length, None, None)
    if track == "employment_difficulty":
        stable_end = rules.params.at("social_insurance_stable_end_months", start_day)
        if _extended(file, rules, period.extension_month, int(stable_end.value)):
            extension = rules.params.at("social_insurance_extension_months", start_day)
            period = _Period(first_month, track, length, extension, stable_end)
    return period


def _start(file: WorkerFile, rules: RuleSet) -> tuple[int, str] | None:
    """P0 and its track: the earliest covered month with a valid category (and window, for graduates)."""
    for month in sorted(file.contributions):
        if not _covered(file, rules, month):
            continue
        day = first_day(month)
        if file.category_on("employment_difficulty", day):
            return month, "employment_difficulty"
        graduate = file.category_on("graduate_unemployed", day)
        if graduate is not None and graduate.graduated is not None:
            window = rules.value("graduate_window_months", day)
            if month <= month_index(graduate.graduated) + window:
                return month, "graduate_unemployed"
    return None


def _extended(file: WorkerFile, rules: RuleSet, extension_month: int, stable_end: int) -> bool:
    """The extension of a 就业困难人员's period (RULES.md 4.2): the worker has current activity in a month
    at or after X, is still 就业困难人员 on X-01, and was not stably employed in the `stable_end` months
    before X."""
    return bool(
        file.last_month >= extension_month  # bounds the latest current activity, cheaper to compute
        and (latest := file.latest_activity_month()) is not None
        and latest >= extension_month
        and file.category_on("employment_difficulty", first_day(extension_month))
        and not _stably_employed(file, rules, range(extension_month - stable_end, extension_month))
    )


def _stably_employed(file: WorkerFile, rules: RuleSet, months: range) -> bool:
    return all(file.total_income(m) >= rules.min_wage(m) for m in months)


def _extension_flag(file: WorkerFile, period: _Period) -> Lines:
    """The extension's flag (keyed by X), when the period is extended."""
    if period.extension_months is None:
        return {}
    key = flag_key("extension", PROGRAM, file.worker, file.worker, None, month_name(period.extension_month))
    declaration_id = file.categories["employment_difficulty"].fact_id
    return {key: Line.lazy(0, _extension_basis, period, declaration_id)}


def _extension_basis(period: _Period, declaration_id: str) -> Basis:
    x, extra, length = period.extension_month, period.extension, period.length
    assert extra is not None and period.stable_end is not None
    window = int(period.stable_end.value)
    span = f"{month_name(period.first_month)}..{month_name(x - 1)}"
    return Basis(
        article="Art. 2",
        reason_en=(
            f"period {span} ({length.value} months) ended without stable employment in "
            f"{month_name(x - window)}..{month_name(x - 1)}; still 就业困难人员 on {first_day(x)}: "
            f"extended by {extra.value} months to {month_name(period.last_month)}"
        ),
        reason_zh=(
            f"享受期{span}（{length.value}个月）期满前{window}个月"
            f"（{month_name(x - window)}..{month_name(x - 1)}）"
            f"未稳定就业，{first_day(x)}仍为就业困难人员，政策享受期限延长{extra.value}个月至"
            f"{month_name(period.last_month)}"
        ),
        params=tuple((p.name, str(p.value), p.since) for p in (length, extra, period.stable_end)),
        fact_ids=(declaration_id,),
    )


# ---- a month's line ----------------------------------------------------------------------------------

def _residence(file: WorkerFile, rules: RuleSet, month: int) -> tuple[str, str] | None:
    """W's residence on m-01 when m is covered (RULES.md 4.2), else None."""
    if (month < rules.policy_start_month or month not in file.contributions
            or file.total_income(month) <= 0):
        return None
    residence = file.residence_on(first_day(month))
    return residence if residence is not None and residence[0] in rules.wuxi_divisions else None


def _covered(file: WorkerFile, rules: RuleSet, month: int) -> bool:
    return _residence(file, rules, month) is not None


def _line(file: WorkerFile, rules: RuleSet, period: _Period, month: int) -> Line | None:
    """The line for month m of the period (RULES.md 4.2), or None."""
    residence = _residence(file, rules, month)
    if residence is None:
        return None
    day = first_day(month)
    declaration = file.category_on(period.track, day)
    if declaration is None:
        return None
    contribution_fen, contribution_id = file.contributions[month]
    rate = rules.params.at("social_insurance_rate", day)
    amount = round_half_up(contribution_fen * rate.value.numerator, rate.value.denominator)
    basis = _MonthBasis(month, rate, contribution_fen, contribution_id, declaration,
                        tuple(file.report_ids(month)), residence[1])
    return Line.lazy(amount, _line_basis, period, basis)


def _line_basis(period: _Period, basis: _MonthBasis) -> Basis:
    month, first_month, rate = basis.month, period.first_month, basis.rate
    extension_note = "" if period.extension_months is None else " (extended)"
    return Basis(
        article="Art. 2; 财社〔2017〕164号",
        reason_en=(
            f"{rate.value} of contribution {basis.contribution_fen} fen for {month_name(month)}, rounded "
            f"half up; {period.track} since {basis.declaration.since}; month {month - first_month + 1} of "
            f"period from {month_name(first_month)}{extension_note}"
        ),
        reason_zh=(
            f"{month_name(month)} 个人缴费{basis.contribution_fen}分的{rate.value}（四舍五入）；"
            f"{TRACK_NAMES[period.track]} 自{basis.declaration.since}；享受期第{month - first_month + 1}个月"
        ),
        params=((rate.name, str(rate.value), rate.since),
                (period.length.name, str(period.length.value), period.length.since)),
        fact_ids=(basis.contribution_id, basis.declaration.fact_id, *basis.report_ids, basis.residence_id),
    )
