"""Identity numbers out of operator-facing text: logs, traces, error messages.

The domain's refusals name beneficiaries and money lines (useful in the encrypted event store, where
they are kept in full); anything written to a log or a span goes through `redact` first.
"""

from __future__ import annotations

import re

from contracts.identifiers import mask

# Resident identity numbers (17 digits + check) and unified social credit codes (18 characters).
_IDENTIFIER = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{17}[0-9A-Z](?![0-9A-Z])")


def redact(text: str) -> str:
    """`text` with every 18-character identifier masked (`3202**********1019`)."""
    return _IDENTIFIER.sub(lambda m: mask(m.group(0)) or "", text)


def masked(identifier: str | None) -> str:
    return mask(identifier) or "-"
