"""Health that tells the truth: a watch that samples the service's work every few seconds and says why
it is not `ok`.

Each sample (`HealthWatch.sample`) looks at:
- the database: the head of each notification log (a query with a timeout: a locked events table or an
  unreachable server is a reason, not a hang);
- the log followers: backlog (head minus position), and whether one made no progress for
  `stall_s` while events wait;
- the Kafka consumers: lag per partition (high watermark minus the next offset to handle, as the
  handlers finished them: `services.runtime.metrics.ConsumerProgress`), whether one made no progress for
  `stall_s` while messages wait, and lag above `lag_max_messages` for longer than `lag_for_s`; their
  group generations (rebalances);
- the broker: a metadata round trip with a timeout;
- the service's own checks (`HealthWatch.check`, e.g. eligibility's checkpoint overdue).
It sets the gauges of `services.runtime.metrics` on the way. Dead letters that grew since the last
look are judged when `/health` is asked (`ServiceRuntime.health`), from the dead-letter counter.

A reason makes the service `degraded` (still serving, HTTP 200); `ServiceRuntime.health` says `down`
(503) when it cannot serve at all. Reasons name parts, never identity numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faststream.kafka import KafkaBroker

from services.runtime import metrics
from services.runtime.kafka import started_producer
from services.runtime.outbox import LogFollower
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
Check = Callable[[], str | None]  # a reason, or None when all is well


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """When a service stops being `ok` (settings FLEXLEDGER_HEALTH_*)."""

    lag_max_messages: int = 10_000
    lag_for_s: float = 60.0
    stall_s: float = 30.0
    interval_s: float = 2.0
    query_timeout_s: float = 2.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HealthLimits:
        return cls(lag_max_messages=settings.health_lag_max_messages, lag_for_s=settings.health_lag_for_s,
                   stall_s=settings.health_stall_s, interval_s=settings.health_interval_s)


@dataclass(slots=True)
class _Progress:
    """Where a follower or partition was, and since when it has not moved while work waited."""

    position: int = -1
    stuck_since: float | None = None  # work waits, and the position has not moved since then
    over_since: float | None = None  # lag above the limit since then

    def update(self, position: int, waiting: int, now: float) -> float:
        """Seconds without progress while work waited (0 when it moved or nothing waits)."""
        if waiting <= 0:
            self.position, self.stuck_since = position, None
            return 0.0
        if position != self.position or self.stuck_since is None:  # moved (or first seen) just now
            self.position, self.stuck_since = position, now
        return now - self.stuck_since


@dataclass
class HealthWatch:
    service: str
    broker: KafkaBroker
    progress: metrics.ConsumerProgress
    limits: HealthLimits = field(default_factory=HealthLimits)
    followers: list[LogFollower] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    _seen: dict[str, _Progress] = field(default_factory=dict)
    _generations: dict[str, int] = field(default_factory=dict)
    _dead_letters_seen: float = 0.0

    def check(self, check: Check) -> None:
        self.checks.append(check)

    async def run(self) -> None:
        while True:
            try:
                reasons = await self.sample(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in the watch must not stop it
                log.exception("%s: health sample failed", self.service)
            else:
                self._log_change(reasons)
                self.reasons = reasons
            await asyncio.sleep(self.limits.interval_s)

    def _log_change(self, reasons: list[str]) -> None:
        """Log when the parts named by the reasons change (not every sample: the figures in a reason
        change every time)."""
        def parts(of: list[str]) -> set[str]:
            return {reason.split(":", 1)[0] for reason in of}

        if parts(reasons) == parts(self.reasons):
            return
        if reasons:
            log.warning("%s degraded: %s", self.service, "; ".join(reasons))
        else:
            log.info("%s ok again", self.service)

    async def sample(self, now: float) -> list[str]:
        reasons = await self._followers(now)
        reasons += self._consumers(now)
        reasons += await self._broker()
        reasons += [reason for check in self.checks if (reason := check()) is not None]
        return reasons

    # ---- the parts -----------------------------------------------------------------------------------

    async def _followers(self, now: float) -> list[str]:
        reasons: list[str] = []
        heads: dict[str, int | None] = {}
        for follower in self.followers:
            schema = follower.schema
            if schema not in heads:
                heads[schema] = await self._log_head(follower)
                if heads[schema] is None:
                    reasons.append(f"database: the {schema} event log did not answer within "
                                   f"{self.limits.query_timeout_s:.0f} s (unreachable or locked)")
            head = heads[schema]
            if head is None:
                continue
            backlog = max(0, head - follower.position)
            metrics.OUTBOX_BACKLOG.labels(self.service, follower.name).set(backlog)
            metrics.OUTBOX_POSITION.labels(self.service, follower.name).set(follower.position)
            stuck_s = self._progress(f"follower {follower.name}").update(follower.position, backlog, now)
            if stuck_s >= self.limits.stall_s:
                reasons.append(f"follower {follower.name}: no progress for {stuck_s:.0f} s "
                               f"with {backlog} events waiting")
        return reasons

    async def _log_head(self, follower: LogFollower) -> int | None:
        table = follower.app.recorder.events_table_name  # type: ignore[attr-defined]
        try:
            head = await follower.pool.fetchval(
                f'SELECT max(notification_id) FROM "{follower.schema}"."{table}"',
                timeout=self.limits.query_timeout_s,
            )
        except Exception as exc:
            log.warning("%s: reading the head of the %s log failed: %r", self.service, follower.schema, exc)
            return None
        return int(head or 0)

    def _consumers(self, now: float) -> list[str]:
        reasons: list[str] = []
        for subscriber in self.broker.subscribers:
            consumer: Any = getattr(subscriber, "consumer", None)
            group = getattr(subscriber, "group_id", None)
            if consumer is None or not group:
                continue
            self._count_rebalance(group, consumer)
            for tp in consumer.assignment():
                reasons += self._partition(now, group, consumer, tp)
        return reasons

    def _partition(self, now: float, group: str, consumer: Any, tp: Any) -> list[str]:
        highwater = consumer.highwater(tp)
        handled = self.progress.handled.get((tp.topic, tp.partition))
        if highwater is None or handled is None:  # nothing fetched or handled yet since start
            return []
        lag = max(0, highwater - handled)
        labels = (self.service, group, tp.topic, str(tp.partition))
        metrics.CONSUMER_LAG.labels(*labels).set(lag)
        metrics.CONSUMER_HANDLED_OFFSET.labels(*labels).set(handled)
        where = f"consumer {group} on {tp.topic}[{tp.partition}]"
        seen = self._progress(where)
        reasons = []
        stuck_s = seen.update(handled, lag, now)
        if stuck_s >= self.limits.stall_s:
            reasons.append(f"{where}: no progress for {stuck_s:.0f} s with {lag} messages waiting")
        if lag <= self.limits.lag_max_messages:
            seen.over_since = None
        else:
            seen.over_since = seen.over_since if seen.over_since is not None else now
            if now - seen.over_since >= self.limits.lag_for_s:
                reasons.append(f"{where}: lag {lag} above {self.limits.lag_max_messages} for "
                               f"{now - seen.over_since:.0f} s")
        return reasons

    def _count_rebalance(self, group: str, consumer: Any) -> None:
        generation = getattr(getattr(consumer, "_coordinator", None), "generation", -1)
        if generation > 0 and generation != self._generations.get(group, generation):
            metrics.CONSUMER_REBALANCES.labels(self.service, group).inc()
        if generation > 0:
            self._generations[group] = generation

    async def _broker(self) -> list[str]:
        try:
            producer = started_producer(self.broker)
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.limits.query_timeout_s)
        except Exception as exc:
            return [f"broker: no metadata within {self.limits.query_timeout_s:.0f} s ({type(exc).__name__})"]
        return []

    def _progress(self, where: str) -> _Progress:
        seen = self._seen.get(where)
        if seen is None:
            seen = self._seen[where] = _Progress()
        return seen

    # ---- dead letters, judged per look -------------------------------------------------------------

    def dead_letters_since_last_look(self) -> int:
        """Dead letters this service kept since the previous call (the previous `/health`)."""
        total = 0.0
        with contextlib.suppress(Exception):
            for family in metrics.DEAD_LETTERS.collect():
                total += sum(s.value for s in family.samples
                             if s.name.endswith("_total") and s.labels.get("service") == self.service)
        grown, self._dead_letters_seen = total - self._dead_letters_seen, total
        return int(grown)
