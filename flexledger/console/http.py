"""The console's pages (FastAPI, Jinja2 templates, plain forms; no JavaScript needed to read).

Every page: a session (else 303 to /login), the page's roles (`pages.PAGE_ROLES`, else 403), then the
services asked with the user's key (their 401/403 shown as refused). Forms that change something
carry the session's CSRF token (the login form its own). Identity numbers are masked unless an
auditor asks to see them; each such view is first recorded in the access store (`Adapters.record_unmasked`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from contracts.messages import valid_book
from flexledger.audit.evidence import bundle_text
from flexledger.console import pages, timeline
from flexledger.console.ledger import EvidenceRefused, LedgerReads, Proof
from flexledger.console.login import Authenticate, login_routes
from flexledger.console.rendering import Refused, form_of, page_session, render
from flexledger.console.services_api import SERVICE_NAMES, Answer, ServiceName, ServicesApi
from flexledger.console.sessions import COOKIE, Session, Sessions, valid_csrf
from services.runtime.access.principals import Principal

log = logging.getLogger(__name__)
ROWS_SHOWN_MAX = 500
REDRIVABLE: tuple[ServiceName, ...] = SERVICE_NAMES  # every service has the re-drive command
DECISION_ID = re.compile(r"[0-9A-Za-z-]{1,64}")  # as eligibility's `decision_id` filter accepts them
IDENTIFIER = re.compile(r"[0-9A-Z]{18}")  # an identity number or a credit code, as eligibility's `subject`


@dataclass(frozen=True)
class ReplayResult:
    """`flexledger audit replay` of one decision: reproduced (None: not found), what it says, the fact
    the decision rests on as the event store holds it, and its event's hash-chain link (`prev_hash`,
    `hash`: docs/design/audit-format.md)."""

    reproduced: bool | None
    note: str
    fact: dict[str, Any] | None = None
    link: dict[str, str] | None = None


Replay = Callable[[str, str], Awaitable[ReplayResult]]
KeptDeadLetters = Callable[[], Awaitable[list[dict[str, Any]]]]  # dead_letter_store.kept, off the loop
# Records that `principal` saw identity numbers in clear on `page` of `book` (what it was shown):
# an audit event in the access store; raises when it cannot (the view is then refused).
RecordUnmasked = Callable[[Principal, str, str, Any], Awaitable[None]]


@dataclass(frozen=True)


class Adapters:
    """What the pages read through: the services' APIs and, from the database, the key ring (login),
    replay and the kept dead letters; and where an unmasked view is recorded."""

    api: ServicesApi
    authenticate: Authenticate
    replay: Replay
    kept: KeptDeadLetters
    record_unmasked: RecordUnmasked
    ledger: LedgerReads  # proofs, evidence bundles and a subject's facts, read from the ledger itself


@dataclass(frozen=True)


class ConsoleConfig:
    default_book: str
    trace_url_prefix: str  # + trace id: the trace viewer's page of one trace


def create_http(adapters: Adapters, config: ConsoleConfig, sessions: Sessions | None = None) -> FastAPI:
    http = FastAPI(title="flexledger console", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    sessions = sessions if sessions is not None else Sessions()
    login_routes(http, sessions, adapters.authenticate)
    _reading_routes(http, sessions, adapters, config)
    _decision_routes(http, sessions, adapters, config)

    @http.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return render(request, "refused.html", sessions.get(request.cookies.get(COOKIE)),
                      {"reason": exc.reason, "status": exc.status}, status=exc.status)

    @http.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "serving"}

    return http


def book_of(request: Request, config: ConsoleConfig) -> str:
    book = request.query_params.get("book") or config.default_book
    if not valid_book(book):
        raise Refused(400, "not a book name")
    return book


async def unmasked(request: Request, session: Session, record: RecordUnmasked, page: str, book: str,
                   shown: Any) -> bool:
    """Whether this view shows identity numbers in clear: an auditor who asked. Recorded first as an
    audit event in the access store (and logged); when it cannot be recorded, the view is refused."""
    if request.query_params.get("unmask") != "1" or not pages.may_unmask(session.principal):
        return False
    principal = session.principal
    log.warning("console.unmasked_view", extra={"event": "console.unmasked_view", "key_id": principal.key_id,
                                                "role": principal.role, "page": page})
    try:
        await record(principal, page, book, shown)
    except Exception:
        log.exception("recording an unmasked view failed; not shown")
        raise Refused(503, "the view could not be recorded in the access audit; retry") from None
    session.unmasked_views += 1
    return True


def checked(answer: Answer) -> dict[str, Any]:
    """A service's body, or the refusal shown to the user (its 401/403 as the console's)."""
    if answer.ok:
        return answer.body
    if answer.status in (401, 403):
        raise Refused(403, str(answer.body.get("reason", "refused by the service")))
    raise Refused(503, f"service answered {answer.status or 'nothing'}")


# ---- reading pages ----------------------------------------------------------------------------------

def _reading_routes(http: FastAPI, sessions: Sessions, adapters: Adapters, config: ConsoleConfig) -> None:
    api = adapters.api

    @http.get("/")
    async def overview(request: Request) -> Response:
        session = page_session(request, sessions, "overview")
        book = book_of(request, config)
        # The nine calls at once: the page waits for the slowest, not for their sum.
        metrics, healths, progresses = await asyncio.gather(
            asyncio.gather(*(api.metrics(name) for name in SERVICE_NAMES)),
            asyncio.gather(*(api.get(name, "/health") for name in SERVICE_NAMES)),
            asyncio.gather(*(api.get(name, f"/v1/books/{book}/progress", session.api_key)
                             for name in SERVICE_NAMES)))
        texts: dict[str, str] = dict(zip(SERVICE_NAMES, metrics, strict=True))
        rows = [{"service": name, "status": health.body.get("status", "down"),
                 "reasons": health.body.get("reasons", []), "progress": _progress_figure(progress),
                 "lag": pages.lag_messages(texts[name])}
                for name, health, progress in zip(SERVICE_NAMES, healths, progresses, strict=True)]
        return render(request, "overview.html", session, {
            "book": book, "services": rows, "dead_letters": pages.dead_letters(texts),
            "checkpoint_age_s": pages.checkpoint_age_s(texts["eligibility"])})

    @http.get("/payments")
    async def payments(request: Request) -> Response:
        session = page_session(request, sessions, "payments")
        book = book_of(request, config)
        year = request.query_params.get("fiscal_year", "")
        fiscal_year = int(year) if year.isdigit() and len(year) == 4 else None
        answers = await asyncio.gather(*(
            api.get("payments", f"/v1/books/{book}/{what}", session.api_key,
                    {"fiscal_year": fiscal_year} if what == "totals" and fiscal_year else None)
            for what in ("totals", "trial-balance", "orders", "entries")))
        totals, balance, orders_body, entries_body = (checked(answer) for answer in answers)
        waiting = [o for o in orders_body.get("orders", []) if o.get("state") == "awaiting_budget"]
        entries = entries_body.get("entries", [])[-ROWS_SHOWN_MAX:]
        record = adapters.record_unmasked
        clear = await unmasked(request, session, record, "payments", book, [waiting, entries])
        return render(request, "payments.html", session, {
            "book": book, "fiscal_year": fiscal_year, "programmes": totals.get("programmes", []),
            "trial": balance,
            "waiting": [pages.masked(o, clear) for o in waiting],
            "entries": [pages.masked(e, clear) for e in entries], "clear": clear})

    @http.get("/dead-letters")
    async def dead_letters(request: Request) -> Response:
        session = page_session(request, sessions, "dead_letters")
        book = book_of(request, config)
        texts: dict[str, str] = dict(zip(
            SERVICE_NAMES, await asyncio.gather(*(api.metrics(name) for name in SERVICE_NAMES)), strict=True))
        refusals = checked(await api.get("payments", f"/v1/books/{book}/progress", session.api_key))
        return render(request, "dead_letters.html", session, {
            "book": book, "dead_letters": pages.dead_letters(texts), "kept": await adapters.kept(),
            "refusals": refusals.get("refusals", [])[-ROWS_SHOWN_MAX:],
            "may_redrive": pages.may_open(session.principal, "redrive"), "redrivable": REDRIVABLE})

    @http.post("/dead-letters/{service}/{letter_id}/redrive")
    async def redrive(request: Request, service: str, letter_id: str) -> Response:
        """An operator's re-drive button: the service's own command with the operator's key (which
        records who and the result on the dead letter); back to the page, which shows the result."""
        session, _ = await _posted(request, sessions, "dead_letters", "redrive")
        if service not in REDRIVABLE or not _is_uuid(letter_id):
            raise Refused(404, "no such dead letter")
        answer = await api.post(service, f"/v1/dead-letters/{letter_id}/redrive", session.api_key)
        if answer.status in (401, 403):
            raise Refused(403, str(answer.body.get("reason", "refused by the service")))
        if answer.status not in (200, 409, 422):  # 404, or the service down: nothing was recorded
            raise Refused(503 if answer.status in (0, 503) else answer.status,
                          str(answer.body.get("reason", f"service answered {answer.status or 'nothing'}")))
        book = book_of(request, config)
        return RedirectResponse(f"/dead-letters?book={quote(book)}#letter-{letter_id}", status_code=303)


async def _posted(
    request: Request, sessions: Sessions, page: pages.Page, command: pages.Page | None = None,
) -> tuple[Session, dict[str, str]]:
    """A form posted from `page`: its session and fields, once the CSRF token and (for a command such
    as replay or re-drive) the user's role are checked; else 403."""
    session = page_session(request, sessions, page)
    form = await form_of(request)
    if not valid_csrf(session, form.get("csrf")):
        raise Refused(403, "CSRF token missing or wrong")
    if command is not None and not pages.may_open(session.principal, command):
        raise Refused(403, f"{session.principal.role}: {command}")
    return session, form


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _progress_figure(answer: Answer) -> str:
    if not answer.ok:
        return "—"
    for name in ("last_seq", "stream_version", "seq", "accepted"):
        if name in answer.body:
            return str(answer.body[name])
    return "—"


# ---- subject and decision ---------------------------------------------------------------------------

async def _decisions(api: ServicesApi, session: Session, book: str, subject: str | None = None,
                     known_as_of: datetime | None = None) -> list[dict[str, Any]]:
    """The decisions the user's key may read; about `subject` (asked of eligibility unless the key
    sees pseudonyms only: then filtered here) and recorded by `known_as_of` when given."""
    params: dict[str, Any] = {}
    if known_as_of is not None:
        params["known_as_of"] = known_as_of.isoformat()
    if subject is not None and pages.sees_identities(session.principal):
        if not IDENTIFIER.fullmatch(subject):
            return []
        params["subject"] = subject
    found: list[dict[str, Any]] = checked(await api.get(
        "eligibility", f"/v1/books/{book}/decisions", session.api_key, params or None)).get("decisions", [])
    return pages.of_subject(found, subject) if subject is not None else found


async def _orders(api: ServicesApi, session: Session, book: str) -> list[dict[str, Any]]:
    answer = await api.get("payments", f"/v1/books/{book}/orders", session.api_key)
    found: list[dict[str, Any]] = answer.body.get("orders", []) if answer.ok else []  # a platform: none
    return found


def _decision_routes(http: FastAPI, sessions: Sessions, adapters: Adapters, config: ConsoleConfig) -> None:
    api = adapters.api

    async def find(session: Session, book: str, decision_id: str) -> dict[str, Any]:
        """The decision, if the user's key may read it (eligibility asked for that one only)."""
        if not DECISION_ID.fullmatch(decision_id):
            raise Refused(404, "")
        answer = checked(await api.get("eligibility", f"/v1/books/{book}/decisions", session.api_key,
                                       {"decision_id": decision_id}))
        for decision in answer.get("decisions", []):
            if decision.get("decision_id") == decision_id:
                return dict(decision)
        raise Refused(404, "")

    @http.get("/subject")
    async def subject(request: Request) -> Response:
        session = page_session(request, sessions, "subject")
        book = book_of(request, config)
        from_decision = request.query_params.get("from")
        if not from_decision:
            return render(request, "subject.html", session, {"book": book, "who": None})
        # Reached by one of the subject's decisions: no identity number in any URL.
        decision = await find(session, book, from_decision)
        who = str(decision.get("subject") or decision.get("beneficiary") or "")
        if not who:
            raise Refused(404, "")
        query = request.query_params
        try:
            when = timeline.as_of(query.get("known_as_of"), query.get("law_as_of"))
        except ValueError:
            raise Refused(400, "not a time") from None
        decisions, orders, facts = await asyncio.gather(
            _decisions(api, session, book, who, when.known), _orders(api, session, book),
            _facts(session, book, who, when.known))
        shown = pages.as_of(decisions, when.law[:7] if when.law else None)
        orders = pages.of_subject(orders, who)
        if when.known is not None or when.law is not None:  # the orders of the decisions shown (states now)
            orders = [o for o in orders if o.get("decision_id") in {d.get("decision_id") for d in shown}]
        clear = await unmasked(request, session, adapters.record_unmasked, "subject", book,
                               [shown, orders, facts])
        open_, closed = pages.money_lines([pages.masked(o, clear) for o in orders])
        return render(request, "subject.html", session, {
            "book": book, "who": who if clear else pages.masked({"subject": who}, False)["subject"],
            "decisions": [pages.masked(d, clear) for d in shown],
            "facts": timeline.fact_rows(facts, clear) if facts is not None else None,
            "law": timeline.law_in_force((str(d.get("rule_set")) for d in decisions), when.law_day),
            "law_day": when.law_day, "open_orders": open_, "closed_orders": closed, "clear": clear,
            "known_as_of": query.get("known_as_of") or "", "law_as_of": when.law or "",
            "from_decision": from_decision})

    async def _facts(session: Session, book: str, who: str,
                     known: datetime | None) -> list[dict[str, Any]] | None:
        """The subject's facts as the ledger knew them, those the user may read; None for a role that
        sees pseudonyms only (the ledger's streams are keyed by the identity number)."""
        principal = session.principal
        if not pages.sees_identities(principal):
            return None
        states = await adapters.ledger.facts(who, book, known)
        return timeline.own_facts(states, principal.enterprise) if principal.role == "platform" else states

    @http.post("/subject")
    async def find_subject(request: Request) -> Response:
        """The subject form: the identity number is posted, never put in a URL; answered with the way
        to the subject's page by one of its decisions."""
        session, form = await _posted(request, sessions, "subject")
        book = form.get("book") or config.default_book
        if not valid_book(book):
            raise Refused(400, "not a book name")
        who = form.get("id", "").strip()
        decisions = await _decisions(api, session, book, who) if who else []
        if not decisions:
            raise Refused(404, "")
        decision_id = str(decisions[0].get("decision_id"))
        return RedirectResponse(f"/subject?book={quote(book)}&from={quote(decision_id)}", status_code=303)

    @http.get("/decision/{decision_id}")
    async def decision_page(request: Request, decision_id: str) -> Response:
        session = page_session(request, sessions, "decision")
        book = book_of(request, config)
        return await _decision_view(request, session, book, await find(session, book, decision_id), None)

    @http.post("/decision/{decision_id}/replay")
    async def replay_decision(request: Request, decision_id: str) -> Response:
        session, _ = await _posted(request, sessions, "decision", "replay")
        book = book_of(request, config)
        decision = await find(session, book, decision_id)
        replayed = await adapters.replay(decision_id, book)
        return await _decision_view(request, session, book, decision, replayed)

    @http.get("/decision/{decision_id}/evidence")
    async def evidence(request: Request, decision_id: str) -> Response:
        """The decision's evidence bundle as `flexledger audit evidence` writes it, as a download:
        identity numbers masked unless an auditor asks (recorded first, as every view in clear)."""
        session = page_session(request, sessions, "decision")
        book = book_of(request, config)
        await find(session, book, decision_id)  # the user's key decides which decisions exist
        principal = session.principal
        in_clear = request.query_params.get("unmask") == "1" and pages.may_unmask(principal)
        try:
            bundle = await adapters.ledger.evidence(decision_id, book, in_clear)
        except EvidenceRefused as exc:
            raise Refused(exc.status, exc.reason) from None
        if principal.role == "platform" and timeline.names_another_enterprise(bundle, principal.enterprise):
            raise Refused(403, "the bundle holds another enterprise's facts about this worker")
        await unmasked(request, session, adapters.record_unmasked, "evidence", book, bundle)
        return Response(bundle_text(bundle), media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="evidence-{decision_id}.json"',  # DECISION_ID's
            "Cache-Control": "no-store"})

    async def _decision_view(request: Request, session: Session, book: str, decision: dict[str, Any],
                             replayed: ReplayResult | None) -> Response:
        fact = replayed.fact if replayed is not None and replayed.fact is not None else None
        clear = await unmasked(request, session, adapters.record_unmasked, "decision", book, [decision, fact])
        trace_id = decision.get("trace_id")
        return render(request, "decision.html", session, {
            "book": book, "d": pages.masked(decision, clear), "clear": clear, "replayed": replayed,
            "fact": pages.masked_fact(fact, clear) if fact is not None else None,
            "may_replay": pages.may_open(session.principal, "replay"),
            "proof": await _proof(str(decision.get("decision_id")), book),
            "trace_url": f"{config.trace_url_prefix}{trace_id}" if trace_id else None})

    async def _proof(decision_id: str, book: str) -> Proof | None:
        """The decision's inclusion proof; None when the ledger cannot be read (the page still shows)."""
        try:
            return await adapters.ledger.proof(decision_id, book)
        except Exception:
            log.exception("reading the inclusion proof failed")
            return None
