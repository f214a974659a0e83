"""Logged-in users: a random session id in an HttpOnly, SameSite=Strict cookie; the API key stays in
the console's memory (never in the browser after login). Each session has its own CSRF token, which
every form that changes something posts back (`Sessions.valid_csrf`).

Bounded: at most `MAX_SESSIONS`, each for `SESSION_TTL_S`; the oldest goes first.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from flexledger.console.i18n import DEFAULT_LANG, Lang
from services.runtime.access.principals import Principal

COOKIE = "flexledger_console"
LANG_COOKIE = "flexledger_lang"  # the language before login; not a secret
LOGIN_CSRF_COOKIE = "flexledger_login_csrf"  # the login form's own CSRF token (no session yet)
MAX_SESSIONS = 1_000
SESSION_TTL_S = 8 * 3600


@dataclass
class Session:
    id: str
    api_key: str
    principal: Principal
    csrf: str
    started_s: float
    lang: Lang = DEFAULT_LANG
    unmasked_views: int = field(default=0)


class Sessions:
    def __init__(self) -> None:
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def start(self, api_key: str, principal: Principal, lang: Lang) -> Session:
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.popitem(last=False)
        session = Session(secrets.token_urlsafe(32), api_key, principal, secrets.token_urlsafe(32),
                          time.monotonic(), lang)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._by_id.get(session_id or "")
        if session is None:
            return None
        if time.monotonic() - session.started_s > SESSION_TTL_S:
            del self._by_id[session.id]
            return None
        return session

    def end(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)


def valid_csrf(session: Session, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(session.csrf, token)
