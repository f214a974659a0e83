"""Everything the rules know about one worker: the current (not retracted) facts that concern them.

Facts change this file through `apply`; a retraction, refund or revocation removes what it withdraws,
so the file is always the current fact set of RULES.md section 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import facts as f
from services.eligibility.domain.months import month_index


@dataclass(frozen=True, slots=True)
class Declaration:
    since: str
    until: str | None
    graduated: str | None
    fact_id: str

    def valid_on(self, day: str) -> bool:
        return self.since <= day and (self.until is None or day <= self.until)


@dataclass(frozen=True, slots=True)
class Training:
    enterprise: str
    course: str
    hours: int
    completed_on: str
    fact_id: str


@dataclass(slots=True)
class WorkerFile:
    worker: str
    # (since, acceptance order, division code, fact id)
    residences: list[tuple[str, int, str, str]] = field(default_factory=list)
    categories: dict[str, Declaration] = field(default_factory=dict)
    # enterprise -> month index -> (income_fen, fact id)
    reports: dict[str, dict[int, tuple[int, str]]] = field(default_factory=dict)
    contributions: dict[int, tuple[int, str]] = field(default_factory=dict)
    # acceptance order is dict order: a retracted record leaves it, a new one joins at the end
    trainings: dict[tuple[str, str], Training] = field(default_factory=dict)
    awards: dict[str, str] = field(default_factory=dict)  # competition -> fact id

    def apply(self, fact: f.AnyFact, order: int) -> None:
        """Fold one accepted fact about this worker into the file."""
        match fact:
            case f.WorkerRegistered():
                self.residences.append((fact.residence_since, order, fact.residence, fact.id))
            case f.ResidenceChanged():
                self.residences.append((fact.since, order, fact.residence, fact.id))
            case f.CategoryDeclared():
                self.categories[fact.category] = Declaration(fact.since, fact.until, fact.graduated, fact.id)
            case f.CategoryRevoked():
                self.categories.pop(fact.category, None)
            case f.MonthlyReport() | f.ReportCorrected():
                self.reports.setdefault(fact.enterprise, {})[month_index(fact.month)] = (fact.income_fen, fact.id)
            case f.ReportRetracted():
                months = self.reports.get(fact.enterprise, {})
                months.pop(month_index(fact.month), None)
                if not months:
                    self.reports.pop(fact.enterprise, None)
            case f.ContributionPaid():
                self.contributions[month_index(fact.month)] = (fact.amount_fen, fact.id)
            case f.ContributionRefunded():
                self.contributions.pop(month_index(fact.month), None)
            case f.TrainingCompleted():
                self.trainings[(fact.enterprise, fact.course)] = Training(
                    fact.enterprise, fact.course, fact.hours, fact.completed_on, fact.id
                )
            case f.TrainingRetracted():
                self.trainings.pop((fact.enterprise, fact.course), None)
            case f.CompetitionAward():
                self.awards[fact.competition] = fact.id

    def residence_on(self, day: str) -> tuple[str, str] | None:
        """(division, fact id) of the residence fact with the latest `since` <= day; later wins ties."""
        best: tuple[str, int, str, str] | None = None
        for entry in self.residences:
            if entry[0] <= day and (best is None or entry[:2] > best[:2]):
                best = entry
        return None if best is None else (best[2], best[3])

    def category_on(self, category: str, day: str) -> Declaration | None:
        declaration = self.categories.get(category)
        return declaration if declaration is not None and declaration.valid_on(day) else None

    def total_income(self, month: int) -> int:
        return sum(months[month][0] for months in self.reports.values() if month in months)

    def report_ids(self, month: int) -> list[str]:
        return [months[month][1] for months in self.reports.values() if month in months]

    def latest_activity_month(self) -> int | None:
        """The latest month with a current report or contribution (for the extension's condition)."""
        months = [m for months in self.reports.values() for m in months]
        months.extend(self.contributions)
        return max(months, default=None)
