"""`flexledger dead-letters redrive`: the owning service found by its 404s, the answer as an exit status."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from flexledger.dead_letters_cli import app
from flexledger.exits import Exit

LETTER = str(uuid.uuid4())
TAKEN_IN = {"dead_letter_id": LETTER, "consumer_group": "payments", "source": "t[0]@1", "result": "accepted",
            "detail": "recorded", "by": "operator k1", "at": "2026-12-04T00:00:00Z"}


def _run(monkeypatch: pytest.MonkeyPatch, answers: dict[str, tuple[int, dict[str, Any]]],
         *args: str) -> tuple[int, list[str], str]:
    asked: list[str] = []

    def post(url: str, headers: dict[str, str], timeout: float) -> httpx.Response:
        assert headers == {"Authorization": "Bearer flk_operator"}
        service = {18081: "intake", 18082: "eligibility"}.get(httpx.URL(url).port or 0, "payments")
        asked.append(service)
        status, body = answers.get(service, (404, {"outcome": "refused", "reason": "no dead letter"}))
        return httpx.Response(status, json=body)

    monkeypatch.setattr(httpx, "post", post)
    monkeypatch.setenv("FLEXLEDGER_API_KEY", "flk_operator")
    monkeypatch.setenv("FLEXLEDGER_INTAKE_PORT", "18081")
    monkeypatch.setenv("FLEXLEDGER_ELIGIBILITY_PORT", "18082")
    monkeypatch.setenv("FLEXLEDGER_PAYMENTS_PORT", "18083")
    result = CliRunner().invoke(app, ["redrive", LETTER, *args])
    return result.exit_code, asked, result.output


def test_taken_in_by_the_service_that_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    status, asked, printed = _run(monkeypatch, {"payments": (200, TAKEN_IN)})
    assert (status, asked) == (Exit.OK, ["intake", "eligibility", "payments"])
    assert "taken in (recorded)" in printed


def test_refused_again_taken_in_before_and_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = {**TAKEN_IN, "result": "refused", "detail": "flexledger_mac does not match"}
    assert _run(monkeypatch, {"eligibility": (422, refused)})[:2] == (Exit.REFUSED, ["intake", "eligibility"])
    assert _run(monkeypatch, {"payments": (409, TAKEN_IN)}, "--json")[0] == Exit.REFUSED
    assert _run(monkeypatch, {})[0] == Exit.NOT_FOUND
