"""Tamper evidence for the decision ledger: each recorded entry's hash covers its content and the
previous entry's hash in the same stream, so altering or deleting a stored entry breaks the chain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def canonical(content: Any) -> bytes:
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.encode()


def link_hash(previous_hash: str, content: Any) -> str:
    """sha256(previous hash || canonical JSON of the content), hex."""
    return hashlib.sha256(previous_hash.encode("ascii") + canonical(content)).hexdigest()


def verify_chain(entries: list[tuple[Any, str]]) -> int | None:
    """Index of the first entry whose stored hash does not match, or None when the chain holds.

    `entries` are (content, stored hash) in stream order, starting from the genesis hash."""
    previous = GENESIS
    for index, (content, stored) in enumerate(entries):
        if link_hash(previous, content) != stored:
            return index
        previous = stored
    return None
