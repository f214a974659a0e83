"""What intake has accepted, as far as section 5's reference and duplicate checks need it."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import facts as f
from contracts.identifiers import mask


@dataclass(slots=True)
class Registry:
    enterprises: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)
    reports: set[tuple[str, str, str]] = field(default_factory=set)  # (enterprise, worker, month)
    contributions: set[tuple[str, str]] = field(default_factory=set)  # (worker, month)
    trainings: set[tuple[str, str, str]] = field(default_factory=set)  # (enterprise, worker, course)
    categories: set[tuple[str, str]] = field(default_factory=set)  # (worker, category)
    job_standards: set[tuple[str, str]] = field(default_factory=set)
    competitions: set[str] = field(default_factory=set)
    awards: set[tuple[str, str]] = field(default_factory=set)  # (competition, worker)
    parks: set[str] = field(default_factory=set)
    talent_awards: set[str] = field(default_factory=set)

    def problem(self, fact: f.AnyFact) -> str | None:
        """Why `fact` cannot be accepted now (RULES.md section 5), or None."""
        if (month := getattr(fact, "month", None)) is not None and month > fact.at_month:
            return f"month {month} is after the month of its own submission time at={fact.at}"
        if (enterprise := getattr(fact, "enterprise", None)) is not None and not isinstance(
            fact, f.EnterpriseRegistered
        ) and enterprise not in self.enterprises:
            return f"enterprise {enterprise} is not registered"
        if (worker := getattr(fact, "worker", None)) is not None and not isinstance(
            fact, f.WorkerRegistered
        ) and worker not in self.workers:
            return f"worker {mask(worker)} is not registered"
        return self._fact_problem(fact)

    def _fact_problem(self, fact: f.AnyFact) -> str | None:  # noqa: PLR0911 - one case per fact type
        match fact:
            case f.EnterpriseRegistered() if fact.enterprise in self.enterprises:
                return f"enterprise {fact.enterprise} is already registered"
            case f.WorkerRegistered() if fact.worker in self.workers:
                return f"worker {mask(fact.worker)} is already registered"
            case f.CategoryDeclared() if (fact.worker, fact.category) in self.categories:
                return f"category {fact.category} is already declared for this worker; revoke it first"
            case f.CategoryRevoked() if (fact.worker, fact.category) not in self.categories:
                return f"category {fact.category} is not declared for this worker"
            case f.MonthlyReport() if (fact.enterprise, fact.worker, fact.month) in self.reports:
                return f"a report for {fact.month} already exists: send report_corrected to change it"
            case f.ReportCorrected() | f.ReportRetracted() if (
                (fact.enterprise, fact.worker, fact.month) not in self.reports
            ):
                return f"there is no report by {fact.enterprise} for this worker and month {fact.month}"
            case f.ContributionPaid() if (fact.worker, fact.month) in self.contributions:
                return f"a contribution for {fact.month} is already recorded for this worker"
            case f.ContributionRefunded() if (fact.worker, fact.month) not in self.contributions:
                return f"there is no contribution for {fact.month} to refund"
            case f.TrainingCompleted() if (fact.enterprise, fact.worker, fact.course) in self.trainings:
                return f"a training record for course {fact.course} by {fact.enterprise} already exists"
            case f.TrainingRetracted() if (fact.enterprise, fact.worker, fact.course) not in self.trainings:
                return f"there is no training record for course {fact.course} by {fact.enterprise}"
            case f.JobStandardApproved() if fact.approved_on < f.POLICY_EFFECTIVE_DATE:
                return f"approved_on {fact.approved_on} is before the measures took effect ({f.POLICY_EFFECTIVE_DATE})"
            case f.JobStandardApproved() if (fact.enterprise, fact.job_type) in self.job_standards:
                return f"job standard {fact.job_type} of {fact.enterprise} is already approved"
            case f.CompetitionListed() if fact.listed_on < f.POLICY_EFFECTIVE_DATE:
                return f"listed_on {fact.listed_on} is before the measures took effect ({f.POLICY_EFFECTIVE_DATE})"
            case f.CompetitionListed() if fact.competition in self.competitions:
                return f"competition {fact.competition} is already listed"
            case f.CompetitionAward() if fact.competition not in self.competitions:
                return f"competition {fact.competition} is not listed"
            case f.CompetitionAward() if (fact.competition, fact.worker) in self.awards:
                return f"competition {fact.competition} was already awarded to this worker"
            case f.ParkRecognized() if fact.recognized_on < f.POLICY_EFFECTIVE_DATE:
                return (f"recognized_on {fact.recognized_on} is before the measures took effect "
                        f"({f.POLICY_EFFECTIVE_DATE})")
            case f.ParkRecognized() if fact.park in self.parks:
                return f"park {fact.park} is already recognised"
            case f.TalentAward() if fact.award in self.talent_awards:
                return f"talent award {fact.award} is already recorded"
        return None

    def apply(self, fact: f.AnyFact) -> None:  # noqa: PLR0912 - one case per fact type
        """Record an accepted fact."""
        match fact:
            case f.EnterpriseRegistered():
                self.enterprises.add(fact.enterprise)
            case f.WorkerRegistered():
                self.workers.add(fact.worker)
            case f.CategoryDeclared():
                self.categories.add((fact.worker, fact.category))
            case f.CategoryRevoked():
                self.categories.discard((fact.worker, fact.category))
            case f.MonthlyReport():
                self.reports.add((fact.enterprise, fact.worker, fact.month))
            case f.ReportRetracted():
                self.reports.discard((fact.enterprise, fact.worker, fact.month))
            case f.ContributionPaid():
                self.contributions.add((fact.worker, fact.month))
            case f.ContributionRefunded():
                self.contributions.discard((fact.worker, fact.month))
            case f.TrainingCompleted():
                self.trainings.add((fact.enterprise, fact.worker, fact.course))
            case f.TrainingRetracted():
                self.trainings.discard((fact.enterprise, fact.worker, fact.course))
            case f.JobStandardApproved():
                self.job_standards.add((fact.enterprise, fact.job_type))
            case f.CompetitionListed():
                self.competitions.add(fact.competition)
            case f.CompetitionAward():
                self.awards.add((fact.competition, fact.worker))
            case f.ParkRecognized():
                self.parks.add(fact.park)
            case f.TalentAward():
                self.talent_awards.add(fact.award)
