"""Limits: the token bucket, Content-Type, sizes, and the JSON guard."""

from __future__ import annotations

import json

import pytest

from services.intake.domain.limits import (
    BadInput,
    Limits,
    RateLimiter,
    TooLarge,
    UnsupportedMediaType,
    check_size,
    media_type,
    parse_json_body,
    string_problem,
)

# ---- rate ---------------------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_refuses_with_the_wait() -> None:
    limiter = RateLimiter(burst=10, per_s=2)
    assert limiter.take("k", now_s=0, cost=10).allowed
    refused = limiter.take("k", now_s=0, cost=3)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.5)
    assert refused.retry_after_header == "2"
    assert limiter.take("k", now_s=1.5, cost=3).allowed


def test_a_refusal_spends_nothing_and_keys_are_separate() -> None:
    limiter = RateLimiter(burst=5, per_s=1)
    assert limiter.take("a", now_s=0, cost=4).allowed
    assert not limiter.take("a", now_s=0, cost=2).allowed
    assert limiter.available("a", now_s=0) == 1
    assert limiter.take("b", now_s=0, cost=5).allowed


def test_refill_is_capped_at_the_burst_and_a_clock_stepping_back_refills_nothing() -> None:
    limiter = RateLimiter(burst=5, per_s=100)
    limiter.take("k", now_s=100, cost=5)
    assert limiter.available("k", now_s=50) == 0
    assert limiter.available("k", now_s=1000) == 5


def test_prune_forgets_only_full_buckets() -> None:
    limiter = RateLimiter(burst=5, per_s=1)
    limiter.take("a", now_s=0, cost=5)
    limiter.take("b", now_s=0, cost=1)
    assert limiter.prune(now_s=2) == 1 and len(limiter) == 1
    assert limiter.available("a", now_s=2) == 2


def test_every_request_costs_at_least_one_token() -> None:
    limiter = RateLimiter(burst=1, per_s=1)
    assert limiter.take("k", now_s=0, cost=0).allowed
    assert not limiter.take("k", now_s=0, cost=0).allowed


def test_a_cost_above_the_burst_is_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        RateLimiter(burst=5, per_s=1).take("k", now_s=0, cost=6)


def test_limits_let_a_full_bulk_request_through_the_bucket() -> None:
    with pytest.raises(AssertionError):
        Limits(max_bulk_rows=100, rate_burst_facts=99)
    limits = Limits()
    limiter = RateLimiter(limits.rate_burst_facts, limits.rate_facts_per_s)
    assert limiter.take("k", now_s=0, cost=limits.max_bulk_rows).allowed


# ---- sizes and media types ----------------------------------------------------------------------


def test_check_size_is_413() -> None:
    check_size(10, 10)
    with pytest.raises(TooLarge) as caught:
        check_size(11, 10)
    assert caught.value.status == 413 and "11 bytes" in caught.value.reason


@pytest.mark.parametrize(("header", "expected"), [
    ("application/json", "application/json"), ("Application/JSON; charset=UTF-8", "application/json"),
    ('application/json; charset="utf-8"', "application/json"),
])
def test_media_type_accepts(header: str, expected: str) -> None:
    assert media_type(header, ("application/json",)) == expected


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/json; charset=latin-1", "json"])
def test_media_type_refuses_with_415(header: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        media_type(header, ("application/json",))
    assert caught.value.status == 415 and caught.value.where == "Content-Type"


# ---- JSON ---------------------------------------------------------------------------------------


def _bad(data: bytes, max_bytes: int = 10_000, max_depth: int = 8) -> BadInput:
    with pytest.raises(BadInput) as caught:
        parse_json_body(data, max_bytes, max_depth)
    return caught.value


def test_a_plain_fact_passes_unchanged() -> None:
    fact = {"id": "f1", "type": "monthly_report", "income_fen": 210000, "hours": 167.5, "name": "测试甲",
            "until": None, "emoji": "\U0001f600"}
    assert parse_json_body(json.dumps(fact, ensure_ascii=False).encode(), 10_000, 8) == fact
    assert parse_json_body(json.dumps(fact).encode(), 10_000, 8) == fact
    assert parse_json_body(b"\xef\xbb\xbf " + json.dumps(fact).encode() + b"\r\n", 10_000, 8) == fact


@pytest.mark.parametrize(("data", "where", "reason"), [
    (b"", "body", "is empty"),
    (b"\xff{}", "body", "not valid UTF-8 (byte 0xff at offset 0)"),
    (b'{"a": "\xc3"}', "body", "not valid UTF-8"),
    (b"[1]", "body", "must be a JSON object, not an array"),
    (b'"x"', "body", "not a string"),
    (b"null", "body", "not null"),
    (b"12", "body", "not a number"),
    (b"{", "body column 2", "not valid JSON"),
    (b'{"a":1}\n{"b":2}', "body line 2 column 1", "Extra data"),
    (b'{"a":1,"a":1}', "body", "key 'a' twice"),
    (b'{"a":NaN}', "a", "NaN is not a JSON number"),
    (b'{"a":-Infinity}', "a", "-Infinity"),
    (b'{"a":1e999}', "a", "beyond the limit of ±10^15"),
    (b'{"a":{"b":[0,1000000000000001]}}', "a.b[1]", "beyond the limit"),
    (b'{"a":' + b"9" * 5000 + b"}", "a", "beyond the limit"),
    (b'{"a":-1.5e16}', "a", "beyond the limit"),
    (b'{"a":"\\u0000"}', "a", "control character U+0000"),
    (b'{"a":"\\u001b[31m"}', "a", "U+001B"),
    (b'{"a":"\\u0085"}', "a", "U+0085"),
    (b'{"a":"\\ud800"}', "a", "unpaired surrogate U+D800"),
    (b'{"\\u0000":1}', "body", "a key that contains the control character"),
    (b'{"x y":["\\udfff"]}', '"x y"[0]', "unpaired surrogate"),
    (b'{"a":"x\x01"}', "body column 8", "U+0001 unescaped inside a string"),
    (b'\x07{"a":1}', "body column 1", "U+0007 outside a string"),
    (b"[" * 9 + b"]" * 9, "body", "deeper than 8 levels"),
    (b'{"a":' * 1_500, "body", "deeper than 8 levels"),
])
def test_hostile_bodies_are_refused_naming_where_and_why(data: bytes, where: str, reason: str) -> None:
    error = _bad(data)
    assert error.where == where and reason in error.reason, str(error)
    assert error.status == 400


def test_escaped_tab_newline_and_a_valid_surrogate_pair_are_text() -> None:
    data = b'{"a":"x\\ty\\nz","e":"\\ud83d\\ude00"}'
    assert parse_json_body(data, 100, 2) == {"a": "x\ty\nz", "e": "\U0001f600"}


def test_depth_counts_containers_and_ignores_brackets_in_strings() -> None:
    assert parse_json_body(b'{"a":[{"b":1}]}', 100, 3) == {"a": [{"b": 1}]}
    assert _bad(b'{"a":[{"b":1}]}', max_depth=2).reason.startswith("nests")
    assert parse_json_body(b'{"a":"[[[[\\"{{{{"}', 100, 1) == {"a": '[[[["{{{{'}


def test_a_body_above_the_limit_is_413() -> None:
    error = _bad(b'{"a":"' + b"x" * 100 + b'"}', max_bytes=50)
    assert isinstance(error, TooLarge) and error.status == 413


def test_string_problem() -> None:
    assert string_problem("tab\there\nnew line\r") is None
    assert string_problem("中文 ©") is None
    assert string_problem("\x7f") == "contains the control character U+007F"


def test_a_value_problem_carries_the_fact_id_when_the_json_could_be_read() -> None:
    assert _bad(b'{"id":"f7","income_fen":1e99}').fact_id == "f7"
    assert _bad(b'{"id":"f7","income_fen":1e99').fact_id is None
    assert _bad(b'{"id":"\\u0000","x":1e99}').fact_id is None
