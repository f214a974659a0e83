"""An agency message from Kafka, read into a fact to submit, or the reason it cannot be taken in.

The message is one fact as JSON: the same bytes a `POST /v1/facts` body holds, read by the same guard
(`limits.parse_json_body`) and authorised by the same table (`authorization`). Who sent it is the feed
it came on: each agency has a feed of its own that only its own Kafka principal may write (the broker
authenticates producers and its ACLs hold them to their feed, docs/design/kafka-trust.md), and a
consumer cannot see a message's producer, so the topic is the only trustworthy name of the sender —
never a header. The Kafka boundary carries no API keys: a bearer secret in a message header would
stay in the topic's log for its whole retention, readable by every consumer. See
docs/design/intake-auth.md.

What cannot be taken in (`NotTaken`) is kept as a dead letter with the status HTTP would have
answered: 400 unreadable (headers or body), 413 too large, 415 not JSON, 403 not this agency's to
send, or a `flexledger-agency` header naming another agency than the feed's. A readable object with
a hostile value is a fact to record as rejected (`AgencyFact.problem`), like the same body over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from contracts.identifiers import mask_identifiers
from contracts.messages import BOOK_KAFKA_HEADER, BOOK_PATTERN, DEFAULT_BOOK, valid_book
from services.intake.domain.authorization import authorization_problem
from services.intake.domain.clock_skew import future_at_problem
from services.intake.domain.limits import BadInput, BadValue, Limits, parse_json_body, string_problem
from services.runtime.access.principals import AGENCIES, Principal, Role

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
    agency: str, headers: Sequence[tuple[str, bytes | None]], body: bytes, limits: Limits,
    received_at: datetime,
) -> AgencyFact | NotTaken:
    """Read one message from `agency`'s feed (consumed at `received_at`): the fact to submit, or why it
    is not taken in."""
    if agency not in AGENCIES:
        raise ValueError(f"{agency!r} is not an agency")
    claimed = _header(headers, AGENCY_HEADER)
    if isinstance(claimed, NotTaken):
        return NotTaken(claimed.status, claimed.reason, agency)
    if claimed is not None and claimed != agency:  # an attempt to speak for another agency
        return NotTaken(403, f"header {AGENCY_HEADER} names {claimed[:40]!r}, but the message came on the "
                             f"feed of {agency}: the feed names the agency", agency)
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
        return NotTaken(exc.status, mask_identifiers(str(exc)), agency, book, exc.fact_id)
    principal = Principal(cast(Role, agency), key_id=f"kafka:{agency}")
    fact_id = raw.get("id")
    fact_id = fact_id if isinstance(fact_id, str) else None
    if (refusal := authorization_problem(principal, raw)) is not None:
        return NotTaken(403, mask_identifiers(refusal), agency, book, fact_id)
    if (late := future_at_problem(raw, received_at, limits.max_clock_skew_s)) is not None:
        return NotTaken(400, late, agency, book, fact_id)
    return AgencyFact(book, principal, raw, problem)
