"""Intake's own reading of the settings: its limits (docs/design/intake-auth.md, "Limits")."""

from __future__ import annotations

from services.intake.domain.limits import Limits
from services.runtime.settings import Settings


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_bulk_rows=settings.intake_max_bulk_rows, max_bulk_bytes=settings.intake_max_bulk_bytes,
        rate_burst_facts=settings.intake_rate_burst, rate_facts_per_s=float(settings.intake_rate_per_s),
        request_timeout_s=float(settings.intake_request_timeout_s),
        max_clock_skew_s=float(settings.intake_max_clock_skew_s),
    )
