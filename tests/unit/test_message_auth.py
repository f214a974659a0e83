"""Message tags between services (services.runtime.message_auth): what verifies and what is refused."""

from __future__ import annotations

import pytest

from services.runtime.message_auth import MAC_HEADER, MessageAuthenticator

KEY = b"k" * 32
FACTS = MessageAuthenticator(KEY, "facts")
VALUE = b'{"book":"main","seq":7,"fact":{"type":"talent_award","amount_fen":100000000}}'


def test_a_tagged_record_verifies() -> None:
    auth = MessageAuthenticator(KEY, "facts")
    assert auth.problem([("ce_id", b"x"), (MAC_HEADER, auth.tag(VALUE))], VALUE) is None


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        ([], VALUE, "no flexledger_mac header"),
        ([(MAC_HEADER, None)], VALUE, "no flexledger_mac header"),
        ([(MAC_HEADER, b"AAAA")], VALUE, "does not match"),
        ([(MAC_HEADER, FACTS.tag(VALUE))], VALUE.replace(b"7", b"8"), "does not match"),
        ([(MAC_HEADER, MessageAuthenticator(b"m" * 32, "facts").tag(VALUE))], VALUE, "does not match"),
        ([(MAC_HEADER, MessageAuthenticator(KEY, "decisions").tag(VALUE))], VALUE, "does not match"),
        ([(MAC_HEADER, FACTS.tag(VALUE))] * 2, VALUE, "2 flexledger_mac headers"),
    ],
    ids=["missing", "empty", "garbage", "altered value", "other key", "other topic", "two tags"],
)
def test_forged_or_altered_records_are_refused_with_a_reason(
    headers: list[tuple[str, bytes | None]], value: bytes, reason: str
) -> None:
    problem = MessageAuthenticator(KEY, "facts").problem(headers, value)
    assert problem is not None and reason in problem


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        MessageAuthenticator(b"short", "facts")
