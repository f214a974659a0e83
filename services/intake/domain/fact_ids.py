"""Fact ids are scoped per submitter, so that no principal can take another's ids.

A fact's `id` is its submitter's idempotency key (scenarios/FORMAT.md). Before issue 13 every
submitter of a book shared one namespace: a platform could take the id an agency was about to use,
and the agency's genuine fact then got 409. Now each submitter has a namespace of its own, its
*scope*: a platform's enterprise code, an agency's role (`hr_bureau`, ...). The operator (scenario
runs, the demo, sandboxes) has no scope and keeps the book's plain namespace, so the acceptance
vectors run as before.

Downstream, the ledger id of a scoped fact is `<scope>/<id>`: intake writes it into the fact's `id`
before checking, recording and publishing it, so eligibility and payments see one unique id per fact
in a book (decisions name it in `after`), and the answer to the submitter names it too. It keeps the
200-character limit of RULES.md: an id too long for its prefix becomes `<scope>/sha256:<hex of the
id>`. No submitter but the operator can write an id in another's scope: scopes are enterprise codes
and role names, which hold no `/`, and a platform's id always starts with its own code.
"""

from __future__ import annotations

import hashlib
from typing import Any

from contracts.facts import MAX_TEXT
from services.runtime.access.principals import Principal

SEPARATOR = "/"


def scope_of(principal: Principal) -> str | None:
    """The namespace of a principal's fact ids: its enterprise (platform), its role (agency), or None
    (operator: the book's plain namespace)."""
    if principal.role == "operator":
        return None
    return principal.enterprise if principal.role == "platform" else principal.role


def ledger_id(scope: str | None, submitted: str) -> str:
    """The id a fact submitted with id `submitted` by the submitter of `scope` has in the ledger."""
    if scope is None:
        return submitted
    scoped = f"{scope}{SEPARATOR}{submitted}"
    if len(scoped) <= MAX_TEXT:
        return scoped
    digest = hashlib.sha256(submitted.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{scope}{SEPARATOR}sha256:{digest}"


def in_scope(raw: Any, scope: str | None) -> Any:
    """`raw` with its `id` replaced by its ledger id when it is a non-empty string (a copy; `raw` is
    left as it is). Anything else is left to validation, which rejects it."""
    if scope is None or not isinstance(raw, dict):
        return raw
    submitted = raw.get("id")
    if not isinstance(submitted, str) or not submitted:
        return raw
    return {**raw, "id": ledger_id(scope, submitted)}
