"""An agency message from Kafka, read into a fact to submit, or the reason it cannot be taken in.

The message is one fact as JSON: the same bytes a `POST /v1/facts` body holds, read by the same guard
(`limits.parse_json_body`) and authorised by the same table (`authorization`). Who sent it is the
`flexledger-agency` header: one of the four agency roles. The Kafka boundary does not carry API keys:
a bearer secret in a message header would stay in the topic's log for its whole retention, readable
by every consumer; producers on Kafka are authenticated by the broker (SASL or mTLS, with ACLs that
let each agency's principal write only this topic), and the header says which agency's table of fact
types applies. See docs/design/intake-auth.md.

What cannot be taken in (`NotTaken`) is kept as a dead letter with the status HTTP would have
answered: 401 unknown or missing agency, 400 unreadable (headers or body), 413 too large, 415 not
JSON, 403 not this agency's to send. A readable object with a hostile value is a fact to record as
rejected (`AgencyFact.problem`), like the same body over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from contracts.messages import BOOK_KAFKA_HEADER, BOOK_PATTERN, DEFAULT_BOOK, valid_book
from services.intake.domain.authorization import authorization_problem
from services.intake.domain.limits import BadInput, BadValue, Limits, parse_json_body, string_problem
from services.intake.domain.principals import AGENCIES, Principal, Role

AGENCY_HEADER = "flexledger-agency"
CONTENT_TYPE_HEADER = "content-type"
JSON_MEDIA_TYPES = ("application/json", "application/cloudevents+json")
_MAX_HEADER_CHARS = 200


@dataclass(frozen=True, slots=True)
class AgencyFact:
    """A fact to submit to `book` on behalf of `principal`; `problem` rejects it (hostile value)."""

    book: str
    principal: Principal
    raw: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class NotTaken:
    status: int
    reason: str
    agency: str | None = None
    book: str | None = None
    fact_id: str | None = None


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | NotTaken | None:
    """The single value of header `name` as text; None when absent; NotTaken when unreadable."""
    values = [value for key, value in headers if key.lower() == name]
    if not values:
        return None
    if len(values) > 1:
        return NotTaken(400, f"header {name} is given {len(values)} times; give it once")
    raw = values[0] or b""
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return NotTaken(400, f"header {name} is not valid UTF-8")
    if len(text) > _MAX_HEADER_CHARS or string_problem(text):
        return NotTaken(400, f"header {name} is longer than {_MAX_HEADER_CHARS} characters or holds "
                             "control characters")
    return text


def read_agency_message(
    headers: Sequence[tuple[str, bytes | None]], body: bytes, limits: Limits
) -> AgencyFact | NotTaken:
    """Read one agency message: the fact to submit, or why it is not taken in."""
    agency = _header(headers, AGENCY_HEADER)
    if isinstance(agency, NotTaken):
        return agency
    if agency is None:
        return NotTaken(401, f"header {AGENCY_HEADER} is missing; it names the sending agency, one of "
                             f"{', '.join(sorted(AGENCIES))}")
    if agency not in AGENCIES:
        return NotTaken(401, f"header {AGENCY_HEADER} {agency[:40]!r} is not an agency; the agencies are "
                             f"{', '.join(sorted(AGENCIES))}")
    book = _header(headers, BOOK_KAFKA_HEADER)
    if isinstance(book, NotTaken):
        return NotTaken(book.status, book.reason, agency)
    book = book if book is not None else DEFAULT_BOOK
    if not valid_book(book):
        return NotTaken(400, f"header {BOOK_KAFKA_HEADER} must match {BOOK_PATTERN}", agency)
    content_type = _header(headers, CONTENT_TYPE_HEADER)
    if isinstance(content_type, NotTaken):
        return NotTaken(content_type.status, content_type.reason, agency, book)
    if content_type is not None and content_type.split(";")[0].strip().lower() not in JSON_MEDIA_TYPES:
        return NotTaken(415, f"content-type {content_type[:60]!r} is not JSON; an agency message is one "
                             "fact as application/json", agency, book)
    try:
        raw = parse_json_body(body, limits.max_fact_bytes, limits.max_json_depth,
                              max_abs_number=limits.max_abs_number)
        problem = None
    except BadValue as exc:
        raw, problem = exc.stand_in, str(exc)
    except BadInput as exc:
        return NotTaken(exc.status, str(exc), agency, book, exc.fact_id)
    principal = Principal(cast(Role, agency), key_id=f"kafka:{agency}")
    if (refusal := authorization_problem(principal, raw)) is not None:
        fact_id = raw.get("id")
        return NotTaken(403, refusal, agency, book, fact_id if isinstance(fact_id, str) else None)
    return AgencyFact(book, principal, raw, problem)
