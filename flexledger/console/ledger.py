"""What the decision and subject pages read from the ledger itself, through the audit library (never a
copy of it): a decision's inclusion proof in the covering signed tree head, its evidence bundle, and
a subject's facts as the ledger knew them at a time. Each read runs off the event loop.

The console reads eligibility's event table as the services' runtime role (read only), as `replay`
does; which decision a user may ask about is decided before, by the services' answer to the user's key.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.runtime.settings import Settings


@dataclass(frozen=True)
class Proof:
    """A decision's place in the signed log. `located`: its event is in the ledger (else it is not
    stored yet); `inclusion`: `flexledger.audit.proofs.prove`'s answer against the latest valid signed
    tree head covering it, None while no checkpoint covers it yet."""

    located: bool
    inclusion: dict[str, Any] | None = None


class EvidenceRefused(Exception):
    """No bundle: `status` and why (in clear not allowed 403, not in the ledger 404, not yet covered 409,
    the ledger unreadable 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LedgerReads(Protocol):
    async def proof(self, decision_id: str, book: str) -> Proof: ...

    async def evidence(self, decision_id: str, book: str, identities: bool) -> dict[str, Any]:
        """The bundle `flexledger audit evidence DECISION` writes; EvidenceRefused when there is none."""
        ...

    async def facts(self, subject: str, book: str, known_as_of: datetime | None) -> list[dict[str, Any]]:
        """The stored events of the subject's own stream recorded at or before `known_as_of` (None:
        now), each with `recorded_at` (ISO) added: `flexledger audit history --as-of`'s own entries."""
        ...


class LedgerReader:
    """`LedgerReads` on the event store named by `settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def proof(self, decision_id: str, book: str) -> Proof:
        from flexledger.audit.proofs import NoTreeHead, prove
        from flexledger.audit.replay import locate

        def run() -> Proof:
            located = locate(self.settings, decision_id, book)
            if located is None:
                return Proof(False)
            try:
                return Proof(True, prove(self.settings, located.row.notification_id, self._heads()))
            except NoTreeHead:
                return Proof(True)

        return await asyncio.to_thread(run)

    async def evidence(self, decision_id: str, book: str, identities: bool) -> dict[str, Any]:
        import psycopg

        from flexledger.audit.evidence import NotAllowed, build, decisions_of
        from flexledger.audit.proofs import NoTreeHead
        from services.runtime.keys import signing_key

        def run() -> dict[str, Any]:
            try:
                located = decisions_of(self.settings, decision_id, None, book)
                return build(self.settings, located, self._heads(), seed=signing_key(self.settings),
                             identities=identities)
            except NotAllowed as exc:
                raise EvidenceRefused(403, str(exc)) from None
            except NoTreeHead:
                raise EvidenceRefused(409, "not yet covered by a signed checkpoint") from None
            except LookupError:
                raise EvidenceRefused(404, "not in the ledger yet") from None
            except psycopg.Error:
                raise EvidenceRefused(503, "the ledger cannot be read; retry") from None

        return await asyncio.to_thread(run)

    async def facts(self, subject: str, book: str, known_as_of: datetime | None) -> list[dict[str, Any]]:
        from flexledger.audit.history import own_history

        def run() -> list[dict[str, Any]]:
            found = own_history(self.settings, subject, book=book, as_of=known_as_of)
            return [{**entry.state, "recorded_at": entry.recorded_at.isoformat()} for entry in found.entries]

        return await asyncio.to_thread(run)

    def _heads(self) -> list[dict[str, Any]]:
        """The signed tree heads the ledger recorded whose signature the ledger's own key verifies."""
        from flexledger.audit.checkpoints import own_public_key
        from flexledger.audit.proofs import recorded_tree_heads, valid_tree_heads

        return valid_tree_heads(recorded_tree_heads(self.settings), own_public_key(self.settings))
