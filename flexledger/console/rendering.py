"""What every page of the console shares: rendering a template in the user's language, the session
check every page starts with, the refusals, and reading a posted form."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from flexledger.console import pages
from flexledger.console.i18n import LANGS, Lang, chosen, label, value, when, yuan
from flexledger.console.sessions import COOKIE, LANG_COOKIE, Session, Sessions

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_FORM_BYTES = 4_096


class Refused(Exception):
    """A page refused: shown as the refused page with `status`."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def lang_of(request: Request, session: Session | None) -> Lang:
    return session.lang if session is not None else chosen(request.cookies.get(LANG_COOKIE))


def render(request: Request, template: str, session: Session | None, context: dict[str, Any],
           status: int = 200) -> HTMLResponse:
    lang = lang_of(request, session)
    base = {"request": request, "session": session, "lang": lang, "langs": LANGS,
            "t": lambda key: label(key, lang), "v": lambda code: value(code, lang),
            "yuan": lambda fen: yuan(fen, lang),
            "when": lambda moment: when(moment, lang), "here": here(request)}
    response = TEMPLATES.TemplateResponse(request, template, {**base, **context}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def page_session(request: Request, sessions: Sessions, page: pages.Page) -> Session:
    """The request's session if it may open `page`; else the redirect to login (raised) or 403."""
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise ToLogin(here(request))
    if not pages.may_open(session.principal, page):
        raise Refused(403, f"{session.principal.role}: {page}")
    return session


class ToLogin(Exception):
    """No session: redirected to the login page, and back to `back` after it."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


async def form_of(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def safe_back(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else "/"
