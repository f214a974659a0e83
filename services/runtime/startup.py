"""Waiting for the broker and the database at start-up, instead of exiting.

A service started while Kafka or PostgreSQL is down (or still booting) would fail at its first
connection and exit; under a process manager it would then crash-loop, and without one it stays down.
Instead the runtime retries each start step, and the broker's start, with a capped backoff while the
failure says "cannot reach it" (refused, timed out, starting up, shut down). Any other failure (a wrong
password, a missing grant, a bug) is not made better by waiting: it is raised and the process exits.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import asyncpg
import psycopg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NoBrokersAvailable
from eventsourcing import persistence

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.25
BACKOFF_MAX_S = 2.0  # capped: a dependency that comes back is noticed within this long

# Socket errors that say "not there (yet)"; a file's PermissionError, say, is not one of them.
NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EHOSTUNREACH,
    errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.EADDRNOTAVAIL, errno.EPIPE,
})
UNREACHABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted
    socket.gaierror,  # a name not resolved (yet)
    TimeoutError,
    KafkaConnectionError,  # "Unable to bootstrap from ..."
    KafkaTimeoutError,
    NoBrokersAvailable,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # "the database system is starting up / shutting down"
    asyncpg.exceptions.ConnectionDoesNotExistError,
    psycopg.OperationalError,  # psycopg's "connection failed" (and the pool's timeout)
    persistence.OperationalError,  # the same, as the eventsourcing library re-raises it
    persistence.InterfaceError,
)


def unreachable(exc: BaseException) -> bool:
    """True when `exc`, or what caused it, says a dependency cannot be reached (yet)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UNREACHABLE):
            return True
        # asyncio's connect to several addresses raises a plain OSError("Multiple exceptions: ...").
        if type(seen) is OSError and (seen.errno is None or seen.errno in NETWORK_ERRNOS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def until_reachable(
    dependency: str, attempt: Callable[[], Awaitable[None]], *,
    waiting: Callable[[str | None], None] = lambda _: None,
    undo: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `attempt` until it succeeds, backing off (capped) while `dependency` is unreachable.

    `waiting` is told why while it waits (for health), and None once it succeeded; `undo` runs after a
    failed attempt, to leave nothing half-open for the next one."""
    backoff_s = BACKOFF_FIRST_S
    while True:
        try:
            await attempt()
        except Exception as exc:
            if undo is not None:
                await undo()
            if not unreachable(exc):
                raise
            reason = f"{dependency}: {type(exc).__name__}: {exc}"[:300]
            waiting(reason)
            log.warning("waiting for %s; retrying in %.2fs", reason, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
            continue
        waiting(None)
        return
