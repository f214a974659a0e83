"""Identity numbers in an HTTP answer: found (for the read audit) and replaced by keyed pseudonyms
(for the statistics bureau). Pure: the keys are passed in.

A pseudonym is HMAC-SHA256(key, "worker" 0x1f number), hex: with the statistics key it is the same
pseudonym the statistics topic carries (services/eligibility/adapters/statistics.py), so the bureau
can join what it reads over HTTP with what it receives on Kafka; without the key it cannot be linked
back to a number, even by trying every possible one. Enterprises' credit codes are public registry
data and stay readable, as in `contracts.identifiers.mask_identifiers`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from contracts.identifiers import identifiers_in, replace_identifiers


def pseudonym(key: bytes, number: str) -> str:
    """The keyed pseudonym of a person's identity number."""
    return hmac.new(key, b"worker\x1f" + number.encode("utf-8"), hashlib.sha256).hexdigest()


def identity_numbers(value: Any) -> set[str]:
    """Every identity number in the strings (keys included) of a JSON value."""
    found: set[str] = set()
    _collect(value, found)
    return found


def _collect(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        found.update(identifiers_in(value))
    elif isinstance(value, dict):
        for name, item in value.items():
            _collect(name, found)
            _collect(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, found)


def pseudonymised(value: Any, key: bytes) -> Any:
    """A copy of a JSON value with every identity number in its strings replaced by its pseudonym."""
    if isinstance(value, str):
        return replace_identifiers(value, lambda number: pseudonym(key, number))
    if isinstance(value, dict):
        return {pseudonymised(name, key): pseudonymised(item, key) for name, item in value.items()}
    if isinstance(value, list):
        return [pseudonymised(item, key) for item in value]
    return value
