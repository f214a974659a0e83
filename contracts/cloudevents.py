"""CloudEvents 1.0 in Kafka binary mode: the event's attributes travel as `ce_*` headers, the body is
the data (JSON), and W3C trace context rides along as `traceparent` / `tracestate` headers.

Identity numbers never go into headers (tools log headers freely): `subject` names a book and a
message, never a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
_REQUIRED = ("ce_id", "ce_source", "ce_type", "ce_specversion")


class CloudEventError(ValueError):
    """The headers are not a CloudEvents 1.0 binary-mode event."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime | None = None
    content_type: str = CONTENT_TYPE
    traceparent: str | None = None
    tracestate: str | None = None

    def headers(self) -> dict[str, str]:
        """Kafka headers (binary content mode, CloudEvents Kafka protocol binding 1.0)."""
        out = {
            "ce_specversion": SPEC_VERSION,
            "ce_id": self.id,
            "ce_source": self.source,
            "ce_type": self.type,
            "content-type": self.content_type,
        }
        if self.subject is not None:
            out["ce_subject"] = self.subject
        if self.time is not None:
            out["ce_time"] = _rfc3339(self.time)
        if self.traceparent:
            out["traceparent"] = self.traceparent
        if self.tracestate:
            out["tracestate"] = self.tracestate
        return out


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise CloudEventError("ce_time must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: str | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def from_headers(headers: Mapping[str, str | bytes] | list[tuple[str, bytes]]) -> CloudEvent:
    """Read a binary-mode CloudEvent from Kafka headers (a dict, or aiokafka's list of pairs)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    h = {name.lower(): _text(value) for name, value in pairs}
    missing = [name for name in _REQUIRED if not h.get(name)]
    if missing:
        raise CloudEventError(f"missing CloudEvents headers: {', '.join(missing)}")
    if h["ce_specversion"] != SPEC_VERSION:
        raise CloudEventError(f"ce_specversion {h['ce_specversion']!r} is not {SPEC_VERSION}")
    moment = None
    if raw_time := h.get("ce_time"):
        try:
            moment = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
        except ValueError:
            raise CloudEventError(f"ce_time {raw_time!r} is not RFC 3339") from None
    return CloudEvent(
        id=h["ce_id"], source=h["ce_source"], type=h["ce_type"], subject=h.get("ce_subject"), time=moment,
        content_type=h.get("content-type", CONTENT_TYPE), traceparent=h.get("traceparent"),
        tracestate=h.get("tracestate"),
    )
