"""Logging in with an API key, logging out, and the language switch."""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from flexledger.console.i18n import chosen
from flexledger.console.rendering import Refused, ToLogin, form_of, render, safe_back
from flexledger.console.sessions import (
    COOKIE,
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_TTL_S,
    Sessions,
    valid_csrf,
)
from services.runtime.access.principals import Principal

log = logging.getLogger(__name__)
LOGIN_FORM_TTL_S = 3600
Authenticate = Callable[[str], Awaitable[Principal | None]]  # an Authorization header's principal


def login_routes(http: FastAPI, sessions: Sessions, authenticate: Authenticate) -> None:
    @http.exception_handler(ToLogin)
    async def to_login(request: Request, exc: ToLogin) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.back, safe='')}", status_code=303)

    def login_form(request: Request, back: str, failed: bool) -> Response:
        """The login form with a fresh login CSRF token, in a cookie and in the form (double submit):
        another site cannot log a browser in with its own key."""
        token = secrets.token_urlsafe(32)
        context = {"next": back, "failed": failed, "login_csrf": token}
        response = render(request, "login.html", None, context, status=401 if failed else 200)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_FORM_TTL_S, httponly=True,
                            samesite="strict", path="/")
        return response

    @http.get("/login")
    async def login_page(request: Request) -> Response:
        return login_form(request, safe_back(request.query_params.get("next")), failed=False)

    @http.post("/login")
    async def login(request: Request) -> Response:
        form = await form_of(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not hmac.compare_digest(expected, form.get("login_csrf", "")):
            raise Refused(403, "CSRF token missing or wrong: open the login page again")
        key = form.get("api_key", "").strip()
        principal = await authenticate(f"Bearer {key}") if key else None
        if principal is None:
            return login_form(request, safe_back(form.get("next")), failed=True)
        session = sessions.start(key, principal, chosen(request.cookies.get(LANG_COOKIE)))
        log.info("console login", extra={"key_id": principal.key_id, "role": principal.role})
        response = RedirectResponse(safe_back(form.get("next")), status_code=303)
        response.set_cookie(COOKIE, session.id, max_age=SESSION_TTL_S, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @http.post("/logout")
    async def logout(request: Request) -> Response:
        form = await form_of(request)
        session = sessions.get(request.cookies.get(COOKIE))
        if session is not None and not valid_csrf(session, form.get("csrf")):
            raise Refused(403, "CSRF token missing or wrong")
        sessions.end(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @http.post("/lang")
    async def switch_language(request: Request) -> Response:
        form = await form_of(request)
        session = sessions.get(request.cookies.get(COOKIE))
        if session is not None and not valid_csrf(session, form.get("csrf")):
            raise Refused(403, "CSRF token missing or wrong")
        lang = chosen(form.get("to"))
        if session is not None:
            session.lang = lang
        response = RedirectResponse(safe_back(form.get("back")), status_code=303)
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", path="/")
        return response
