"""An independent, deliberately naive reading of RULES.md sections 1, 2 and 4: E(facts) computed from
the accepted facts (as submitted dicts), sharing no code with `services/`.

The property tests hold the engine's ledger to it. It favours being obviously the text over being
fast: every month is re-read from the fact list, every parameter is looked up by its date.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

POLICY_START = "2021-06"
POLICY_DATE = "2021-05-31"
WUXI = {"320205", "320206", "320211", "320213", "320214", "320281", "320282"}
MIN_WAGE = (("2018-08-01", 202000), ("2021-08-01", 228000), ("2024-01-01", 249000))

Key = tuple[Any, ...]  # (kind, program, beneficiary, subject, ref, month); kind "money" for money lines


def plus(month: str, k: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    total = y * 12 + (m - 1) + k
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def day1(month: str) -> str:
    return month + "-01"


def min_wage(month: str) -> int:
    """Section 2: looked up by the date it applies to, m-01."""
    value = 0
    for since, amount in MIN_WAGE:
        if since <= day1(month):
            value = amount
    return value


def round_half_up(x: Fraction) -> int:
    whole = x.numerator // x.denominator
    return whole + (1 if x - whole >= Fraction(1, 2) else 0)


class World:
    """The current fact set of one book: withdrawn facts removed, corrections applied."""

    def __init__(self, facts: list[dict[str, Any]]) -> None:
        self.residences: dict[str, list[tuple[str, int, str]]] = {}
        self.categories: dict[tuple[str, str], dict[str, Any]] = {}
        self.reports: dict[tuple[str, str, str], int] = {}  # (E, W, month) -> income
        self.contributions: dict[tuple[str, str], int] = {}  # (W, month) -> amount
        self.trainings: list[dict[str, Any]] = []  # in acceptance order
        self.awards: list[tuple[str, str]] = []  # (competition, worker)
        self.one_time: list[dict[str, Any]] = []
        self.workers: list[str] = []
        for n, fact in enumerate(facts):
            t = fact["type"]
            if t == "worker_registered":
                self.workers.append(fact["worker"])
                self.residences.setdefault(fact["worker"], []).append(
                    (fact["residence_since"], n, fact["residence"])
                )
            elif t == "residence_changed":
                self.residences.setdefault(fact["worker"], []).append((fact["since"], n, fact["residence"]))
            elif t == "category_declared":
                self.categories[(fact["worker"], fact["category"])] = fact
            elif t == "category_revoked":
                del self.categories[(fact["worker"], fact["category"])]
            elif t in ("monthly_report", "report_corrected"):
                self.reports[(fact["enterprise"], fact["worker"], fact["month"])] = fact["income_fen"]
            elif t == "report_retracted":
                del self.reports[(fact["enterprise"], fact["worker"], fact["month"])]
            elif t == "contribution_paid":
                self.contributions[(fact["worker"], fact["month"])] = fact["amount_fen"]
            elif t == "contribution_refunded":
                del self.contributions[(fact["worker"], fact["month"])]
            elif t == "training_completed":
                self.trainings.append(fact)
            elif t == "training_retracted":
                self.trainings = [
                    r
                    for r in self.trainings
                    if (r["enterprise"], r["worker"], r["course"])
                    != (fact["enterprise"], fact["worker"], fact["course"])
                ]
            elif t == "competition_award":
                self.awards.append((fact["competition"], fact["worker"]))
            elif t in ("job_standard_approved", "competition_listed", "park_recognized", "talent_award"):
                self.one_time.append(fact)

    # Section 1 definitions.
    def resident(self, worker: str, day: str) -> bool:
        candidates = [r for r in self.residences.get(worker, []) if r[0] <= day]
        if not candidates:
            return False
        return max(candidates)[2] in WUXI  # latest since; the later accepted wins a tie

    def category(self, worker: str, category: str, day: str) -> dict[str, Any] | None:
        declared = self.categories.get((worker, category))
        if declared is None or declared["since"] > day:
            return None
        until = declared.get("until")
        return declared if until is None or day <= until else None

    def income(self, worker: str, month: str, enterprise: str | None = None) -> int:
        return sum(
            v
            for (e, w, m), v in self.reports.items()
            if w == worker and m == month and (enterprise is None or e == enterprise)
        )

    def stable(self, worker: str, month: str, enterprise: str | None = None) -> bool:
        return self.income(worker, month, enterprise) >= min_wage(month)

    def months_of(self, worker: str) -> list[str]:
        months = {m for (_, w, m) in self.reports if w == worker} | {
            m for (w, m) in self.contributions if w == worker
        }
        return sorted(months)


def employment_service(world: World, worker: str) -> dict[Key, int]:
    best: tuple[str, str, int] | None = None
    for enterprise in sorted({e for (e, w, _) in world.reports if w == worker}):
        for s in sorted({m for (e, w, m) in world.reports if e == enterprise and w == worker}):
            if s < POLICY_START:
                continue
            if not all(world.stable(worker, plus(s, k), enterprise) for k in range(6)):
                continue
            if world.category(worker, "employment_difficulty", day1(s)):
                amount = 100000
            elif world.category(worker, "registered_unemployed", day1(s)):
                amount = 80000
            else:
                continue
            if not world.resident(worker, day1(plus(s, 5))):
                continue
            if best is None or (s, enterprise) < (best[0], best[1]):
                best = (s, enterprise, amount)
            break  # the earliest qualifying run of this enterprise
    if best is None:
        return {}
    return {("money", "employment_service", best[1], worker, None, None): best[2]}


def social_insurance(world: World, worker: str) -> dict[Key, int]:
    def covered(m: str) -> bool:
        return (
            m >= POLICY_START
            and (worker, m) in world.contributions
            and world.income(worker, m) > 0
            and world.resident(worker, day1(m))
        )

    start: tuple[str, str] | None = None
    for m in world.months_of(worker):
        if not covered(m):
            continue
        if world.category(worker, "employment_difficulty", day1(m)):
            start = (m, "employment_difficulty")
            break
        graduate = world.category(worker, "graduate_unemployed", day1(m))
        if graduate and m <= plus(graduate["graduated"][:7], 24):
            start = (m, "graduate_unemployed")
            break
    if start is None:
        return {}
    p0, track = start
    out: dict[Key, int] = {}
    last = plus(p0, 35 if track == "employment_difficulty" else 23)
    if track == "employment_difficulty":
        x = plus(p0, 36)
        stably_employed = all(world.stable(worker, plus(p0, k)) for k in range(30, 36))
        activity = any(m >= x for m in world.months_of(worker))
        if not stably_employed and world.category(worker, "employment_difficulty", day1(x)) and activity:
            out[("extension", "social_insurance", worker, worker, None, x)] = 0
            last = plus(p0, 47)
    m = p0
    while m <= last:
        if covered(m) and world.category(worker, track, day1(m)):
            out[("money", "social_insurance", worker, worker, None, m)] = round_half_up(
                world.contributions[(worker, m)] * Fraction(2, 3)
            )
        m = plus(m, 1)
    return out


def training(world: World, worker: str) -> dict[Key, int]:
    out: dict[Key, int] = {}
    cap_left = 50000
    for record in world.trainings:
        if record["worker"] != worker or record["completed_on"] < POLICY_DATE:
            continue
        amount = min(record["hours"] * 1850, cap_left)
        cap_left -= amount
        if amount > 0:
            out[("money", "training", record["enterprise"], worker, record["course"], None)] = amount
    return out


def new_employment(world: World, worker: str) -> dict[Key, int]:
    out: dict[Key, int] = {}
    years: set[str] = set()
    for m in world.months_of(worker):
        if m < POLICY_START or m[:4] in years:
            continue
        if world.stable(worker, m) and (worker, m) in world.contributions:
            years.add(m[:4])
            out[("statistic", "new_employment", None, worker, None, m)] = 0
    return out


def one_time(fact: dict[str, Any]) -> dict[Key, int]:
    t = fact["type"]
    if t == "job_standard_approved":
        return {("money", "job_standard", fact["enterprise"], None, fact["job_type"], None): 1000000}
    if t == "competition_listed":
        return {("money", "skill_competition", fact["enterprise"], None, fact["competition"], None): 2000000}
    if t == "park_recognized":
        amount = min(fact["approved_amount_fen"], 500000000)
        if fact["level"] == "district" or fact["established_on"] < POLICY_DATE or amount <= 0:
            return {}
        return {("money", "park_construction", fact["park"], None, None, None): amount}
    if t == "talent_award":
        amount = min(fact["approved_amount_fen"], 100000000)
        return (
            {("money", "talent", fact["enterprise"], None, fact["award"], None): amount} if amount > 0 else {}
        )
    return {}


def entitlement(facts: list[dict[str, Any]]) -> dict[Key, int]:
    """E(facts): money lines (amount > 0) and flags (0), keyed as RULES.md section 3 keys them."""
    world = World(facts)
    out: dict[Key, int] = {}
    for worker in world.workers:
        for programme in (employment_service, social_insurance, training, new_employment):
            out.update(programme(world, worker))
    for competition, worker in world.awards:
        out[("recognition", "skill_competition", worker, worker, competition, None)] = 0
    for fact in world.one_time:
        out.update(one_time(fact))
    return out
