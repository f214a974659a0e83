"""The life of a service process, the same for the three services: open, consume, follow, stop, report.

A service's `bootstrap.py` builds a `ServiceRuntime` and registers on it what the service has:
- `on_start(step)`: what to open before anything consumes (the event store, a pool, tables), in order;
- `follow(follower)`: a log follower (relay or projection) run in the background and woken on change
  (also from a start step, when the follower needs what a step opens, e.g. a pool: it starts with the
  loops, after every step);
- `background(name, loop)`: any other long-running loop (batching, key refresh, writer-lock watch);
- `on_stop(close)`: what to close, closed in the reverse order of registration;
- `reports(name, details)`: a part's own health details;
- `check(check)`: a part's own health check, sampled by the health watch (a reason, or None);
- `ready_when(condition)`: what must hold besides running loops for the service to be ready (e.g. holding
  a lock): while it fails, health is `down` and `serving()` is False.

Health (`services.runtime.health`): `ok`; `degraded` with `reasons` (lag, a stalled follower or
consumer, dead letters since the last look, the database or broker unreachable, a service's own
check), still serving; `down` when a loop stopped or a `ready_when` condition fails; `starting`;
`standby` (HTTP 200) while a standby waits for its writer lock (`role`: services.runtime.writer_lock).
The runtime also counts what its consumers handled, for lag (`services.runtime.metrics`).

`start()` runs the start steps, starts the Kafka broker (its subscribers begin consuming), then the
followers and loops, and the keeper that replaces the Kafka producer after a fatal error
(`services.runtime.kafka.ProducerKeeper`). A step or the broker's start that cannot reach PostgreSQL or
Kafka is retried with a capped backoff (`services.runtime.startup`); health says `starting` and what it
waits for meanwhile. `stop()` stops the broker first, so that no message is
half-handled when the rest stops, then cancels the loops, then closes. `python -m services.<name>`
serves it with `services.runtime.process.main`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from faststream.kafka import KafkaBroker

from services.runtime.health import Check, HealthLimits, HealthWatch
from services.runtime.kafka import ProducerKeeper, bootstrap_probe
from services.runtime.metrics import ConsumerProgress
from services.runtime.outbox import LogFollower
from services.runtime.startup import until_reachable

log = logging.getLogger(__name__)
# Health statuses answered with HTTP 200 (else 503); a standby is up, and takes nothing until it is active.
SERVING = frozenset({"ok", "degraded", "standby"})
Step = Callable[[], Awaitable[None]]
Close = Callable[[], Awaitable[None] | None]


class ServiceRuntime:
    def __init__(self, name: str, broker: KafkaBroker, health: HealthLimits | None = None) -> None:
        self.name = name
        self.broker = broker
        self.http: Any = None  # the ASGI app, set by the service's bootstrap
        self.ready = False
        self.waiting_for: str | None = None  # while starting: the dependency it cannot reach, and why
        self.producer = ProducerKeeper(broker)
        self.followers: list[LogFollower] = []
        progress = ConsumerProgress()
        broker.add_middleware(progress.middleware())
        self.watch = HealthWatch(name, broker, progress, health or HealthLimits(), self.followers)
        self.tasks: list[asyncio.Task[None]] = []
        self._start_steps: list[Step] = []
        self._loops: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        self._closers: list[Close] = []
        self._reports: dict[str, Callable[[], Any]] = {}
        self._conditions: list[Callable[[], bool]] = []
        # "standby" or "active" for a service run as a pair (services.runtime.writer_lock.Seat), else None.
        self.role: Callable[[], str | None] = lambda: None

    # ---- registration (bootstrap) -----------------------------------------------------------------

    def on_start(self, step: Step) -> None:
        self._start_steps.append(step)

    def on_stop(self, close: Close) -> None:
        self._closers.append(close)

    def follow(self, follower: LogFollower) -> LogFollower:
        """Also from a start step, for a follower that needs what an earlier step opened: the loops
        start after the last step."""
        self.followers.append(follower)
        self.background(follower.name, follower.run)
        return follower

    def background(self, name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._loops.append((name, loop))

    def reports(self, name: str, details: Callable[[], Any]) -> None:
        self._reports[name] = details

    def ready_when(self, condition: Callable[[], bool]) -> None:
        self._conditions.append(condition)

    def check(self, check: Check) -> None:
        self.watch.check(check)

    # ---- running ----------------------------------------------------------------------------------

    def wake_followers(self) -> None:
        """Something was recorded: the relays and projections read the log now, not at their next poll."""
        for follower in self.followers:
            follower.wake()

    def serving(self) -> bool:
        """Started, and every `ready_when` condition holds: requests may be taken."""
        return self.ready and all(condition() for condition in self._conditions)

    async def start(self) -> None:
        def waiting(reason: str | None) -> None:
            self.waiting_for = reason

        for step in self._start_steps:  # they open the event store, pools and tables
            await until_reachable("database", step, waiting=waiting)
        await until_reachable("broker", self._start_broker, waiting=waiting, undo=self._stop_broker)
        loops = [("kafka producer", self.producer.run), ("health watch", self.watch.run), *self._loops]
        self.tasks = [asyncio.create_task(loop(), name=name) for name, loop in loops]
        self.ready = True
        log.info("%s ready", self.name)

    async def _start_broker(self) -> None:
        await bootstrap_probe(self.broker)  # while the cluster is down, fails without leaking a producer
        await self.broker.start()

    async def _stop_broker(self) -> None:
        """After a failed start: drop its half-made connection and subscribers before the next try."""
        try:
            await self.broker.stop()
        except Exception:
            log.debug("%s: stopping a broker that failed to start", self.name, exc_info=True)

    async def stop(self) -> None:
        self.ready = False
        await self.broker.stop()  # first: no message is half-handled when the rest stops
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for close in reversed(self._closers):
            try:
                closed = close()
                if closed is not None:
                    await closed
            except Exception:
                log.exception("%s: closing failed", self.name)

    def health(self) -> dict[str, Any]:
        """`starting`; `down` when a background loop stopped or a `ready_when` condition fails; else
        `degraded` when the health watch found reasons or dead letters were kept since the last look,
        else `ok`."""
        alive = {task.get_name(): not task.done() for task in self.tasks}
        reasons = [f"{name} stopped" for name, running in alive.items() if not running]
        if self.ready and not self.serving():
            reasons.append("not ready (a ready condition fails)")
        role = self.role()
        if not self.ready:
            status = "standby" if role == "standby" else "starting"
            if self.waiting_for:
                reasons.append(f"waiting for {self.waiting_for}")
            elif status == "standby":
                reasons.append("waiting for the writer lock, which the active instance holds")
        elif reasons:
            status = "down"
        else:
            reasons = list(self.watch.reasons)
            if grown := self.watch.dead_letters_since_last_look():
                reasons.append(f"{grown} dead letters since the last look")
            status = "degraded" if reasons else "ok"
        waiting = {"waiting_for": self.waiting_for} if status == "starting" and self.waiting_for else {}
        played = {"role": role} if role else {}
        return {"status": status, "service": self.name, **played, **waiting, "reasons": reasons,
                "tasks": alive, "kafka_producer_renewals": self.producer.renewals,
                **{name: details() for name, details in self._reports.items()}}
