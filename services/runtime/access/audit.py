"""The read audit: every read of personal data through HTTP is recorded in the access store before the
answer leaves the service — who (key id, role, a platform's enterprise), which endpoint (the route,
not the URL), which book, what view, how many rows, whose data (keyed pseudonyms of the identity
numbers in the answer, never the numbers), and when (the event's timestamp), with the trace id.

The pseudonyms are keyed by `read_audit_key` (derived from the cipher key, like the partition keys):
whoever can decrypt the store can compute the pseudonym of a number to find who read it; the
statistics bureau's pseudonyms use another key and cannot be matched against these.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import Any

from services.runtime.access.policy import Endpoint, View
from services.runtime.access.principals import Principal
from services.runtime.access.pseudonyms import identity_numbers, pseudonym
from services.runtime.access.store import AccessApplication
from services.runtime.keys import state_key
from services.runtime.settings import Settings
from services.runtime.telemetry import trace_id_hex

MAX_SUBJECTS_PER_READ = 20_000  # two pages' worth; a read naming more is recorded with the first ones


def read_audit_key(settings: Settings) -> bytes:
    """The key of the read audit's pseudonyms, derived from the cipher key."""
    cipher = base64.b64decode(state_key(settings, settings.cipher_key, "cipher.key"))
    return hmac.new(cipher, b"flexledger/read-audit", hashlib.sha256).digest()


class ReadAudit:
    def __init__(self, app: AccessApplication, key: bytes) -> None:
        self.app = app
        self.key = key

    async def record(
        self, principal: Principal, endpoint: Endpoint, view: View, book: str, answer: Any, rows: int,
    ) -> None:
        """Store the read (raises when it cannot: the caller must then not answer with the data).
        `answer` is what the caller is shown before pseudonymisation, so the subjects are the same
        whatever the view."""
        subjects = sorted(pseudonym(self.key, n) for n in identity_numbers(answer))[:MAX_SUBJECTS_PER_READ]
        await asyncio.to_thread(
            self.app.record_read, key_id=principal.key_id, role=principal.role,
            enterprise=principal.enterprise, service=endpoint.service, endpoint=endpoint.name, book=book,
            view=view, rows=rows, subjects=subjects, trace_id=trace_id_hex(),
        )
