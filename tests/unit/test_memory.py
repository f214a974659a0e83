"""services/runtime/memory.py: glibc's arenas limited and free memory given back, on this platform."""

from __future__ import annotations

import asyncio
import platform

import pytest

from services.runtime import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_glibc_takes_the_arena_limit_and_the_periodic_trim_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.limit_arenas()
    trims: list[bool] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: trims.append(True))

    async def two_periods() -> None:
        task = asyncio.create_task(memory.trim_periodically(0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(two_periods())
    assert len(trims) >= 2
