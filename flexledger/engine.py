"""The in-process engine: intake's checks and eligibility's entitlement state, the same code the services run,
on in-memory state. `flexledger scenario run --via engine` and the benchmarks use it."""

from __future__ import annotations

from typing import Any

from services.eligibility.domain.decision import Decision
from services.eligibility.domain.entitlement_state import EntitlementState
from services.eligibility.domain.ruleset import CURRENT, RuleSet
from services.intake.domain.submission import IntakeBook, Submission


class Engine:
    def __init__(self, rule_set: RuleSet = CURRENT, book: str = "main") -> None:
        self.intake = IntakeBook()
        self.entitlement = EntitlementState(rule_set, book)

    def submit(self, raw: Any) -> tuple[Submission, list[Decision]]:
        submission = self.intake.submit(raw)
        if submission.outcome == "duplicate":
            return submission, []
        if submission.outcome == "rejected":
            assert submission.reason is not None
            # intake's book numbers every recorded submission: this one is `last_seq`, as the service's seq
            return submission, [self.entitlement.reject(
                submission.fact_id, submission.reason, submission.digest, self.intake.last_seq
            )]
        assert submission.fact is not None
        return submission, self.entitlement.apply(submission.fact)

    def run(self, facts: list[Any]) -> list[Decision]:
        decisions: list[Decision] = []
        for raw in facts:
            decisions.extend(self.submit(raw)[1])
        return decisions
