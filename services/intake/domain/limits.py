"""Intake's explicit limits, and the guard every submitted byte passes before it becomes a fact.

- `Limits`: request body sizes, rows per bulk request, JSON depth, number range, per-key rate, timeout.
- `RateLimiter`: a token bucket per API key, one token per fact (a bulk request costs its rows), with
  the time passed in (`now_s`, monotonic seconds): no clock inside.
- `parse_json_body`: bytes to one JSON object, or `BadInput` naming where and why. It refuses what the
  standard `json.loads` lets through and would later break storage or hashing: invalid UTF-8, NaN and
  Infinity, numbers beyond ±10^15, duplicate keys, control characters and unpaired surrogates in
  strings (`"\\u0000"` cannot go into PostgreSQL text, `"\\ud800"` cannot be encoded as UTF-8), and
  nesting deeper than the limit (checked before parsing, so it cannot exhaust the stack).
- `media_type`: the Content-Type header, checked against what an endpoint accepts.

`BadInput` is 400, `TooLarge` 413, `UnsupportedMediaType` 415: the HTTP layer maps by `.status`.
`BadValue` (a 400) is the one refusal that still yields a fact: the body is a readable JSON object and
only a value in it is hostile. It carries `stand_in`, the object with every such value replaced by a
storable stand-in, so that intake can record the fact as *rejected* with the reason, exactly as it
records any other invalid fact (and as the engine does): unreadable bodies are not facts, readable
objects with bad values are invalid facts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from contracts.json_objects import DuplicateKey, unique_keys

MAX_ABS_NUMBER = 10**15
_MAX_INT_DIGITS = 16  # 10**15 has 16 digits; longer literals are refused before int() sees them
_BOM = b"\xef\xbb\xbf"


class BadInput(ValueError):
    """Input that cannot be read; `where` names the field (a JSON path), the row or the body.
    `fact_id` is the object's `id` when the JSON could be read and the problem is in a value."""

    status: ClassVar[int] = 400

    def __init__(self, where: str, reason: str, fact_id: str | None = None) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
        self.fact_id = fact_id


class BadValue(BadInput):
    """A readable JSON object with a value that cannot be accepted (a number beyond the limit, NaN or
    Infinity, a control character or an unpaired surrogate in a string or key). `stand_in` is the
    object with each such value made storable: numbers become their literal text (at most 40
    characters), unsafe characters become U+FFFD. It is for recording the fact as rejected, never for
    accepting it."""

    def __init__(self, where: str, reason: str, stand_in: dict[str, Any], fact_id: str | None = None) -> None:
        super().__init__(where, reason, fact_id)
        self.stand_in = stand_in


class TooLarge(BadInput):
    """The body, or the number of rows in it, is above the limit (413)."""

    status: ClassVar[int] = 413


class UnsupportedMediaType(BadInput):
    """The Content-Type is not one the endpoint reads (415)."""

    status: ClassVar[int] = 415


@dataclass(frozen=True, slots=True)
class Limits:
    max_fact_bytes: int = 64 * 1024  # one fact: POST /v1/facts
    max_bulk_bytes: int = 16 * 1024 * 1024  # one bulk request body
    max_bulk_rows: int = 10_000  # rows (facts) in one bulk request
    max_row_bytes: int = 16 * 1024  # one JSON Lines line or CSV line
    max_json_depth: int = 8  # a fact is one flat object (depth 1); the rest is slack
    max_abs_number: int = MAX_ABS_NUMBER
    rate_burst_facts: int = 20_000  # token bucket capacity per key
    rate_facts_per_s: float = 5_000.0  # token bucket refill per key
    request_timeout_s: float = 30.0  # for the HTTP layer: the whole request, body read included
    max_clock_skew_s: float = 300.0  # how far `at` may be after the receipt time (clock_skew.py)

    def __post_init__(self) -> None:
        assert 0 < self.max_row_bytes <= self.max_bulk_bytes, "a row must fit in a bulk body"
        assert min(self.max_fact_bytes, self.max_bulk_rows, self.max_json_depth) > 0
        assert self.rate_burst_facts >= self.max_bulk_rows, "a full bulk request must be able to pass"
        assert self.rate_facts_per_s > 0 and self.request_timeout_s > 0 and self.max_clock_skew_s >= 0


def check_size(size_bytes: int, max_bytes: int, where: str = "body") -> None:
    """TooLarge when `size_bytes` (a Content-Length, or bytes read so far) is above `max_bytes`."""
    if size_bytes > max_bytes:
        raise TooLarge(where, f"is {size_bytes} bytes; the limit is {max_bytes} bytes")


# ---- Content-Type -------------------------------------------------------------------------------


def media_type(content_type: str | None, accepted: tuple[str, ...]) -> str:
    """The media type of a Content-Type header when it is one of `accepted` (charset, if any, UTF-8)."""
    if not content_type:
        raise UnsupportedMediaType("Content-Type", f"is missing; send one of {', '.join(accepted)}")
    kind, *params = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    if kind not in accepted:
        raise UnsupportedMediaType("Content-Type",
                                   f"{_shown(kind)} is not accepted here; send one of {', '.join(accepted)}")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("Content-Type",
                                       f"charset {_shown(value.strip())} is not accepted; send UTF-8")
    return kind


# ---- rate ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: float = 0.0  # when refused: seconds until the same request would pass

    @property
    def retry_after_header(self) -> str:
        """Value for the `Retry-After` header (whole seconds, at least 1)."""
        return str(max(1, math.ceil(self.retry_after_s)))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at_s: float


@dataclass
class RateLimiter:
    """One token bucket per key id: `burst` tokens at most, refilled at `per_s` tokens a second.

    Key it by the authenticated key id (never by an unauthenticated string), so the number of
    buckets is bounded by the key ring; `prune` drops buckets that have refilled completely.
    """

    burst: float
    per_s: float
    _buckets: dict[str, _Bucket] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        assert self.burst >= 1 and self.per_s > 0, (self.burst, self.per_s)

    def take(self, key_id: str, *, now_s: float, cost: int = 1) -> RateDecision:
        """Spend `cost` tokens of `key_id` at `now_s` when it has them; a refusal spends nothing.
        Every request costs at least one token, an empty bulk request too."""
        cost = max(1, cost)
        assert cost <= self.burst, f"cost {cost} can never pass a bucket of {self.burst}"
        bucket = self._refilled(key_id, now_s)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return RateDecision(True)
        return RateDecision(False, (cost - bucket.tokens) / self.per_s)

    def available(self, key_id: str, *, now_s: float) -> float:
        return self._refilled(key_id, now_s).tokens

    def prune(self, *, now_s: float) -> int:
        """Forget the buckets that are full at `now_s` (forgetting them changes nothing); how many."""
        full = [key for key, bucket in self._buckets.items()
                if bucket.tokens + max(0.0, now_s - bucket.at_s) * self.per_s >= self.burst]
        for key in full:
            del self._buckets[key]
        return len(full)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key_id: str, now_s: float) -> _Bucket:
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(float(self.burst), now_s)
        elapsed_s = max(0.0, now_s - bucket.at_s)  # a clock that steps back refills nothing
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed_s * self.per_s)
        bucket.at_s = max(bucket.at_s, now_s)
        return bucket


# ---- JSON ---------------------------------------------------------------------------------------

# In strings: C0 controls except tab, LF and CR; DEL; C1 controls; unpaired surrogates.
_UNSAFE_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_STRUCTURAL = re.compile(r'[\[\]{}"\\]')
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _OutOfRange:
    """A number literal refused while parsing; reported with its path afterwards."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _int(text: str) -> int | _OutOfRange:
    return _OutOfRange(text) if len(text.lstrip("-")) > _MAX_INT_DIGITS else int(text)


def _float(text: str) -> float | _OutOfRange:
    return _OutOfRange(text) if len(text) > 400 else float(text)


def _shown(text: str, limit: int = 24) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def string_problem(text: str) -> str | None:
    """Why a string cannot be stored as it is (control character, unpaired surrogate), or None."""
    match = _UNSAFE_CHAR.search(text)
    if match is None:
        return None
    code = ord(match.group())
    if 0xD800 <= code <= 0xDFFF:
        return f"contains an unpaired surrogate U+{code:04X}, which is not valid Unicode"
    return f"contains the control character U+{code:04X}"


def _too_deep(text: str, max_depth: int) -> bool:
    if text.count("{") + text.count("[") <= max_depth:
        return False  # nesting never exceeds the number of openers (a fact has one): no scan needed
    depth = 0
    in_string = False
    skip_until = -1
    for match in _STRUCTURAL.finditer(text):
        position = match.start()
        if position < skip_until:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                skip_until = position + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    name = key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)
    return f"{path}.{name}" if path else name


def _check_values(root: dict[str, Any], where: str, max_abs: int, *, strings_safe: bool = False) -> None:
    """BadInput for the first hostile key or value, in document order. `strings_safe`: the text had no
    escape and no unsafe character, so no key or string can hold one (only numbers need a look)."""
    _check_container(root, "", where, max_abs, strings_safe)


def _check_container(container: dict[str, Any] | list[Any], path: str, where: str, max_abs: int,
                     strings_safe: bool) -> None:
    # Recursion is bounded: the depth was checked before parsing. Paths are built only for a problem.
    shown_path = path or where
    if isinstance(container, dict):
        if not strings_safe:
            for key in container:
                if problem := string_problem(key):
                    raise BadInput(shown_path, f"has a key that {problem}")
        items: Any = container.items()
    else:
        items = enumerate(container)
    for key, value in items:
        if isinstance(value, dict | list):
            _check_container(value, _child(path, key), where, max_abs, strings_safe)
        elif isinstance(value, str):
            if not strings_safe and (problem := string_problem(value)):
                raise BadInput(_child(path, key), problem)
        elif (problem := _number_problem(value, max_abs)) is not None:
            raise BadInput(_child(path, key), problem)


def _number_problem(value: Any, max_abs: int) -> str | None:
    if isinstance(value, _OutOfRange):
        if value.text in ("NaN", "Infinity", "-Infinity"):
            return f"{value.text} is not a JSON number"
        return f"{_shown(value.text)} is beyond the limit of ±{_magnitude(max_abs)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"is beyond the limit of ±{_magnitude(max_abs)}"
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > max_abs:
        return f"{value!r} is beyond the limit of ±{_magnitude(max_abs)}"
    return None


def _magnitude(number: int) -> str:
    digits = str(number)
    power_of_ten = number > 10 and digits.startswith("1") and set(digits[1:]) <= {"0"}
    return f"10^{len(digits) - 1}" if power_of_ten else digits


def _type_name(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


# One decoder for every body (json.loads would build a new one per call). The hooks refuse duplicate keys
# and keep out-of-range numbers as text, to be reported with their path.
_DECODER = json.JSONDecoder(object_pairs_hook=unique_keys, parse_int=_int, parse_float=_float,
                            parse_constant=_OutOfRange)


def parse_json_body(
    data: bytes, max_bytes: int, max_depth: int, *, where: str = "body", max_abs_number: int = MAX_ABS_NUMBER
) -> dict[str, Any]:
    """One JSON object from `data`, or BadInput (TooLarge above `max_bytes`) naming where and why.

    A leading UTF-8 byte order mark is ignored. Whitespace around the object is allowed.
    """
    check_size(len(data), max_bytes, where)
    offset = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(where, f"is not valid UTF-8 (byte 0x{data[offset + exc.start]:02x} "
                              f"at offset {offset + exc.start})") from None
    if not text.strip():
        raise BadInput(where, "is empty; send one JSON object")
    if _too_deep(text, max_depth):
        raise BadInput(where, f"nests arrays or objects deeper than {max_depth} levels")
    try:
        value = _DECODER.decode(text)
    except DuplicateKey as exc:
        raise BadInput(where, f"has the key {_shown(exc.key)} twice in one object") from None
    except json.JSONDecodeError as exc:
        position = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise BadInput(f"{where} {position}", _syntax_reason(exc)) from None
    except (RecursionError, ValueError) as exc:  # not expected after the checks above: still a 400
        raise BadInput(where, f"cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadInput(where, f"must be a JSON object, not {_type_name(value)}")
    try:
        strings_safe = "\\" not in text and _UNSAFE_CHAR.search(text) is None
        _check_values(value, where, max_abs_number, strings_safe=strings_safe)
    except BadInput as exc:
        fact_id = value.get("id")
        safe = isinstance(fact_id, str) and len(fact_id) <= 200 and not string_problem(fact_id)
        safe_id = fact_id if safe else None
        raise BadValue(exc.where, exc.reason, stand_in(value, max_abs_number), safe_id) from None
    return value


_STAND_IN_NUMBER_CHARS = 40


def _safe_text(text: str) -> str:
    return _UNSAFE_CHAR.sub("\ufffd", text)


def stand_in(value: Any, max_abs: int = MAX_ABS_NUMBER) -> Any:
    """`value` with every value `parse_json_body` refuses made storable (see `BadValue`). Iterative
    where it matters: the depth was checked before parsing, so recursion stays shallow."""
    if isinstance(value, dict):
        return {_safe_text(key): stand_in(item, max_abs) for key, item in value.items()}
    if isinstance(value, list):
        return [stand_in(item, max_abs) for item in value]
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, _OutOfRange):
        text = value.text
        return text if len(text) <= _STAND_IN_NUMBER_CHARS else text[:_STAND_IN_NUMBER_CHARS] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > max_abs:
        return repr(value)[:_STAND_IN_NUMBER_CHARS]
    return value


def _syntax_reason(exc: json.JSONDecodeError) -> str:
    char = exc.doc[exc.pos] if exc.pos < len(exc.doc) else ""
    if char and exc.msg.startswith("Invalid control character"):
        return f"has the control character U+{ord(char):04X} unescaped inside a string"
    if char and _UNSAFE_CHAR.match(char):
        return f"has the control character U+{ord(char):04X} outside a string"
    return f"is not valid JSON: {exc.msg}"
