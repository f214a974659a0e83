"""Intake's notification log as the outbox relay reads it: the events this process recorded come from
memory, exactly as the store would give them back; what another process recorded, from the store."""

from __future__ import annotations

import pytest
from intake_support import book, enterprise_registered, monthly_report

from services.intake.application import Incoming, IntakeApplication
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

CARRIER = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


def _as_stored(pairs: object) -> list[tuple[int, type, dict[str, object]]]:
    return [(position, type(event), vars(event)) for position, event in pairs]  # type: ignore[attr-defined]


def test_recorded_events_come_from_memory_as_the_store_has_them(infra: Settings) -> None:
    app, other = IntakeApplication(infra), IntakeApplication(infra)
    try:
        start = int(app.recorder.max_notification_id() or 0)
        mine = book()
        app.submit_many(mine, [Incoming(enterprise_registered("e1")), Incoming(monthly_report("r1")),
                               Incoming({**enterprise_registered("e1"), "name": "other"})], CARRIER)
        from_memory = app.notifications(start, 100)
        assert [event.seq for _, event in from_memory] == [1, 2, 3]  # type: ignore[attr-defined]
        kept = app.recent.get([position for position, _ in from_memory])
        assert kept is not None  # the very objects recorded, not read back:
        assert all(a is b for a, b in zip(kept, (e for _, e in from_memory), strict=True))
        assert _as_stored(from_memory) == _as_stored(other.notifications(start, 100))

        theirs = book()  # another process's write: this one has not got it in memory
        other.submit_many(theirs, [Incoming(enterprise_registered("e2"))], CARRIER)
        app.submit_many(mine, [Incoming(enterprise_registered("e3"))], CARRIER)
        mixed = app.notifications(start, 100)
        assert [(event.book, event.seq) for _, event in mixed] == [  # type: ignore[attr-defined]
            (mine, 1), (mine, 2), (mine, 3), (theirs, 1), (mine, 4)]
        assert _as_stored(mixed) == _as_stored(other.notifications(start, 100))
        assert _as_stored(app.notifications(mixed[2][0], 2)) == _as_stored(mixed[3:])
    finally:
        app.close()
        other.close()
