"""The API keys intake accepts: the key ring stored in intake's event store (changed by `flexledger
keys`), followed into memory, plus the bootstrap operator key; and each key's rate limit.

A revoked key stops working within `KEY_REFRESH_INTERVAL_S`. A key id not in memory re-reads the ring
at once (it may have just been issued), at most `KEY_MISS_REFRESH_PER_S` times a second, so unknown
ids cannot flood the store. See docs/design/intake-auth.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from services.intake.adapters.operator_key import ensure_operator_key
from services.intake.adapters.store import IntakeStore
from services.intake.domain.credentials import (
    KeyIssued,
    KeyRing,
    authenticate,
    bearer_token,
    parse_api_key,
    secret_hash,
)
from services.intake.domain.limits import Limits, RateDecision, RateLimiter
from services.intake.domain.principals import Principal
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
KEY_REFRESH_INTERVAL_S = 1.0
KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S = 50, 20.0


class ApiKeys:
    def __init__(self, store: IntakeStore, limits: Limits, settings: Settings) -> None:
        self.store = store
        self.limits = limits
        self.settings = settings  # for the bootstrap operator key
        self.ring = KeyRing()
        self.ring_version = 0  # the version of the stored ring's stream folded into `ring`
        self.rate = RateLimiter(limits.rate_burst_facts, limits.rate_facts_per_s)
        self._refresh_lock = asyncio.Lock()
        self._refresh_started_s = 0.0
        self._miss_refreshes = RateLimiter(KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S)

    def count(self) -> int:
        return len(self.ring.records)

    async def open(self) -> None:
        """Accept the bootstrap operator key, and read the stored ring."""
        key = ensure_operator_key(self.settings)
        if key is None:
            log.info("no bootstrap operator key (operator_key=off)")
        else:
            self.ring.apply(KeyIssued(key.key_id, "operator", None, secret_hash(key.key_id, key.secret),
                                      datetime.now(UTC), "bootstrap operator key (settings)"))
            log.info("bootstrap operator key %s accepted", key.key_id)
        await self.refresh()
        log.info("intake accepts %d keys", self.count())

    async def follow(self) -> None:
        """Re-read the ring every `KEY_REFRESH_INTERVAL_S`, and forget the rates of idle keys."""
        while True:
            await asyncio.sleep(KEY_REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the key ring failed; retrying")
            self.rate.prune(now_s=time.monotonic())

    async def refresh(self, *, unless_since: float | None = None) -> int:
        """Fold the key ring's changes stored since the last refresh; how many there were. With
        `unless_since` (a monotonic time), skip if a refresh started after it (it saw what we want)."""
        async with self._refresh_lock:
            if unless_since is not None and self._refresh_started_s > unless_since:
                return 0
            self._refresh_started_s = time.monotonic()
            changes = await asyncio.to_thread(self.store.app.key_changes, self.ring_version)
            for version, event in changes:
                self.ring.apply(event)
                self.ring_version = version
        return len(changes)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal of an `Authorization: Bearer flk_...` header; None if it holds no valid key."""
        token = bearer_token(authorization)
        parsed = parse_api_key(token) if token is not None else None
        if parsed is not None and parsed.key_id not in self.ring.records:
            # Maybe issued a moment ago: read the ring now (bounded: unknown ids cannot flood the store).
            arrived_s = time.monotonic()
            if self._miss_refreshes.take("miss", now_s=arrived_s).allowed:
                try:
                    await self.refresh(unless_since=arrived_s)
                except Exception:
                    log.exception("reading the key ring failed")
        return authenticate(self.ring, token, now=datetime.now(UTC))

    def take_rate(self, principal: Principal, cost: int) -> RateDecision:
        """Charge `cost` facts to the key's rate limit (a bulk request costs its rows)."""
        cost = min(cost, self.limits.max_bulk_rows)
        return self.rate.take(principal.key_id, now_s=time.monotonic(), cost=cost)
