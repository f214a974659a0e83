"""The API keys a service accepts: the key ring of the access store (changed by `flexledger keys`),
followed into memory, plus the bootstrap operator key.

A revoked key stops working within `KEY_REFRESH_INTERVAL_S`. A key id not in memory re-reads the ring
at once (it may have just been issued), at most `KEY_MISS_REFRESH_PER_S` times a second, so unknown
ids cannot flood the store. See docs/design/http-auth.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from services.runtime.access.credentials import (
    KeyIssued,
    KeyRing,
    authenticate,
    bearer_token,
    parse_api_key,
    secret_hash,
)
from services.runtime.access.operator_key import ensure_operator_key
from services.runtime.access.principals import Principal
from services.runtime.access.store import AccessApplication
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
KEY_REFRESH_INTERVAL_S = 1.0
KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S = 50, 20.0


class KeyRingFollower:
    """The ring in memory, refreshed from the access store; `authenticate` a request's header."""

    def __init__(self, app: AccessApplication, settings: Settings) -> None:
        self.app = app
        self.settings = settings  # for the bootstrap operator key
        self.ring = KeyRing()
        self.ring_version = 0  # the version of the stored ring's stream folded into `ring`
        self._refresh_lock = asyncio.Lock()
        self._refresh_started_s = 0.0
        self._miss_tokens, self._miss_at_s = float(KEY_MISS_REFRESH_BURST), time.monotonic()

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
        log.info("%d keys accepted", self.count())

    async def follow(self) -> None:
        """Re-read the ring every `KEY_REFRESH_INTERVAL_S`."""
        while True:
            await asyncio.sleep(KEY_REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception:
                log.exception("reading the key ring failed; retrying")

    async def refresh(self, *, unless_since: float | None = None) -> int:
        """Fold the key ring's changes stored since the last refresh; how many there were. With
        `unless_since` (a monotonic time), skip if a refresh started after it (it saw what we want)."""
        async with self._refresh_lock:
            if unless_since is not None and self._refresh_started_s > unless_since:
                return 0
            self._refresh_started_s = time.monotonic()
            changes = await asyncio.to_thread(self.app.key_changes, self.ring_version)
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
            if self._take_miss_token(arrived_s):
                try:
                    await self.refresh(unless_since=arrived_s)
                except Exception:
                    log.exception("reading the key ring failed")
        return authenticate(self.ring, token, now=datetime.now(UTC))

    def _take_miss_token(self, now_s: float) -> bool:
        """A token bucket (burst KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S a second) for re-reads."""
        elapsed_s = max(0.0, now_s - self._miss_at_s)
        refilled = self._miss_tokens + elapsed_s * KEY_MISS_REFRESH_PER_S
        self._miss_tokens = min(float(KEY_MISS_REFRESH_BURST), refilled)
        self._miss_at_s = max(self._miss_at_s, now_s)
        if self._miss_tokens < 1:
            return False
        self._miss_tokens -= 1
        return True
