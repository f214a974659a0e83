"""Shared by the intake integration tests: running intake alone, issuing keys, building valid facts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from contracts.identifiers import ric_check_character, uscc_check_character
from contracts.messages import BOOK_HTTP_HEADER
from services.intake.aggregates import FactSubmission
from services.runtime.settings import Settings

AT = "2021-07-05T10:00:00+08:00"


def start_intake_only(settings: Settings) -> Settings:
    """Intake alone, as a process, with `settings` (e.g. low limits); the other services stopped."""
    from flexledger import devstack

    for name in reversed(devstack.SERVICES):
        devstack.stop_service(name, settings)
    devstack.start_service("intake", settings, timeout=90)
    return settings


def stop_intake(settings: Settings) -> None:
    from flexledger import devstack

    devstack.stop_service("intake", settings)


def operator_token(settings: Settings) -> str:
    from flexledger.submit import operator_key

    return operator_key(settings)


def issue_key(
    settings: Settings, role: str, enterprise: str | None = None, label: str = "test"
) -> tuple[str, str]:
    """A new key in the access store, written as the operator command does; (key id, token)."""
    from services.runtime.access.credentials import issue_key as issue
    from services.runtime.access.credentials import new_api_key
    from services.runtime.access.store import AccessApplication

    key = new_api_key()
    app = AccessApplication(settings)
    try:
        app.change_keys(
            lambda ring: issue(
                ring,
                role=role,
                at=datetime.now(UTC),
                key=key,  # type: ignore[arg-type]
                enterprise=enterprise,
                label=label,
            )
        )
    finally:
        app.close()
    return key.key_id, key.token


def book() -> str:
    return f"test-{uuid.uuid4().hex}"


def url(settings: Settings, path: str) -> str:
    return f"http://127.0.0.1:{settings.intake_port}{path}"


def headers(
    token: str | None, book_name: str, content_type: str | None = "application/json"
) -> dict[str, str]:
    out = {BOOK_HTTP_HEADER: book_name}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    if content_type is not None:
        out["Content-Type"] = content_type
    return out


def enterprise_code(index: int) -> str:
    first17 = f"91320213MA{index:07d}"
    return first17 + uscc_check_character(first17)


def worker_id(index: int) -> str:
    first17 = f"320213199001{index % 28 + 1:02d}{index % 1000:03d}"
    return first17 + ric_check_character(first17)


E1, E2 = enterprise_code(1), enterprise_code(2)
W1, W2 = worker_id(1), worker_id(2)


def enterprise_registered(fact_id: str, enterprise: str = E1) -> dict[str, Any]:
    return {
        "id": fact_id,
        "type": "enterprise_registered",
        "at": "2021-06-01T09:00:00+08:00",
        "enterprise": enterprise,
        "name": "锡城到家服务平台",
    }


def worker_registered(fact_id: str, worker: str = W1) -> dict[str, Any]:
    return {
        "id": fact_id,
        "type": "worker_registered",
        "at": "2021-06-01T09:30:00+08:00",
        "worker": worker,
        "name": "测试甲",
        "residence": "320213",
        "residence_since": "2015-01-01",
    }


def monthly_report(
    fact_id: str, month: str = "2021-06", enterprise: str = E1, worker: str = W1, income_fen: Any = 210000
) -> dict[str, Any]:
    return {
        "id": fact_id,
        "type": "monthly_report",
        "at": AT,
        "enterprise": enterprise,
        "worker": worker,
        "month": month,
        "income_fen": income_fen,
        "hours": 168,
        "district": "320213",
    }


def contribution_paid(fact_id: str, worker: str = W1, month: str = "2021-06") -> dict[str, Any]:
    return {
        "id": fact_id,
        "type": "contribution_paid",
        "at": AT,
        "worker": worker,
        "month": month,
        "amount_fen": 90000,
    }


def log_position(settings: Settings) -> int:
    """The end of intake's notification log now: pass it to `recorded` to read only what follows."""
    from services.intake.application import IntakeApplication

    app = IntakeApplication(settings)
    try:
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


def recorded(settings: Settings, book_name: str, after: int = 0) -> list[Any]:
    """Intake's stored submissions of a book (Recorded and ReuseRejected) after log position `after`."""
    from services.intake.application import IntakeApplication

    app = IntakeApplication(settings)
    try:
        found, position = [], after
        while batch := app.notifications(position, 5000):
            position = batch[-1][0]
            found += [
                event
                for _, event in batch
                if isinstance(event, FactSubmission.Recorded | FactSubmission.ReuseRejected)
                and event.book == book_name
            ]
        return found
    finally:
        app.close()


async def eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        if result := await probe():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
