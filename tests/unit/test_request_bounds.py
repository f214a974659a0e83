"""`services.runtime.http_bounds.RequestBounds` as plain ASGI: what it answers itself, and what the app
behind it receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

from services.runtime.http_bounds import RequestBounds


class App:
    """Records the body it was given and answers 204."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        assert not message["more_body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _call(bounds: RequestBounds, messages: list[dict[str, Any]], *, stall: bool = False,
                path: str = "/v1/books/main/x", headers: list[tuple[bytes, bytes]] | None = None,
                ) -> tuple[int, dict[str, Any] | None]:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if stall:
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers or []}
    await bounds(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body) if body else None


def _chunk(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_in_chunks_under_the_cap_reaches_the_app_whole() -> None:
    app = App()
    chunks = [_chunk(b"12345", True), _chunk(b"67890", False)]
    status, _ = await _call(RequestBounds(app, max_bytes=10), chunks)
    assert (status, app.bodies) == (204, [b"1234567890"])


async def test_a_body_past_the_cap_is_a_413_and_the_app_is_not_called() -> None:
    app = App()
    chunks = [_chunk(b"123456", True), _chunk(b"78901", True)]
    status, body = await _call(RequestBounds(app, max_bytes=10), chunks)
    assert (status, body, app.bodies) == (413, {"detail": "body: larger than 10 bytes"}, [])


async def test_a_declared_length_past_the_cap_is_a_413_before_reading() -> None:
    app = App()
    status, _ = await _call(RequestBounds(app, max_bytes=10), [], stall=True,
                            headers=[(b"content-length", b"11")])
    assert (status, app.bodies) == (413, [])


async def test_a_body_that_does_not_arrive_is_a_408() -> None:
    app = App()
    status, body = await _call(RequestBounds(app, timeout_s=0.05), [_chunk(b"{", True)], stall=True)
    assert status == 408 and body is not None and "did not arrive" in body["detail"]
    assert app.bodies == []


async def test_a_control_character_in_the_path_is_a_400() -> None:
    app = App()
    status, _ = await _call(RequestBounds(app), [_chunk(b"", False)], path="/v1/books/main/balances/\x00")
    assert (status, app.bodies) == (400, [])


async def test_a_duplicate_key_is_a_400_only_in_json() -> None:
    app = App()
    bounds = RequestBounds(app)
    twice = [_chunk(b'{"a": 1, "a": 2}', False)]
    assert (await _call(bounds, twice, headers=[(b"content-type", b"application/json")]))[0] == 400
    assert (await _call(bounds, list(twice), headers=[(b"content-type", b"text/plain")]))[0] == 204
    assert app.bodies == [b'{"a": 1, "a": 2}']
