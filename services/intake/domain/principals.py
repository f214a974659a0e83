"""Who submits facts: a platform bound to its own enterprise, one of four agencies, or an operator.

A principal is what an authenticated API key stands for (see `credentials`); what each principal may
submit is `authorization`'s table (docs/design/intake-auth.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal[
    "platform", "hr_bureau", "social_insurance_agency", "talent_office", "park_authority", "operator"
]
ROLES: tuple[Role, ...] = get_args(Role)
AGENCIES: frozenset[Role] = frozenset(
    {"hr_bureau", "social_insurance_agency", "talent_office", "park_authority"}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The submitter behind a key. `enterprise` is set for a platform and only for a platform."""

    role: Role
    key_id: str
    enterprise: str | None = None

    def __post_init__(self) -> None:
        assert self.role in ROLES, self.role
        assert (self.role == "platform") == (self.enterprise is not None), (self.role, self.enterprise)

    def describe(self) -> str:
        """Short operator-facing name, e.g. `platform 91320213MA1XY0001L` or `hr_bureau`."""
        return f"platform {self.enterprise}" if self.role == "platform" else self.role
