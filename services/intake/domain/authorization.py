"""Who may submit which fact (docs/design/intake-auth.md has the same table, checked by a test).

Runs on the raw fact, after authentication and before validation, so that a refused fact is neither
validated nor stored. It decides only what it can read: a fact whose `type` is missing or unknown is
left to validation (400 naming the known types), and so is a platform's fact whose `enterprise` is
missing or not a string (400 naming the field). A platform's fact naming any other enterprise is 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contracts.facts import FACT_TYPES
from services.runtime.access.principals import Principal, Role

# Fact type -> roles that may submit it, besides the operator, who may submit everything.
SUBMITTERS: dict[str, frozenset[Role]] = {
    "enterprise_registered": frozenset({"platform", "hr_bureau"}),
    "worker_registered": frozenset({"platform", "hr_bureau"}),
    "residence_changed": frozenset({"platform", "hr_bureau"}),
    "category_declared": frozenset({"hr_bureau"}),
    "category_revoked": frozenset({"hr_bureau"}),
    "monthly_report": frozenset({"platform"}),
    "report_corrected": frozenset({"platform"}),
    "report_retracted": frozenset({"platform"}),
    "contribution_paid": frozenset({"social_insurance_agency"}),
    "contribution_refunded": frozenset({"social_insurance_agency"}),
    "training_completed": frozenset({"platform"}),
    "training_retracted": frozenset({"platform"}),
    "job_standard_approved": frozenset({"hr_bureau"}),
    "competition_listed": frozenset({"hr_bureau"}),
    "competition_award": frozenset({"hr_bureau"}),
    "park_recognized": frozenset({"park_authority"}),
    "talent_award": frozenset({"talent_office"}),
}
assert set(SUBMITTERS) == set(FACT_TYPES), set(SUBMITTERS) ^ set(FACT_TYPES)

# Fact types a platform may submit only when their `enterprise` field is the platform's own.
ENTERPRISE_BOUND: frozenset[str] = frozenset(
    kind for kind, model in FACT_TYPES.items()
    if "enterprise" in model.model_fields and "platform" in SUBMITTERS[kind]
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused before anything is validated or stored: 401 or 403 with a reason."""

    status: Literal[401, 403]
    reason: str


UNAUTHENTICATED = Refusal(401, "a valid API key is required: send 'Authorization: Bearer flk_...'")


def authorization_problem(principal: Principal, raw_fact: object) -> str | None:
    """Why `principal` may not submit `raw_fact` (a 403 reason), or None when it may, or when only
    validation can tell (the fact is then rejected with 400 on its shape)."""
    if principal.role == "operator" or not isinstance(raw_fact, dict):
        return None
    kind = raw_fact.get("type")
    if not isinstance(kind, str) or kind not in SUBMITTERS:
        return None
    if principal.role not in SUBMITTERS[kind]:
        allowed = " or ".join(sorted(SUBMITTERS[kind]))
        return f"a {principal.role} key may not submit {kind}; it is submitted by {allowed}"
    if principal.role == "platform" and kind in ENTERPRISE_BOUND:
        enterprise = raw_fact.get("enterprise")
        if isinstance(enterprise, str) and enterprise != principal.enterprise:
            return (f"enterprise {_shown(enterprise)} is not this key's platform {principal.enterprise}: "
                    "a platform may submit facts only for itself")
    return None


def _shown(value: str) -> str:
    """A submitted value as it may appear in a reason: quoted, escaped and at most 40 characters."""
    return repr(value if len(value) <= 40 else value[:40] + "…")


def authorize(principal: Principal | None, raw_fact: object) -> Refusal | None:
    """401 when there is no principal, 403 when the fact is not this principal's, None when it may go on."""
    if principal is None:
        return UNAUTHENTICATED
    problem = authorization_problem(principal, raw_fact)
    return Refusal(403, problem) if problem is not None else None
