"""Group commit of single submissions (`GroupCommit.submit_one`), against a stand-in application:
requests that wait together share one `submit_group` call, each gets its own answer, and a group that
fails is recorded again one by one, so a bad submission fails alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from services.intake.adapters.group_commit import Busy, GroupCommit
from services.intake.application import Incoming, Request, Result


class StandInApp:
    """Numbers submissions per book; a fact {"poison": true} makes its whole call fail. Each call waits
    for `gate` (when set), so that the test decides when a commit finishes."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.seqs: dict[str, int] = {}
        self.gate: threading.Event | None = None

    def submit_group(self, requests: Sequence[Request]) -> list[Result]:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.calls.append([r.item.raw for r in requests])
        if any(r.item.raw.get("poison") for r in requests):
            raise ValueError("poison")
        results = []
        for r in requests:
            self.seqs[r.book] = self.seqs.get(r.book, 0) + 1
            results.append(Result("accepted", r.item.raw["id"], self.seqs[r.book]))
        return results


class Woken:
    """Counts the wake-ups of the outbox relay."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def service() -> tuple[GroupCommit, StandInApp]:
    app = StandInApp()
    store = SimpleNamespace(app=app)  # what GroupCommit reads of the store: its application
    return GroupCommit(store, asyncio.Lock(), on_recorded=Woken()), app  # type: ignore[arg-type]


async def _started(intake: GroupCommit, app: StandInApp, facts: list[dict[str, Any]]) -> list[Any]:
    """Submit `facts` concurrently while the first commit is held, so the others queue behind it."""
    app.gate = threading.Event()
    tasks = [asyncio.create_task(intake.submit_one("b", Incoming(f))) for f in facts]
    await asyncio.sleep(0.05)  # all queued; the first request's commit is waiting for the gate
    app.gate.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_requests_waiting_together_share_one_commit_each_with_its_own_seq(
    service: tuple[GroupCommit, StandInApp],
) -> None:
    intake, app = service
    answers = await _started(intake, app, [{"id": f"f{k}"} for k in range(6)])
    assert [a.fact_id for a in answers] == [f"f{k}" for k in range(6)]
    assert sorted(a.seq for a in answers) == [1, 2, 3, 4, 5, 6]
    assert [len(call) for call in app.calls] == [1, 5]  # the first alone, the rest together
    assert isinstance(intake.on_recorded, Woken) and intake.on_recorded.count == 2  # once per commit
    assert intake.waiting == [] and not intake.books_lock.locked()


async def test_a_bad_submission_fails_alone_after_its_group_fails(
    service: tuple[GroupCommit, StandInApp],
) -> None:
    intake, app = service
    facts = [{"id": "f0"}, {"id": "f1"}, {"id": "bad", "poison": True}, {"id": "f3"}]
    answers = await _started(intake, app, facts)
    assert isinstance(answers[2], ValueError)
    assert [a.fact_id for k, a in enumerate(answers) if k != 2] == ["f0", "f1", "f3"]
    # The group [f1, bad, f3] failed as a whole and was then recorded one by one.
    assert [[f["id"] for f in call] for call in app.calls] == [
        ["f0"], ["f1", "bad", "f3"], ["f1"], ["bad"], ["f3"],
    ]
    assert not intake.books_lock.locked()


async def test_busy_when_the_writer_is_not_free_in_time_and_then_nothing_of_it_is_recorded(
    service: tuple[GroupCommit, StandInApp],
) -> None:
    intake, app = service
    await intake.books_lock.acquire()  # e.g. a long bulk request
    with pytest.raises(Busy):
        await intake.submit_one("b", Incoming({"id": "late"}), wait_s=0.05)
    assert intake.waiting == []
    intake.books_lock.release()
    answer = await intake.submit_one("b", Incoming({"id": "next"}))
    assert (answer.fact_id, answer.seq) == ("next", 1) and app.calls == [[{"id": "next"}]]
