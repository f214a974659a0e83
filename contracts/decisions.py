"""Decision messages on flexledger.eligibility.decisions.v1 (one per ledger decision)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

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


class ParameterV1(BaseModel):
    """A parameter of the rule set a decision used, with the date its value applies from."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="the parameter's name in the rule set, e.g. min_wage_monthly_fen")
    value: Any = Field(description="its value as the rule set states it (amounts in fen)")
    since: str | None = Field(None, description="the date (YYYY-MM-DD) the value applies from")


class ExplanationV1(BaseModel):
    """Why a decision was taken (RULES.md): the article, the parameters and the facts it rests on, and
    the reason in English and Chinese. Every field is optional and more may appear (the explanation
    grows within v1 by optional fields only: docs/design/contracts.md)."""

    model_config = ConfigDict(extra="allow")
    article: str | None = Field(None, description="the article of the measures applied, e.g. 'Art. 2'")
    rule_set: str | None = Field(None, description="rule set id and version, e.g. wuxi-2021-26/1")
    summary: str | None = Field(None, description="one line: article, amount and reason (English)")
    reason_en: str | None = None
    reason_zh: str | None = None
    parameters: list[ParameterV1] | None = Field(None, description="the rule set's values used")
    fact_ids: list[str] | None = Field(None, description="ids of the facts the decision rests on")


def _self_contained(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema with its own definitions written in place (it is embedded in another)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if isinstance(node, dict):
            if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        return node

    result: dict[str, Any] = inline(schema)
    return result


# On the wire an explanation is the object ExplanationV1 describes; in code it stays the plain dict the
# ledger recorded (and replays byte for byte), so a decision is never refused for its explanation.
Explanation = Annotated[dict[str, Any], WithJsonSchema(_self_contained(ExplanationV1))]


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
    explanation: Explanation | None = None
    reverses: list[str] | None = Field(
        None,
        description="what a clawback or a revocation takes back: the decision_ids (sorted) of the grants of "
                    "its money line, or of the decision that granted the flag (extension, statistic, "
                    "recognition). Absent on other kinds, and on those recorded before the field existed.",
    )
    trace_id: str | None = None
    ledger_sequence: int | None = Field(None, description="position in the eligibility ledger's hash chain")
    recorded_at: AwareDatetime | None = Field(
        None,
        description="when eligibility recorded the decision; payments charges a line without a month to "
                    "the fiscal year of this date (China Standard Time). Absent from older messages.",
    )
    enterprise: str | None = Field(
        None, description="the enterprise named by the fact that caused the decision, if it names one. "
                          "Absent from older messages.",
    )
    employers: list[str] | None = Field(
        None,
        description="for a decision on a fact about a worker that names no enterprise (a contribution, a "
                    "category): the enterprises that named the worker in an accepted fact before it (a "
                    "report, a correction, a training record), sorted. Absent otherwise and from older "
                    "messages.",
    )

    def line_key(self) -> tuple[str | None, str | None, str | None, str | None, str | None]:
        return (self.program, self.beneficiary, self.subject, self.ref, self.month)
