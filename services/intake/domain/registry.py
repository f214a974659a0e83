"""What intake has accepted, as far as section 5's reference and duplicate checks need it.

Its size grows with the population (enterprises, workers, the platforms each worker works for), not
with the number of facts: the keys that recur every month (reports, contributions) are held as one
bitmask of months per worker or (enterprise, worker) pair (`MonthKeys`, issue 15.1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from contracts import facts as f
from contracts.identifiers import mask

_FIRST_YEAR, _YEARS = 2000, 100  # months of these years are bits of a mask; any other goes to a plain set


class MonthKeys(AbstractSet[tuple[str, ...]]):
    """A set of keys ending in a month "YYYY-MM", e.g. (enterprise, worker, month): the months of each
    key prefix are the bits of one integer, so twelve months of reports cost one entry, not twelve.
    Compares equal to the plain set of the same keys."""

    __slots__ = ("_masks", "_other")

    def __init__(self, keys: Iterable[tuple[str, ...]] = ()) -> None:
        self._masks: dict[tuple[str, ...], int] = {}
        self._other: set[tuple[str, ...]] = set()  # months outside the years of the masks
        for key in keys:
            self.add(key)

    @staticmethod
    def _bit(month: str) -> int | None:
        bit = (int(month[:4]) - _FIRST_YEAR) * 12 + int(month[5:7]) - 1
        return bit if 0 <= bit < _YEARS * 12 else None

    def __contains__(self, key: object) -> bool:
        assert isinstance(key, tuple)
        bit = self._bit(key[-1])
        if bit is None:
            return key in self._other
        return bool(self._masks.get(key[:-1], 0) >> bit & 1)

    def add(self, key: tuple[str, ...]) -> None:
        bit = self._bit(key[-1])
        if bit is None:
            self._other.add(key)
        else:
            self._masks[key[:-1]] = self._masks.get(key[:-1], 0) | 1 << bit

    def discard(self, key: tuple[str, ...]) -> None:
        bit = self._bit(key[-1])
        if bit is None:
            self._other.discard(key)
        elif (months := self._masks.get(key[:-1], 0) & ~(1 << bit)) != 0:
            self._masks[key[:-1]] = months
        else:
            self._masks.pop(key[:-1], None)

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        for prefix, months in self._masks.items():
            for bit in range(months.bit_length()):
                if months >> bit & 1:
                    yield (*prefix, f"{_FIRST_YEAR + bit // 12:04d}-{bit % 12 + 1:02d}")
        yield from self._other

    def __len__(self) -> int:
        return sum(months.bit_count() for months in self._masks.values()) + len(self._other)


@dataclass(slots=True)
class Registry:
    enterprises: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)
    reports: MonthKeys = field(default_factory=MonthKeys)  # (enterprise, worker, month)
    contributions: MonthKeys = field(default_factory=MonthKeys)  # (worker, month)
    trainings: set[tuple[str, str, str]] = field(default_factory=set)  # (enterprise, worker, course)
    categories: set[tuple[str, str]] = field(default_factory=set)  # (worker, category)
    job_standards: set[tuple[str, str]] = field(default_factory=set)
    competitions: set[str] = field(default_factory=set)
    awards: set[tuple[str, str]] = field(default_factory=set)  # (competition, worker)
    parks: set[str] = field(default_factory=set)
    talent_awards: set[str] = field(default_factory=set)

    def problem(self, fact: f.AnyFact) -> str | None:
        """Why `fact` cannot be accepted now (RULES.md section 5), or None."""
        fields = vars(fact)  # a model's fields; getattr of a missing one goes through pydantic's slow path
        if (month := fields.get("month")) is not None and month > fact.at_month:
            return f"month {month} is after the month of its own submission time at={fact.at}"
        if (enterprise := fields.get("enterprise")) is not None and not isinstance(
            fact, f.EnterpriseRegistered
        ) and enterprise not in self.enterprises:
            return f"enterprise {enterprise} is not registered"
        if (worker := fields.get("worker")) is not None and not isinstance(
            fact, f.WorkerRegistered
        ) and worker not in self.workers:
            return f"worker {mask(worker)} is not registered"
        return self._fact_problem(fact)

    def _fact_problem(self, fact: f.AnyFact) -> str | None:
        check = _CHECKS.get(type(fact))
        return None if check is None else check(self, fact)

    def apply(self, fact: f.AnyFact) -> None:
        """Record an accepted fact."""
        record = _RECORDS.get(type(fact))
        if record is not None:
            record(self, fact)


# One check per fact type (RULES.md section 5: duplicates, references, dates), looked up by type.
def _enterprise_registered(r: Registry, fact: f.EnterpriseRegistered) -> str | None:
    return f"enterprise {fact.enterprise} is already registered" if fact.enterprise in r.enterprises else None


def _worker_registered(r: Registry, fact: f.WorkerRegistered) -> str | None:
    return f"worker {mask(fact.worker)} is already registered" if fact.worker in r.workers else None


def _category_declared(r: Registry, fact: f.CategoryDeclared) -> str | None:
    if (fact.worker, fact.category) in r.categories:
        return f"category {fact.category} is already declared for this worker; revoke it first"
    return None


def _category_revoked(r: Registry, fact: f.CategoryRevoked) -> str | None:
    if (fact.worker, fact.category) not in r.categories:
        return f"category {fact.category} is not declared for this worker"
    return None


def _monthly_report(r: Registry, fact: f.MonthlyReport) -> str | None:
    if (fact.enterprise, fact.worker, fact.month) in r.reports:
        return f"a report for {fact.month} already exists: send report_corrected to change it"
    return None


def _report_changed(r: Registry, fact: f.ReportCorrected | f.ReportRetracted) -> str | None:
    if (fact.enterprise, fact.worker, fact.month) not in r.reports:
        return f"there is no report by {fact.enterprise} for this worker and month {fact.month}"
    return None


def _contribution_paid(r: Registry, fact: f.ContributionPaid) -> str | None:
    if (fact.worker, fact.month) in r.contributions:
        return f"a contribution for {fact.month} is already recorded for this worker"
    return None


def _contribution_refunded(r: Registry, fact: f.ContributionRefunded) -> str | None:
    if (fact.worker, fact.month) not in r.contributions:
        return f"there is no contribution for {fact.month} to refund"
    return None


def _training_completed(r: Registry, fact: f.TrainingCompleted) -> str | None:
    if (fact.enterprise, fact.worker, fact.course) in r.trainings:
        return f"a training record for course {fact.course} by {fact.enterprise} already exists"
    return None


def _training_retracted(r: Registry, fact: f.TrainingRetracted) -> str | None:
    if (fact.enterprise, fact.worker, fact.course) not in r.trainings:
        return f"there is no training record for course {fact.course} by {fact.enterprise}"
    return None


def _job_standard_approved(r: Registry, fact: f.JobStandardApproved) -> str | None:
    if fact.approved_on < f.POLICY_EFFECTIVE_DATE:
        return (f"approved_on {fact.approved_on} is before the measures took effect "
                f"({f.POLICY_EFFECTIVE_DATE})")
    if (fact.enterprise, fact.job_type) in r.job_standards:
        return f"job standard {fact.job_type} of {fact.enterprise} is already approved"
    return None


def _competition_listed(r: Registry, fact: f.CompetitionListed) -> str | None:
    if fact.listed_on < f.POLICY_EFFECTIVE_DATE:
        return (f"listed_on {fact.listed_on} is before the measures took effect "
                f"({f.POLICY_EFFECTIVE_DATE})")
    if fact.competition in r.competitions:
        return f"competition {fact.competition} is already listed"
    return None


def _competition_award(r: Registry, fact: f.CompetitionAward) -> str | None:
    if fact.competition not in r.competitions:
        return f"competition {fact.competition} is not listed"
    if (fact.competition, fact.worker) in r.awards:
        return f"competition {fact.competition} was already awarded to this worker"
    return None


def _park_recognized(r: Registry, fact: f.ParkRecognized) -> str | None:
    if fact.recognized_on < f.POLICY_EFFECTIVE_DATE:
        return (f"recognized_on {fact.recognized_on} is before the measures took effect "
                f"({f.POLICY_EFFECTIVE_DATE})")
    if fact.park in r.parks:
        return f"park {fact.park} is already recognised"
    return None


def _talent_award(r: Registry, fact: f.TalentAward) -> str | None:
    return f"talent award {fact.award} is already recorded" if fact.award in r.talent_awards else None


_CHECKS: dict[type, Callable[[Registry, Any], str | None]] = {
    f.EnterpriseRegistered: _enterprise_registered, f.WorkerRegistered: _worker_registered,
    f.CategoryDeclared: _category_declared, f.CategoryRevoked: _category_revoked,
    f.MonthlyReport: _monthly_report, f.ReportCorrected: _report_changed, f.ReportRetracted: _report_changed,
    f.ContributionPaid: _contribution_paid, f.ContributionRefunded: _contribution_refunded,
    f.TrainingCompleted: _training_completed, f.TrainingRetracted: _training_retracted,
    f.JobStandardApproved: _job_standard_approved, f.CompetitionListed: _competition_listed,
    f.CompetitionAward: _competition_award, f.ParkRecognized: _park_recognized, f.TalentAward: _talent_award,
}

# How each accepted fact type changes the registry (types not listed, e.g. corrections, change nothing).
_RECORDS: dict[type, Callable[[Registry, Any], None]] = {
    f.EnterpriseRegistered: lambda r, x: r.enterprises.add(x.enterprise),
    f.WorkerRegistered: lambda r, x: r.workers.add(x.worker),
    f.CategoryDeclared: lambda r, x: r.categories.add((x.worker, x.category)),
    f.CategoryRevoked: lambda r, x: r.categories.discard((x.worker, x.category)),
    f.MonthlyReport: lambda r, x: r.reports.add((x.enterprise, x.worker, x.month)),
    f.ReportRetracted: lambda r, x: r.reports.discard((x.enterprise, x.worker, x.month)),
    f.ContributionPaid: lambda r, x: r.contributions.add((x.worker, x.month)),
    f.ContributionRefunded: lambda r, x: r.contributions.discard((x.worker, x.month)),
    f.TrainingCompleted: lambda r, x: r.trainings.add((x.enterprise, x.worker, x.course)),
    f.TrainingRetracted: lambda r, x: r.trainings.discard((x.enterprise, x.worker, x.course)),
    f.JobStandardApproved: lambda r, x: r.job_standards.add((x.enterprise, x.job_type)),
    f.CompetitionListed: lambda r, x: r.competitions.add(x.competition),
    f.CompetitionAward: lambda r, x: r.awards.add((x.competition, x.worker)),
    f.ParkRecognized: lambda r, x: r.parks.add(x.park),
    f.TalentAward: lambda r, x: r.talent_awards.add(x.award),
}
