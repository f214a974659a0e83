"""Who may submit which fact about whom: the checks that need what intake has accepted.

`authorization` decides by role and by the fact alone (a platform reports only for its own
enterprise). Some facts are about a worker, and whether a platform may send them depends on its
relationship with that worker, which only the book knows (issue 13, docs/design/intake-auth.md):

- `residence_changed` (`has`): a platform may move only a worker it *has*: one it registered (and
  the HR bureau has not registered since) or one it reported income for (an accepted
  `monthly_report` naming its enterprise). Otherwise 403. The HR bureau may move anyone.
- `worker_registered` (`new`): a platform may register a worker no one registered yet (it then has
  the worker); a worker already registered is RULES.md's duplicate (400), whoever registered it.
- The HR bureau's registration is authoritative: when only platforms registered the worker before,
  it is accepted (not RULES.md's duplicate) and supersedes theirs: from then on a platform has the
  worker only by its reports. Its residence joins the worker's residence facts like any registration
  (RULES.md section 1: the latest `since` that is not after the day counts; a tie goes to the later
  fact). A second registration by the HR bureau (or after the operator's) is the duplicate, as before.

Submitters are their fact id scopes (`fact_ids.scope_of`): an enterprise code for a platform, a role
name for an agency, None for the operator (and for `scenario run --via engine`), to whom none of
these checks apply: the acceptance vectors decide exactly as RULES.md says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts import facts as f
from contracts.identifiers import mask
from services.runtime.access.principals import AGENCIES

HR_BUREAU = "hr_bureau"
# Fact type -> what a platform needs with the fact's worker (the `has`/`new` cells of the table).
PLATFORM_NEEDS: dict[str, str] = {"residence_changed": "has", "worker_registered": "new"}


def is_platform(submitter: str | None) -> bool:
    return submitter is not None and submitter not in AGENCIES


@dataclass(slots=True)
class Relationships:
    """Which platforms have which workers, and whose registration of a worker stands."""

    # worker -> the platform whose registration of the worker stands (no authority registered it)
    registered_by_platform: dict[str, str] = field(default_factory=dict)
    # workers registered by the HR bureau or the operator: their registration is the authoritative one
    registered_by_authority: set[str] = field(default_factory=set)
    # worker -> the enterprises that reported income for the worker (accepted monthly_report)
    reporters: dict[str, set[str]] = field(default_factory=dict)

    def has_worker(self, platform: str, worker: str) -> bool:
        registered = self.registered_by_platform.get(worker) == platform
        return registered or platform in self.reporters.get(worker, ())

    def problem(self, submitter: str | None, fact: f.AnyFact) -> str | None:
        """Why `submitter` may not send `fact` about this worker (a 403 reason), or None."""
        if not is_platform(submitter) or PLATFORM_NEEDS.get(fact.type) != "has":
            return None
        assert submitter is not None and isinstance(fact, f.ResidenceChanged)
        if self.has_worker(submitter, fact.worker):
            return None
        return (f"worker {mask(fact.worker)} is not a worker of platform {submitter}: a platform may change "
                "the residence only of a worker it registered or reported; the HR bureau may change any")

    def supersedes(self, submitter: str | None, fact: f.AnyFact) -> bool:
        """Whether `fact` is the HR bureau's registration of a worker only platforms registered: accepted
        although the worker is registered (it supersedes theirs)."""
        return (submitter == HR_BUREAU and isinstance(fact, f.WorkerRegistered)
                and fact.worker not in self.registered_by_authority
                and fact.worker in self.registered_by_platform)

    def apply(self, submitter: str | None, fact: f.AnyFact) -> None:
        """Record an accepted fact of `submitter`."""
        if isinstance(fact, f.WorkerRegistered):
            if is_platform(submitter):
                assert submitter is not None
                self.registered_by_platform[fact.worker] = submitter
            else:  # the HR bureau or the operator: the authoritative registration
                self.registered_by_authority.add(fact.worker)
                self.registered_by_platform.pop(fact.worker, None)
        elif isinstance(fact, f.MonthlyReport):
            self.reporters.setdefault(fact.worker, set()).add(fact.enterprise)
