"""What an HTTP service refuses before a handler runs, and how a refusal reads (docs/design/http-bounds.md).

- `RequestBounds` (ASGI middleware): a request body above `max_bytes` is answered 413 — at once when its
  Content-Length says so, else as soon as the bytes read pass the cap — so that no body is read or
  parsed in full past the cap; a body that does not arrive within `timeout_s` is answered 408; a path
  holding a control character (`%00`, `%0a`, DEL, C1) is answered 400 before routing, so that no such
  text reaches a handler or PostgreSQL (which cannot store NUL); a JSON body with a key given twice is
  answered 400 (parsers disagree on which one counts; intake refuses them too). The body read is
  replayed to the app.
- `install_refusal_handlers`: FastAPI's 422 rendered without the offending input. The default handler
  echoes `input`, which fails to render for `1e999` (infinity is not JSON: a 500 while answering a
  422) and would echo identity numbers; the location, message and type name the field and the reason.
- `Refusal` and `refusals`: the response model and OpenAPI entries of these answers, so that each
  service documents every status it can give.
- `TEXT_PATTERN` / `Text`: a string with no control character (C0, DEL, C1); with pydantic's strict
  mode a lone surrogate is refused too (it is not valid Unicode text).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from contracts.identifiers import mask_identifiers
from contracts.json_objects import DuplicateKey, unique_keys
from services.runtime.telemetry import ASGIApp, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024  # the largest command body of eligibility or payments is under 1 KiB
BODY_TIMEOUT_S = 30.0  # as intake's request timeout: for the body to arrive
CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f"
TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*$"
_CONTROL = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)))

Text = Annotated[str, StringConstraints(pattern=TEXT_PATTERN)]


class Refusal(BaseModel):
    """The request was refused before anything was recorded."""

    detail: str = Field(description="what was refused and why")


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the refusals this module (and the framework) answer."""
    described = {
        400: "the path holds a control character, or the body is not readable JSON (or gives a key twice)",
        408: f"the body did not arrive within {BODY_TIMEOUT_S:.0f} s",
        413: "the body is larger than the service accepts",
    }
    return {status: {"model": Refusal, "description": described[status]} for status in statuses}


BODY_REFUSALS = refusals(400, 408, 413)


def _refuse(status: int, detail: str, *, close: bool = False) -> JSONResponse:
    """`close`: the connection is closed after the answer (the client need not send the rest of a body
    the service will not read); otherwise it stays open for the next request."""
    headers = {"Connection": "close"} if close else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class RequestBounds:
    """ASGI middleware: 413 above `max_bytes`, 408 after `timeout_s`, 400 for a control character in
    the path; otherwise the app gets the body, read once, in one message."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, timeout_s: float = BODY_TIMEOUT_S
    ) -> None:
        assert max_bytes > 0 and timeout_s > 0
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _CONTROL.isdisjoint(scope.get("path", "")):
            await _refuse(400, "path: a control character is not allowed")(scope, receive, send)
            return
        refusal = self._declared_size_refusal(scope)
        if refusal is None:
            try:
                body = await asyncio.wait_for(self._read(receive), self.timeout_s)
            except _TooLarge:
                refusal = self._too_large()
            except TimeoutError:
                refusal = _refuse(408, f"body: did not arrive within {self.timeout_s:.0f} s", close=True)
            else:
                refusal = _duplicate_key_refusal(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _declared_size_refusal(self, scope: Scope) -> JSONResponse | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return self._too_large()
        return None

    def _too_large(self) -> JSONResponse:
        return _refuse(413, f"body: larger than {self.max_bytes} bytes", close=True)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _TooLarge(Exception):
    pass


def _duplicate_key_refusal(scope: Scope, body: bytes) -> JSONResponse | None:
    """400 for a JSON body with a key given twice; anything else unreadable is FastAPI's to answer."""
    content_type = next((v for k, v in scope.get("headers", ()) if k == b"content-type"), b"")
    if not body or not content_type.split(b";")[0].strip().lower().endswith(b"json"):
        return None
    try:
        json.loads(body, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        return _refuse(400, f"body: the key {_text(exc.key)!r} is given twice")
    except (ValueError, RecursionError):
        return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read once, then waits on the real one (for a disconnect)."""
    given = False

    async def replayed() -> dict[str, Any]:
        nonlocal given
        if given:
            return dict(await receive())
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def install_refusal_handlers(http: FastAPI) -> None:
    """422 answers that name the field and the reason, and always render (see the module docstring)."""

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": [_safe_error(error) for error in exc.errors()]}, status_code=422)

    http.add_exception_handler(RequestValidationError, invalid_request)


def _safe_error(error: Any) -> dict[str, Any]:
    """One pydantic error as FastAPI's `ValidationError` schema has it, without `input` and `ctx`. A
    location can hold a key of the hostile body (an extra field): cut, masked and made valid text."""
    loc = [part if isinstance(part, int) else _text(str(part)) for part in error.get("loc", ())]
    return {"loc": loc, "msg": _text(str(error.get("msg", "invalid"))), "type": str(error.get("type", ""))}


def _text(text: str, max_chars: int = 120) -> str:
    shown = text if len(text) <= max_chars else text[:max_chars] + "…"
    return mask_identifiers(shown.encode("utf-8", "replace").decode("utf-8"))
