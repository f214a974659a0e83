"""Who calls the services' HTTP APIs: what an authenticated API key stands for.

- `platform`: a gig platform, bound to its own enterprise (unified social credit code);
- the four agencies (`AGENCIES`), which submit their facts;
- `finance`: the Finance Bureau (appropriations, repayments, the payments books);
- `auditor`: reads everything, identity numbers included; each read is itself recorded;
- `statistics`: the statistics bureau, reads pseudonymised (identity numbers replaced by keyed
  pseudonyms);
- `operator`: runs the system (keys, sandbox books, the demo, scenario runs).

What each role may call is `policy`'s table (docs/design/http-auth.md); which facts each may submit
is intake's table (services/intake/domain/authorization.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal[
    "platform", "hr_bureau", "social_insurance_agency", "talent_office", "park_authority",
    "finance", "auditor", "statistics", "operator",
]
ROLES: tuple[Role, ...] = get_args(Role)
AGENCIES: frozenset[Role] = frozenset(
    {"hr_bureau", "social_insurance_agency", "talent_office", "park_authority"}
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a key. `enterprise` is set for a platform and only for a platform."""

    role: Role
    key_id: str
    enterprise: str | None = None

    def __post_init__(self) -> None:
        assert self.role in ROLES, self.role
        assert (self.role == "platform") == (self.enterprise is not None), (self.role, self.enterprise)

    def describe(self) -> str:
        """Short operator-facing name, e.g. `platform 91320213MA1XY0001L` or `hr_bureau`."""
        return f"platform {self.enterprise}" if self.role == "platform" else self.role
