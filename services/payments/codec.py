"""The payments domain events as plain JSON data, to store them in the event store and read them back.

`encode(event)` gives a dict of JSON values (`type` names the event class; times are ISO 8601 with
their offset; a money line is an object; batch entries and repayment allocations are lists of
objects) and `decode(data)` rebuilds the identical frozen dataclass. Event class names are part of the
stored data: renaming one breaks replay (add an alias to `EVENT_TYPES` instead).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from services.payments.domain import events as e
from services.payments.domain.batching import DisbursementEntry
from services.payments.domain.lines import Line

EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        e.DecisionReceived, e.OrderCreated, e.OrderAwaitingBudget, e.OrderCommitted, e.OrderCancelled,
        e.ReceivableRaised, e.ReceivableOffset, e.AppropriationSet, e.BatchCut, e.PaymentConfirmed,
        e.PaymentReturned, e.RepaymentReceived,
    )
}


def _encode_value(name: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Line):
        return value._asdict()
    if name == "entries":
        return [asdict(entry) for entry in value]
    if name == "allocations":
        return [{"claim_id": a.claim_id, "amount_fen": a.amount_fen} for a in value]
    return value


def _decode_value(name: str, value: Any) -> Any:
    if name == "at":
        return datetime.fromisoformat(value)
    if name == "line":
        return Line(**value)
    if name == "entries":
        return tuple(DisbursementEntry(**entry) for entry in value)
    if name == "allocations":
        return tuple(e.Allocation(a["claim_id"], a["amount_fen"]) for a in value)
    return value


def encode(event: e.PaymentsEvent) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in fields(event):
        out[f.name] = _encode_value(f.name, getattr(event, f.name))
    return out


def decode(data: dict[str, Any]) -> e.PaymentsEvent:
    cls = EVENT_TYPES[data["type"]]
    event: e.PaymentsEvent = cls(**{f.name: _decode_value(f.name, data[f.name]) for f in fields(cls)})
    return event
