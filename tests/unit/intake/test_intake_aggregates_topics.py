"""Key-ring events that intake recorded in its own log before the access module had a store still
decode (intake's relay reads every event of its log)."""

from __future__ import annotations

from eventsourcing.utils import resolve_topic

import services.intake.aggregates  # noqa: F401  (registers the old topic)
from services.runtime.access.store import ApiKeyRing


def test_intakes_old_key_ring_events_decode_as_the_access_stores() -> None:
    assert resolve_topic("services.intake.aggregates:ApiKeyRing.Opened") is ApiKeyRing.Opened
    assert resolve_topic("services.intake.aggregates:ApiKeyRing.Changed") is ApiKeyRing.Changed
