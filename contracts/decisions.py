"""Decision messages on flexledger.eligibility.decisions.v1 (one per ledger decision)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

DecisionKind = Literal[
    "grant", "clawback", "extension", "extension_revoked", "statistic", "statistic_revoked",
    "recognition", "recognition_revoked", "rejected",
]
MONEY_KINDS = frozenset({"grant", "clawback"})
# The programmes of RULES.md section 4 that carry money (4.8 `new_employment` is statistics only): the
# `program` of every grant and clawback, and what a budget (appropriation) may be set for.
MoneyProgramme = Literal[
    "employment_service", "social_insurance", "training", "job_standard", "skill_competition",
    "park_construction", "talent",
]


class DecisionV1(BaseModel):
    """A decision of the eligibility ledger. Money is integer fen; `amount_fen` > 0 for grant and
    clawback, 0 otherwise. A money line is identified by (program, beneficiary, subject, ref, month)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(description="'main' for the city's ledger, or a sandbox book")
    decision_id: str
    rule_set: str = Field(description="rule set id and version, e.g. wuxi-2021-26/1")
    after: str | None = Field(description="id of the fact that caused the decision")
    kind: DecisionKind
    program: str | None = None
    beneficiary: str | None = None
    subject: str | None = None
    ref: str | None = None
    month: str | None = None
    amount_fen: int = Field(0, ge=0)
    reason: str | None = None
    explanation: dict[str, Any] | None = None
    trace_id: str | None = None
    ledger_sequence: int | None = Field(None, description="position in the eligibility ledger's hash chain")
    recorded_at: AwareDatetime | None = Field(
        None,
        description="when eligibility recorded the decision; payments charges a line without a month to "
                    "the fiscal year of this date (China Standard Time). Absent from older messages.",
    )

    def line_key(self) -> tuple[str | None, str | None, str | None, str | None, str | None]:
        return (self.program, self.beneficiary, self.subject, self.ref, self.month)
