"""4.1 employment_service — 就业创业服务补助 (Art. 2): once per worker, to the platform whose
qualifying run of six consecutive stable months starts first."""

from __future__ import annotations

from dataclasses import dataclass

from services.eligibility.domain.entitlement import Basis, Line, Lines, money_key
from services.eligibility.domain.months import first_day, month_name
from services.eligibility.domain.parameters import ParameterValue
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import Declaration, WorkerFile

PROGRAM = "employment_service"
CATEGORY_NAMES = {"employment_difficulty": "就业困难人员", "registered_unemployed": "失业人员"}


@dataclass(frozen=True, slots=True)
class _RunBasis:
    """What a qualifying run's line rests on, taken when the line is computed (the file changes later)."""

    enterprise: str
    start: int  # the run's first month
    run_length: int
    category: str
    declaration: Declaration
    residence: tuple[str, str]  # (division, fact id) on the first day of the run's last month
    amount: ParameterValue
    run_length_param: ParameterValue
    min_wage: ParameterValue
    report_ids: tuple[str, ...]


def _basis(run: _RunBasis) -> Basis:
    span = f"{month_name(run.start)}..{month_name(run.start + run.run_length - 1)}"
    since, division = run.declaration.since, run.residence[0]
    return Basis(
        article="Art. 2",
        reason_en=(
            f"{run.run_length} consecutive months {span} with income through {run.enterprise} at or above "
            f"the minimum wage; {run.category} since {since}; resident in {division}"
        ),
        reason_zh=(
            f"{span} 连续{run.run_length}个月经{run.enterprise}取得不低于最低工资的收入；"
            f"{CATEGORY_NAMES[run.category]} 自{since}；户籍/居住地 {division}"
        ),
        params=(
            (run.amount.name, str(run.amount.value), run.amount.since),
            ("stable_income_months", str(run.run_length), run.run_length_param.since),
            (run.min_wage.name, str(run.min_wage.value), run.min_wage.since),
        ),
        fact_ids=(*run.report_ids, run.declaration.fact_id, run.residence[1]),
    )


def _run_at(
    file: WorkerFile, rules: RuleSet, enterprise: str, months: dict[int, tuple[int, str]], start: int
) -> Line | None:
    """The line of the run of W through `enterprise` that starts in `start`, when it qualifies, else None."""
    if start < rules.policy_start_month:
        return None
    day = first_day(start)
    category = next(
        (c for c in ("employment_difficulty", "registered_unemployed") if file.category_on(c, day)), None
    )
    if category is None:
        return None
    run_length = rules.value("stable_income_months", day)
    run = range(start, start + run_length)
    min_wage = rules.min_wage
    for month in reversed(run):  # a run being completed lacks its last months: fail fast
        report = months.get(month)
        if report is None or report[0] < min_wage(month):
            return None
    residence = file.residence_on(first_day(start + run_length - 1))
    if residence is None or residence[0] not in rules.wuxi_divisions:
        return None
    name = "employment_service_difficulty_fen" if category == "employment_difficulty" else (
        "employment_service_unemployed_fen")
    amount = rules.params.at(name, day)
    return Line.lazy(int(amount.value), _basis, _RunBasis(
        enterprise, start, run_length, category, file.categories[category], residence, amount,
        rules.params.at("stable_income_months", day), rules.params.at("min_wage_monthly_fen", day),
        tuple(months[m][1] for m in run),
    ))


def _qualifying_run(
    file: WorkerFile, rules: RuleSet, enterprise: str, months: dict[int, tuple[int, str]]
) -> tuple[int, Line] | None:
    """The earliest qualifying run of W through `enterprise`: (start month, line), or None."""
    policy_start, min_wage = rules.policy_start_month, rules.min_wage
    stable = sorted(m for m, (income, _) in months.items() if m >= policy_start and income >= min_wage(m))
    for start in stable:
        line = _run_at(file, rules, enterprise, months, start)
        if line is not None:
            return start, line
    return None


def _updated_run(
    file: WorkerFile, rules: RuleSet, enterprise: str, months: dict[int, tuple[int, str]],
    kept: tuple[int, Line] | None, changed: set[int],
) -> tuple[int, Line] | None:
    """The earliest qualifying run through `enterprise`, from the one kept before and the months whose
    reports changed since (categories and residence unchanged). Whether a run qualifies depends on its
    own months only, so only runs containing a changed month can have changed."""
    longest, shortest = _run_lengths(rules)
    affected = sorted({s for month in changed for s in range(month - longest + 1, month + 1)})
    last = max(months) - shortest + 1  # no run can start later: its last month is not reported
    for start in affected:
        if start > last or (kept is not None and start >= kept[0]):
            break
        line = _run_at(file, rules, enterprise, months, start)
        if line is not None:
            return start, line  # an earlier run than the kept one, or the first one
    if kept is None or kept[0] not in affected:
        return kept  # nothing before it qualifies; it is unchanged
    line = _run_at(file, rules, enterprise, months, kept[0])
    if line is not None:
        return kept[0], line
    return _qualifying_run(file, rules, enterprise, months)  # it no longer qualifies: look further on


@dataclass(slots=True)
class _Kept:
    """What employment_service keeps in the worker's file between facts: each enterprise's earliest
    qualifying run. A run through E depends on E's reports of its own months and on W's categories and
    residence, so a report re-evaluates only the runs of its enterprise that contain its month, until a
    category or residence changes (then everything is evaluated again)."""

    rule_set: str
    runs: dict[str, tuple[int, Line] | None]  # enterprise -> (start month, line) of its earliest run
    lines: Lines  # what was returned


def _run_lengths(rules: RuleSet) -> tuple[int, int]:
    """The longest and the shortest run length the rule set ever asks for."""
    found: tuple[int, int] | None = rules.derived.get("employment_service.run_lengths")
    if found is None:
        lengths = [int(v.value) for v in rules.params.history("stable_income_months")]
        found = rules.derived["employment_service.run_lengths"] = (max(lengths), min(lengths))
    return found


def employment_service(file: WorkerFile, rules: RuleSet) -> Lines:
    changes = file.take_changes(PROGRAM)
    if "employment_difficulty" not in file.categories and "registered_unemployed" not in file.categories:
        file.cache.pop(PROGRAM, None)
        return {}  # no run qualifies without one of the two categories
    kept = file.cache.get(PROGRAM)
    if kept is not None and changes is not None and kept.rule_set == rules.id:
        runs = dict(kept.runs)
        for enterprise in {e for e, _ in changes if e is not None}:
            months = file.reports.get(enterprise)
            if months is None:
                runs.pop(enterprise, None)
                continue
            changed = {m for e, m in changes if e == enterprise}
            runs[enterprise] = _updated_run(file, rules, enterprise, months, runs.get(enterprise), changed)
    else:
        runs = {e: _qualifying_run(file, rules, e, months) for e, months in file.reports.items()}
    best: tuple[int, str, Line] | None = None
    for enterprise, found in runs.items():
        if found is not None and (best is None or (found[0], enterprise) < best[:2]):
            best = (found[0], enterprise, found[1])
    if best is None:
        lines: Lines = {}
    else:
        key = money_key(PROGRAM, best[1], file.worker, None, None)
        lines = kept.lines if kept is not None and kept.lines.get(key) is best[2] else {key: best[2]}
    file.cache[PROGRAM] = _Kept(rules.id, runs, lines)
    return lines
