"""Who submits, and how much: the shared key ring (services/runtime/access, through the service's
`AccessGate`) and intake's per-key rate limit (docs/design/intake-auth.md)."""

from __future__ import annotations

import asyncio
import time

from services.intake.domain.limits import Limits, RateDecision, RateLimiter
from services.runtime.access.gate import AccessGate
from services.runtime.access.principals import Principal

PRUNE_INTERVAL_S = 1.0


class SubmitterKeys:
    def __init__(self, gate: AccessGate, limits: Limits) -> None:
        self.gate = gate
        self.limits = limits
        self.rate = RateLimiter(limits.rate_burst_facts, limits.rate_facts_per_s)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        return await self.gate.authenticate(authorization)

    def take_rate(self, principal: Principal, cost: int) -> RateDecision:
        """Charge `cost` facts to the key's rate limit (a bulk request costs its rows)."""
        cost = min(cost, self.limits.max_bulk_rows)
        return self.rate.take(principal.key_id, now_s=time.monotonic(), cost=cost)

    async def forget_idle(self) -> None:
        """Forget the rates of idle keys (their buckets are full), so memory follows the active keys."""
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            self.rate.prune(now_s=time.monotonic())
