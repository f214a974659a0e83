"""Entitlement state as a pure state machine: apply an accepted fact, get the decisions it causes.

Entitlement decomposes by subject: every line of a worker's programmes depends only on that worker's
facts, and one-time grants only on their own fact. So a fact re-evaluates only its worker's affected
programmes (incremental, independent of the city's size), and the difference against the previous
lines is exactly E(facts <= i) - E(facts < i) of RULES.md section 3.

Within a worker, the month-by-month programmes (employment service, social insurance, new employment)
keep their results in the worker's file and re-evaluate only what the months touched since can change
(`WorkerFile.take_changes`), so a fact's cost does not grow with the length of the worker's history
either. `entitlement_from_scratch` evaluates everything once, for checks; the property tests hold the
two to each other and to an independent reading of RULES.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from contracts import facts as f
from services.eligibility.domain.decision import Decision, line_decisions, rejection
from services.eligibility.domain.entitlement import Key, Line, Lines
from services.eligibility.domain.programmes.employment_service import employment_service
from services.eligibility.domain.programmes.new_employment import new_employment
from services.eligibility.domain.programmes.one_time import one_time, recognitions
from services.eligibility.domain.programmes.social_insurance import social_insurance
from services.eligibility.domain.programmes.training import training
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

Programme = Callable[[WorkerFile, RuleSet], Lines]
WORKER_PROGRAMMES: dict[str, Programme] = {
    "employment_service": employment_service,
    "social_insurance": social_insurance,
    "new_employment": new_employment,
    "training": training,
    "recognition": recognitions,
}
_PEOPLE = ("employment_service", "social_insurance")
_INCOME = ("employment_service", "social_insurance", "new_employment")
# Which of a worker's programmes a fact type can change; the others keep their lines.
AFFECTS: dict[type, tuple[str, ...]] = {
    f.WorkerRegistered: _PEOPLE, f.ResidenceChanged: _PEOPLE,
    f.CategoryDeclared: _PEOPLE, f.CategoryRevoked: _PEOPLE,
    f.MonthlyReport: _INCOME, f.ReportCorrected: _INCOME, f.ReportRetracted: _INCOME,
    f.ContributionPaid: ("social_insurance", "new_employment"),
    f.ContributionRefunded: ("social_insurance", "new_employment"),
    f.TrainingCompleted: ("training",), f.TrainingRetracted: ("training",),
    f.CompetitionAward: ("recognition",),
}


_AFFECTED: dict[type, tuple[tuple[str, Programme], ...]] = {
    fact_type: tuple((name, WORKER_PROGRAMMES[name]) for name in names)
    for fact_type, names in AFFECTS.items()
}


def _sort_key(key: Key) -> tuple[str, ...]:
    return tuple("" if part is None else part for part in key)


# Per line, the ids of the facts after which its grants (or its flag) were decided: what a clawback or
# revocation of the line reverses (`Decision.reverses`). Fact ids rather than decision ids: the string
# is already held by the worker's file, and the decision id follows from it and the line.
GrantedAfter = dict[Key, tuple[str, ...]]


def diff(
    book: str, rule_set: str, fact: f.AnyFact, old: Lines, new: Lines, granted_after: GrantedAfter
) -> list[Decision]:
    """The decisions `fact` causes from `old` to `new`, in key order; only lines that changed are looked
    at. `granted_after` follows: a grant joins its line's, a line that ends leaves."""
    changed = [
        key for key, line in new.items() if (was := old.get(key)) is None or was.amount_fen != line.amount_fen
    ]
    changed.extend(key for key in old if key not in new)
    out: list[Decision] = []
    for key in sorted(changed, key=_sort_key):
        line = new.get(key)
        made = line_decisions(book, rule_set, fact, key, old.get(key), line, granted_after.get(key, ()))
        if line is None:
            granted_after.pop(key, None)
        elif made and made[0].kind != "clawback":  # a grant, or a flag granted
            granted_after[key] = (*granted_after.get(key, ()), fact.id)
        out.extend(made)
    return out


class EntitlementState:
    """Entitlement state of one book (or one subject of it) under one rule set, updated one accepted
    fact at a time: the worker files, each worker's lines by programme and the one-time lines."""

    def __init__(self, rule_set: RuleSet, book: str = "main") -> None:
        self.rule_set = rule_set
        self.book = book
        self.workers: dict[str, WorkerFile] = {}
        self.worker_lines: dict[str, dict[str, Lines]] = {}
        self.one_time_lines: Lines = {}
        self.granted_after: GrantedAfter = {}  # of the workers' lines
        self.applied = 0

    def apply(self, fact: f.AnyFact) -> list[Decision]:
        """Fold an accepted fact in and return the decisions it causes (possibly none)."""
        self.applied += 1
        worker = getattr(fact, "worker", None)
        if worker is None:
            new = one_time(fact, self.rule_set)
            self.one_time_lines.update(new)
            # a one-time line is never taken back (no fact withdraws it): nothing to follow
            return diff(self.book, self.rule_set.id, fact, {}, new, {})
        file = self.workers.get(worker)
        if file is None:
            file = self.workers[worker] = WorkerFile(worker)
        file.apply(fact, self.applied)
        programmes = self.worker_lines.setdefault(worker, {})
        decisions: list[Decision] = []
        for name, programme in _AFFECTED.get(type(fact), ()):
            new = programme(file, self.rule_set)
            old = programmes.get(name)
            if new is old:
                continue  # the programme kept its lines: nothing changed
            if old or new:  # most workers have no line in most programmes: nothing to compare
                decisions.extend(diff(self.book, self.rule_set.id, fact, old or {}, new, self.granted_after))
            if new:
                programmes[name] = new
            elif old is not None:
                del programmes[name]
        return decisions

    def reject(self, fact_id: str | None, reason: str, content_digest: str, seq: int) -> Decision:
        """The decision for a submission intake rejected; `seq` is its intake sequence number."""
        return rejection(self.book, self.rule_set.id, fact_id, reason, content_digest, seq)

    def lines(self) -> dict[Key, Line]:
        """The current entitlement state E(facts)."""
        out: dict[Key, Line] = dict(self.one_time_lines)
        for programmes in self.worker_lines.values():
            for lines in programmes.values():
                out.update(lines)
        return out


def entitlement_from_scratch(facts: Iterable[f.AnyFact], rule_set: RuleSet) -> dict[Key, Line]:
    """E(facts) computed in one pass with every programme evaluated once at the end (for checks)."""
    files: dict[str, WorkerFile] = {}
    out: dict[Key, Line] = {}
    for order, fact in enumerate(facts, start=1):
        worker = getattr(fact, "worker", None)
        if worker is None:
            out.update(one_time(fact, rule_set))
        else:
            files.setdefault(worker, WorkerFile(worker)).apply(fact, order)
    for file in files.values():
        for programme in WORKER_PROGRAMMES.values():
            out.update(programme(file, rule_set))
    return out
