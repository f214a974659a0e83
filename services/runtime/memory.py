"""glibc's allocator, asked to keep a service's resident memory close to what it holds (issue 15.1).

Measured on eligibility during a city year (/proc/PID/smaps, 14 minutes in): of 338 MB resident,
151 MB were glibc's per-thread arenas. Each thread that allocates (the services run their stores'
work in a pool of threads) gets an arena of its own, up to eight per core, and memory freed in one
stays there, split in holes, for that arena's thread alone. So:

- `limit_arenas`: at most `ARENAS` arenas (`mallopt(M_ARENA_MAX)`, as `MALLOC_ARENA_MAX` does), set
  before any thread starts;
- `release_free_memory`: `malloc_trim(0)`, which gives the free pages inside every arena back to the
  system, run every `TRIM_EVERY_S` by `trim_periodically`.

Elsewhere (another C library: musl, macOS) both do nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2
TRIM_EVERY_S = 5.0


@cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_arenas() -> bool:
    """At most `ARENAS` malloc arenas from now on; False where this is not glibc."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, ARENAS) == 1)


def release_free_memory() -> None:
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


async def trim_periodically(every_s: float = TRIM_EVERY_S) -> None:
    """Run `release_free_memory` every `every_s` seconds (off the event loop: it walks the arenas)."""
    if _glibc() is None:
        return
    while True:
        await asyncio.sleep(every_s)
        await asyncio.to_thread(release_free_memory)
