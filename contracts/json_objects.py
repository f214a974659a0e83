"""JSON objects on the wire name each key once.

The JSON standard leaves a repeated key's meaning open (RFC 8259 4: "SHOULD be unique"); Python keeps
the last value, other parsers the first. A body that two readers could read differently is refused,
by intake's parser and by every service's HTTP bounds alike, with this one hook.
"""

from __future__ import annotations

from typing import Any


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} is given twice")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads`: the object, or DuplicateKey."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise DuplicateKey(key)
        found[key] = value
    return found
