"""Payments' own reading of the settings: default appropriations and the disbursement batching policy.

- `payments_default_appropriations` (FLEXLEDGER_PAYMENTS_DEFAULT_APPROPRIATIONS): the appropriation a
  budget (programme, fiscal year) of a book starts with, set by payments itself (recorded as a
  default, before the first grant charged to that budget) unless an operator has already set that
  budget. Empty (the default) means none: every order waits as awaiting-budget until the Finance
  Bureau appropriates. Otherwise `program=fen` pairs separated by commas, `*` standing for every other
  programme, e.g. `*=1000000000` or `training=5000000,*=0`.
- `payments_batch_max_entries` / `payments_batch_max_wait_s`: a disbursement batch is cut whenever
  that many orders are ready, and whatever is ready once the oldest ready order has waited that many
  seconds (`-1`: by count only; `0`: at once). At most `MAX_ENTRIES_PER_MESSAGE` entries per batch, so
  that an instruction stays well under Kafka's default 1 MiB message size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta

from services.payments.domain import BatchPolicy
from services.runtime.settings import Settings

MAX_ENTRIES_PER_MESSAGE = 2_000  # ~250 bytes of JSON each: ~0.5 MB per instruction
_PROGRAM = re.compile(r"[a-z][a-z0-9_]{0,63}|\*")


class ConfigError(ValueError):
    pass


def parse_appropriation_defaults(spec: str) -> dict[str, int]:
    """`"a=1,*=2"` -> `{"a": 1, "*": 2}`; `""` -> `{}`. Amounts are non-negative integer fen."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        program, sep, amount = (s.strip() for s in part.partition("="))
        if not sep or not _PROGRAM.fullmatch(program) or not amount.isdigit():
            raise ConfigError(
                f"payments_default_appropriations: {part!r} is not program=fen (fen a non-negative integer)"
            )
        if program in out:
            raise ConfigError(f"payments_default_appropriations: {program!r} given twice")
        out[program] = int(amount)
    return out


@dataclass(frozen=True)
class PaymentsConfig:
    default_appropriations: dict[str, int] = field(default_factory=dict)
    batch_policy: BatchPolicy = field(default_factory=lambda: BatchPolicy(500, timedelta(seconds=2)))

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentsConfig:
        entries = settings.payments_batch_max_entries
        if not 1 <= entries <= MAX_ENTRIES_PER_MESSAGE:
            raise ConfigError(
                f"payments_batch_max_entries must be 1..{MAX_ENTRIES_PER_MESSAGE}, got {entries}"
            )
        wait_s = settings.payments_batch_max_wait_s
        if wait_s < -1:
            raise ConfigError(f"payments_batch_max_wait_s must be -1 (count only) or >= 0, got {wait_s}")
        return cls(
            default_appropriations=parse_appropriation_defaults(settings.payments_default_appropriations),
            batch_policy=BatchPolicy(entries, None if wait_s == -1 else timedelta(seconds=wait_s)),
        )

    def default_appropriation(self, program: str) -> int:
        """What a budget of `program` starts with (0: nothing, the order waits for Finance)."""
        return self.default_appropriations.get(program, self.default_appropriations.get("*", 0))
