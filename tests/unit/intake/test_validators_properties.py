"""Properties of intake's validators over hostile input (hypothesis).

- parse_fact raises nothing but FactShapeError, whatever JSON-like value it is given, and every
  reason starts with a field name of the fact type, `type`, or says a fact must be an object;
- parse_json_body raises nothing but BadInput, whatever bytes it is given, and what it returns is
  safe downstream: it encodes as UTF-8 JSON, holds no NUL, and IntakeBook.check does not crash on it;
- parse_json_body returns exactly the object that safe JSON text encodes.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stand_in_intake import E1, PARK, W1

from contracts.facts import FACT_TYPES, FactShapeError, parse_fact
from services.intake.domain.limits import BadInput, parse_json_body
from services.intake.domain.submission import IntakeBook

AT = "2021-07-05T10:00:00+08:00"
VALID: dict[str, dict[str, Any]] = {
    "enterprise_registered": {"enterprise": E1, "name": "锡城到家服务平台"},
    "worker_registered": {"worker": W1, "name": "测试甲", "residence": "320213",
                          "residence_since": "2015-01-01"},
    "residence_changed": {"worker": W1, "residence": "320214", "since": "2021-01-01"},
    "category_declared": {"worker": W1, "category": "graduate_unemployed", "since": "2021-03-01",
                          "until": None, "graduated": "2020-07-01"},
    "category_revoked": {"worker": W1, "category": "employment_difficulty"},
    "monthly_report": {"enterprise": E1, "worker": W1, "month": "2021-06", "income_fen": 210000,
                       "hours": 167.5, "district": "320213"},
    "report_corrected": {"enterprise": E1, "worker": W1, "month": "2021-06", "income_fen": 0, "hours": 0,
                         "district": "320213"},
    "report_retracted": {"enterprise": E1, "worker": W1, "month": "2021-06"},
    "contribution_paid": {"worker": W1, "month": "2021-06", "amount_fen": 1},
    "contribution_refunded": {"worker": W1, "month": "2021-06"},
    "training_completed": {"enterprise": E1, "worker": W1, "course": "育婴员", "hours": 200,
                           "completed_on": "2021-06-30"},
    "training_retracted": {"enterprise": E1, "worker": W1, "course": "育婴员"},
    "job_standard_approved": {"enterprise": E1, "job_type": "网约配送员", "approved_on": "2021-06-01"},
    "competition_listed": {"enterprise": E1, "competition": "C-1", "listed_on": "2021-06-01"},
    "competition_award": {"competition": "C-1", "worker": W1, "rank": 1},
    "park_recognized": {"park": PARK, "level": "national", "established_on": "2021-06-01",
                        "recognized_on": "2021-08-30", "approved_amount_fen": 10**13},
    "talent_award": {"enterprise": E1, "award": "THRC-2021-0031", "approved_amount_fen": 120000000},
}
FIELDS = sorted({name for model in FACT_TYPES.values() for name in model.model_fields})

# ---- strategies ---------------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=30)  # controls and lone surrogates too
scalars = (
    st.none() | st.booleans()
    | st.integers() | st.integers(min_value=10**15, max_value=10**400) | st.integers(max_value=-(10**300))
    | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.5, -0.0, 1e308, 5e-324, 744.0001])
    | any_text
    | st.sampled_from(["", " ", "2021-06", "2021-13", "2021-06-31", "x" * 201, E1, W1, W1.replace("9", "X"),
                       W1[:-1] + "x", "320213", AT, "2021-07-05T10:00:00", "\x00", "\ud800", "\u202e"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def fact_like(draw: st.DrawFn) -> dict[str, Any]:
    """A valid fact of a random type, then mutated: fields replaced, removed or added at random."""
    kind = draw(st.sampled_from(sorted(VALID)))
    raw: dict[str, Any] = {"id": "f1", "type": kind, "at": AT, **VALID[kind]}
    for name in draw(st.lists(st.sampled_from(sorted(raw)), max_size=3)):
        raw.pop(name, None)
    replacements = st.dictionaries(st.sampled_from([*FIELDS, "type"]) | any_text,
                                   json_values | st.integers(0, 100).map(_deep), max_size=4)
    raw.update(draw(replacements))
    return raw


facts_or_anything = fact_like() | json_values | st.dictionaries(any_text, json_values, max_size=6)

# ---- parse_fact ---------------------------------------------------------------------------------


def test_the_valid_examples_are_valid() -> None:
    for kind, fields in VALID.items():
        parse_fact({"id": "f1", "type": kind, "at": AT, **fields})


def _valid(kind: str, **changes: Any) -> dict[str, Any]:
    return {"id": "f1", "type": kind, "at": AT, **VALID[kind], **changes}


def _names_a_field_or_the_type(raw: Any, reason: str) -> bool:
    if not isinstance(raw, dict):
        return reason == "a fact must be a JSON object"
    model = FACT_TYPES.get(raw["type"]) if isinstance(raw.get("type"), str) else None
    names = ["type"] if model is None else [*model.model_fields]
    return any(reason.startswith((f"{name} ", f"{name}.")) for name in names)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(facts_or_anything)
@example(_valid("monthly_report", hours=10**400))
@example(_valid("monthly_report", income_fen=10**400))
@example(_valid("category_declared", until="2020-01-01"))
@example(_valid("category_declared", graduated=None))
@example(_valid("training_completed", hours=1.0))
@example(_valid("monthly_report", hours=_deep(1000)))
@example({"type": {"nested": "type"}})
def test_parse_fact_raises_only_fact_shape_errors_that_name_a_field_or_the_type(raw: Any) -> None:
    try:
        parse_fact(raw)
    except FactShapeError as exc:
        assert exc.reason and _names_a_field_or_the_type(raw, exc.reason), exc.reason


# ---- parse_json_body ----------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogatepass")  # lone surrogates become (invalid) bytes


json_texts = (
    st.builds(lambda v, ascii_: json.dumps(v, ensure_ascii=ascii_), json_values | fact_like(), st.booleans())
    .map(_utf8)
)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """JSON text with a few bytes replaced, inserted or removed."""
    data = bytearray(draw(json_texts))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        byte = draw(st.sampled_from([0x00, 0x01, 0x1F, 0x22, 0x5B, 0x5C, 0x7B, 0x7D, 0x80, 0xC3, 0xED, 0xFF]))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert" or position == len(data):
            data.insert(position, byte)
        elif action == "replace":
            data[position] = byte
        else:
            del data[position]
    return bytes(data)


hostile_bytes = (
    st.binary(max_size=300) | json_texts | mangled()
    | st.integers(0, 5000).map(lambda n: b'{"a":' + b"[" * n + b"1" + b"]" * n + b"}")
    | st.integers(0, 5000).map(lambda n: b'{"a":"' + b"\\" * n + b'"}')
    | st.sampled_from([b"", b"\xef\xbb\xbf", b"NaN", b'{"a":1e999999}', b'{"a":' + b"9" * 50_000 + b"}",
                       b'{"a":"\\ud800"}', b'{"a":"\\udc00\\ud800"}', b'{"\\u0000":0}'])
)


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_bytes)
def test_parse_json_body_raises_only_bad_input_and_returns_only_safe_objects(data: bytes) -> None:
    try:
        value = parse_json_body(data, max_bytes=64 * 1024, max_depth=8)
    except BadInput as exc:
        assert exc.where and exc.reason and exc.status in (400, 413)
        return
    assert isinstance(value, dict)
    encoded = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert b"\x00" not in encoded and b"\\u0000" not in encoded
    IntakeBook().check(value)  # the guard's output never crashes intake's own checks


safe_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
safe_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats(-1e15, 1e15) | safe_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(safe_text, children, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(safe_text, safe_values, max_size=5), st.booleans())
def test_safe_json_objects_come_back_exactly(value: dict[str, Any], ensure_ascii: bool) -> None:
    data = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    assert parse_json_body(data, max_bytes=len(data), max_depth=8) == value
