"""Issue 13's findings against eligibility and payments, one test each, on the running services: every
hostile request is refused with a 4xx that names the field and the reason, the service answers the next
request on the same connection, and the book is left as it was (a refused command creates no book)."""

from __future__ import annotations

import http.client
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from intake_support import operator_token

from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

WORKER = "320213197804121019"
TWENTY_MB = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def running(services: Settings) -> Iterator[Settings]:
    yield services


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator_token(settings)}"}


def _book() -> str:
    return f"bounds-{uuid.uuid4().hex[:16]}"


def _payments(settings: Settings, path: str) -> str:
    return f"http://127.0.0.1:{settings.payments_port}{path}"


def _appropriate(settings: Settings, book: str, content: bytes) -> httpx.Response:
    return httpx.post(_payments(settings, f"/v1/books/{book}/appropriations"), content=content, timeout=30,
                      headers={**_auth(settings), "Content-Type": "application/json"})


def _named(response: httpx.Response, field: str) -> str:
    """The 422's message for `field`: the answer names the field and the reason."""
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if e["loc"][-1] == field]
    return str(error["msg"])


def _unchanged(settings: Settings, book: str) -> None:
    """The refused command created nothing: the book does not exist."""
    found = httpx.get(_payments(settings, f"/v1/books/{book}/reconciliation"), headers=_auth(settings),
                      timeout=30)
    assert found.status_code == 200
    assert (found.json()["exists"], found.json()["stream_version"]) == (False, 0)


def _raw_request(port: int, head: bytes, body_start: bytes) -> bytes:
    """Send a request's head and the start of its body, then read the answer without sending the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body_start)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_after_seq_beyond_int64_is_a_422(running: Settings) -> None:
    url = f"http://127.0.0.1:{running.eligibility_port}/v1/books/main/decisions"
    with httpx.Client(headers=_auth(running), timeout=30) as client:
        for after_seq in ("9223372036854775808", "1" * 400):
            beyond = client.get(url, params={"after_seq": after_seq})
            assert "9223372036854775807" in _named(beyond, "after_seq")
        assert _named(client.get(url, params={"after_seq": "-1"}), "after_seq")
        assert client.get(url, params={"after_seq": 2**63 - 1}).status_code == 200


def test_nul_in_a_beneficiary_is_a_4xx_and_the_connection_survives(running: Settings) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", running.payments_port, timeout=30)
    headers = _auth(running)
    try:
        connection.connect()
        sock = connection.sock
        for path in ("/v1/books/main/balances/%00", f"/v1/books/main/balances/{WORKER[:9]}%00{WORKER[10:]}",
                     "/v1/books/main/balances/%0D%0AX-Injected:%201", "/v1/books/%00/orders"):
            connection.request("GET", path, headers=headers)
            refused = connection.getresponse()
            assert refused.status == 400, path
            assert b"control character" in refused.read()
        connection.request("GET", f"/v1/books/{_book()}/balances/{WORKER}", headers=headers)
        unknown = connection.getresponse()
        assert unknown.status == 404
        unknown.read()
        connection.request("GET", f"/v1/books/{_book()}/orders", headers=headers)
        assert connection.getresponse().status == 200
        assert connection.sock is sock  # one connection, kept alive throughout
    finally:
        connection.close()


def test_a_20_mb_appropriation_is_a_413(running: Settings) -> None:
    book = _book()
    head = (f"POST /v1/books/{book}/appropriations HTTP/1.1\r\nHost: payments\r\n"
            f"Authorization: Bearer {operator_token(running)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {TWENTY_MB}\r\n\r\n").encode()
    start = b'{"program": "talent", "reference": "' + b"x" * 1024
    declared = _raw_request(running.payments_port, head, start)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]  # answered with 1 KiB of the 20 MB sent
    chunked_head = head.replace(f"Content-Length: {TWENTY_MB}".encode(), b"Transfer-Encoding: chunked")
    chunk = b"8000\r\n" + b" " * 0x8000 + b"\r\n"  # 32 KiB: past the cap, far from 20 MB
    streamed = _raw_request(running.payments_port, chunked_head, chunk)
    assert streamed.startswith(b"HTTP/1.1 413"), streamed[:200]
    assert b"larger than" in streamed
    _unchanged(running, book)


def test_amount_1e999_is_a_clean_422(running: Settings) -> None:
    book = _book()
    for amount in (b"1e999", b"-1e999", b"NaN", b"Infinity", b"1" * 5000):
        response = _appropriate(running, book, b'{"program": "talent", "fiscal_year": 2024, "amount_fen": '
                                + amount + b"}")
        if amount == b"1" * 5000:  # beyond Python's digit limit: the body is not readable JSON
            assert response.status_code in (400, 422), response.text
        else:
            assert "integer" in _named(response, "amount_fen")
    _unchanged(running, book)


def test_unknown_programme_is_refused(running: Settings) -> None:
    book = _book()
    for program in ("nonexistent_prog", "new_employment", "Talent", "talent\x00"):
        fields = {"program": program, "fiscal_year": 2024, "amount_fen": 1}
        body = httpx.Request("POST", "/", json=fields).content
        assert "social_insurance" in _named(_appropriate(running, book, body), "program")
    _unchanged(running, book)


def test_amount_as_string_is_refused(running: Settings) -> None:
    book = _book()
    for body in (b'{"program": "talent", "fiscal_year": 2024, "amount_fen": "5"}',
                 b'{"program": "talent", "fiscal_year": 2024, "amount_fen": 5.0}',
                 b'{"program": "talent", "fiscal_year": 2024, "amount_fen": true}'):
        assert _named(_appropriate(running, book, body), "amount_fen")
    year_as_text = b'{"program": "talent", "fiscal_year": "2024", "amount_fen": 5}'
    assert _named(_appropriate(running, book, year_as_text), "fiscal_year")
    repayment = httpx.post(_payments(running, f"/v1/books/{book}/repayments"), headers=_auth(running),
                           json={"beneficiary": WORKER, "amount_fen": "100", "reference": "BANK-1"},
                           timeout=30)
    assert _named(repayment, "amount_fen")
    _unchanged(running, book)


def test_an_appropriation_of_10_to_the_15_fen_is_refused(running: Settings) -> None:
    book = _book()
    body = b'{"program": "talent", "fiscal_year": 2024, "amount_fen": 1000000000000000}'
    assert "10000000000000" in _named(_appropriate(running, book, body), "amount_fen")
    _unchanged(running, book)


@pytest.mark.parametrize("fiscal_year", [2099, 2020, 10**30])
def test_an_appropriation_for_an_impossible_fiscal_year_is_refused(
    running: Settings, fiscal_year: int,
) -> None:
    book = _book()
    body = f'{{"program": "talent", "fiscal_year": {fiscal_year}, "amount_fen": 1}}'.encode()
    assert _named(_appropriate(running, book, body), "fiscal_year")
    _unchanged(running, book)


def test_an_appropriation_within_its_bounds_is_recorded(running: Settings) -> None:
    book = _book()
    fields = {"program": "talent", "fiscal_year": 2024, "amount_fen": 10**13, "reference": "锡财预 2024-1"}
    response = _appropriate(running, book, httpx.Request("POST", "/", json=fields).content)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["outcome"], body["appropriated_fen"]) == ("recorded", 10**13)
