"""RULES.md section 5: what intake rejects, with a reason naming the field, and what it must accept.

Each test is written from a sentence of section 5; the rejected fact must change nothing and record
exactly one `rejected` decision."""

from __future__ import annotations

from typing import Any

import pytest
from strategies import E1, E2, PARK, W1, W2, Book, flag, grant, state_snapshot

from contracts.facts import FactShapeError, parse_fact

AT = "2021-07-05T10:00:00+08:00"
REPORT = {
    "id": "r",
    "at": AT,
    "type": "monthly_report",
    "enterprise": E1,
    "worker": W1,
    "month": "2021-06",
    "income_fen": 230000,
    "hours": 160,
    "district": "320213",
}
BASE: dict[str, dict[str, Any]] = {
    "enterprise_registered": {"enterprise": E1, "name": "n"},
    "worker_registered": {"worker": W1, "name": "n", "residence": "320213", "residence_since": "2015-01-01"},
    "residence_changed": {"worker": W1, "residence": "320213", "since": "2021-01-01"},
    "category_declared": {"worker": W1, "category": "employment_difficulty", "since": "2021-01-01"},
    "category_revoked": {"worker": W1, "category": "employment_difficulty"},
    "monthly_report": {
        k: REPORT[k] for k in ("enterprise", "worker", "month", "income_fen", "hours", "district")
    },
    "report_corrected": {
        k: REPORT[k] for k in ("enterprise", "worker", "month", "income_fen", "hours", "district")
    },
    "report_retracted": {"enterprise": E1, "worker": W1, "month": "2021-06"},
    "contribution_paid": {"worker": W1, "month": "2021-06", "amount_fen": 81000},
    "contribution_refunded": {"worker": W1, "month": "2021-06"},
    "training_completed": {
        "enterprise": E1,
        "worker": W1,
        "course": "c",
        "hours": 10,
        "completed_on": "2021-07-01",
    },
    "training_retracted": {"enterprise": E1, "worker": W1, "course": "c"},
    "job_standard_approved": {"enterprise": E1, "job_type": "j", "approved_on": "2021-07-01"},
    "competition_listed": {"enterprise": E1, "competition": "c", "listed_on": "2021-07-01"},
    "competition_award": {"competition": "c", "worker": W1, "rank": 1},
    "park_recognized": {
        "park": PARK,
        "level": "municipal",
        "established_on": "2021-07-01",
        "recognized_on": "2021-07-01",
        "approved_amount_fen": 1,
    },
    "talent_award": {"enterprise": E1, "award": "a", "approved_amount_fen": 1},
}


def fact(type_: str, **changes: Any) -> dict[str, Any]:
    out = {"id": "x", "at": AT, "type": type_, **BASE[type_]}
    for key, value in changes.items():
        if value is ...:
            out.pop(key)
        else:
            out[key] = value
    return out


def shape_problem(raw: dict[str, Any]) -> str | None:
    try:
        parse_fact(raw)
    except FactShapeError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("type_", sorted(BASE))
def test_each_base_fact_has_a_valid_shape(type_: str) -> None:
    assert shape_problem(fact(type_)) is None


# --- shape: each rejection names the field ---------------------------------------------------------

SHAPE_CASES = [
    # (type, field changes, field the reason must name)
    ("monthly_report", {"income_fen": -1}, "income_fen"),
    ("monthly_report", {"hours": -0.5}, "hours"),
    ("monthly_report", {"month": "2021-13"}, "month"),
    ("monthly_report", {"month": "2021-6"}, "month"),
    ("monthly_report", {"month": "202106"}, "month"),
    ("monthly_report", {"district": "32021"}, "district"),
    ("monthly_report", {"district": "3202130"}, "district"),
    ("monthly_report", {"district": 320213}, "district"),
    ("monthly_report", {"enterprise": E1[:-1] + "0"}, "enterprise"),
    ("monthly_report", {"worker": W1[:-1] + "0"}, "worker"),
    ("monthly_report", {"worker": int(W1)}, "worker"),
    ("monthly_report", {"income_fen": ...}, "income_fen"),
    ("contribution_paid", {"amount_fen": 0}, "amount_fen"),
    ("contribution_paid", {"amount_fen": -5}, "amount_fen"),
    ("training_completed", {"hours": 0}, "hours"),
    ("training_completed", {"hours": 201}, "hours"),
    ("training_completed", {"completed_on": "2021-02-29"}, "completed_on"),
    ("training_completed", {"completed_on": "2021-7-01"}, "completed_on"),
    ("competition_award", {"rank": 0}, "rank"),
    ("park_recognized", {"approved_amount_fen": -1}, "approved_amount_fen"),
    ("park_recognized", {"level": "city"}, "level"),
    ("talent_award", {"approved_amount_fen": -1}, "approved_amount_fen"),
    ("category_declared", {"category": "low_income"}, "category"),
    ("category_declared", {"since": "2021-02-30"}, "since"),
    ("category_declared", {"until": "2020-12-31"}, "until"),
    ("category_declared", {"graduated": "2020-07-01"}, "graduated"),
    ("category_declared", {"category": "graduate_unemployed"}, "graduated"),
    ("category_declared", {"category": "graduate_unemployed", "graduated": "2020-7-1"}, "graduated"),
    ("worker_registered", {"residence_since": "yesterday"}, "residence_since"),
    ("residence_changed", {"residence": "3202"}, "residence"),
    ("enterprise_registered", {"name": ...}, "name"),
    ("job_standard_approved", {"approved_on": "2021-06-31"}, "approved_on"),
    ("competition_listed", {"listed_on": 20210701}, "listed_on"),
    ("park_recognized", {"park": "91320205MA1PK0001E"}, "park"),
    ("monthly_report", {"at": "2021-07-05T10:00:00"}, "at"),
    ("monthly_report", {"at": "2021-07-05"}, "at"),
    ("monthly_report", {"at": "not a time"}, "at"),
    ("monthly_report", {"at": ...}, "at"),
    ("monthly_report", {"id": ...}, "id"),
]


@pytest.mark.parametrize(
    ("type_", "changes", "field"),
    SHAPE_CASES,
    ids=[f"{t}-{f}-{i}" for i, (t, _, f) in enumerate(SHAPE_CASES)],
)
def test_malformed_fact_is_rejected_naming_the_field(type_: str, changes: dict[str, Any], field: str) -> None:
    reason = shape_problem(fact(type_, **changes))
    assert reason is not None and field in reason, reason


def test_unknown_type_is_rejected_naming_the_type() -> None:
    reason = shape_problem({"id": "x", "at": AT, "type": "pay_me"})
    assert reason is not None and "type" in reason and "pay_me" in reason
    assert shape_problem({"id": "x", "at": AT}) is not None
    assert shape_problem(["not", "an", "object"]) is not None  # type: ignore[arg-type]


INTEGER_FIELDS = [
    ("monthly_report", "income_fen"),
    ("report_corrected", "income_fen"),
    ("contribution_paid", "amount_fen"),
    ("training_completed", "hours"),
    ("competition_award", "rank"),
    ("park_recognized", "approved_amount_fen"),
    ("talent_award", "approved_amount_fen"),
]


@pytest.mark.parametrize(("type_", "field"), INTEGER_FIELDS)
@pytest.mark.parametrize("value", [1.5, 100000.25, True, False, "100", None])
def test_integer_fields_refuse_fractions_booleans_and_strings(type_: str, field: str, value: Any) -> None:
    reason = shape_problem(fact(type_, **{field: value}))
    assert reason is not None and field in reason, reason


@pytest.mark.parametrize("hours", [0, 0.5, 12.75, 160])
def test_report_hours_may_have_a_fraction(hours: float) -> None:
    assert shape_problem(fact("monthly_report", hours=hours)) is None
    assert shape_problem(fact("report_corrected", hours=hours)) is None


@pytest.mark.parametrize("hours", [True, "160", -1, None])
def test_report_hours_must_be_a_number_at_least_zero(hours: Any) -> None:
    reason = shape_problem(fact("monthly_report", hours=hours))
    assert reason is not None and "hours" in reason


@pytest.mark.parametrize(
    "at",
    [
        "2021-07-05T10:00:00+08:00",
        "2021-07-05T02:00:00Z",
        "2021-07-05T10:00:00.123+08:00",
        "2021-07-05T10:00:00-05:00",
    ],
)
def test_timestamps_with_an_offset_are_accepted(at: str) -> None:
    assert shape_problem(fact("monthly_report", at=at)) is None


def test_until_null_and_graduated_null_mean_absent() -> None:
    book = Book()
    book.worker(W1)
    assert book.category(W1, "employment_difficulty", "2021-01-01", until=None, graduated=None) == []
    assert book.category(W1, "graduate_unemployed", "2021-01-01", graduated=None) == [("rejected",)]
    assert "graduated" in book.last_reason()
    # until: null is open-ended: the category is still valid in 2030.
    assert parse_fact(fact("category_declared", until=None)).until is None  # type: ignore[union-attr]


def test_unknown_extra_fields_are_ignored() -> None:
    book = Book()
    assert book.enterprise(E1, comment="extra", nested={"a": [1, 2]}) == []
    assert book.worker(W1, platform_note="x") == []
    assert book.report(E1, W1, "2021-06", 230000, source="api") == []
    assert book.engine.intake.registry.reports == {(E1, W1, "2021-06")}


def test_ids_codes_and_dates_must_be_strings_as_written() -> None:
    assert shape_problem(fact("worker_registered", residence=320213)) is not None
    assert shape_problem(fact("worker_registered", residence_since=20150101)) is not None
    assert shape_problem(fact("contribution_paid", month=202106)) is not None


def test_division_codes_need_not_be_in_wuxi() -> None:
    assert shape_problem(fact("monthly_report", district="110101")) is None
    assert shape_problem(fact("worker_registered", residence="440305")) is None


# --- policy checks against what was accepted before ------------------------------------------------


def registered() -> Book:
    book = Book()
    book.enterprise(E1)
    book.worker(W1)
    return book


def assert_rejected_and_nothing_changes(book: Book, raw: dict[str, Any], *words: str) -> None:
    before = state_snapshot(book.engine)
    assert book.send(raw) == [("rejected",)]
    assert state_snapshot(book.engine) == before
    reason = book.last_reason()
    for word in words:
        assert word in reason, reason


@pytest.mark.parametrize(
    "type_",
    ["report_corrected", "report_retracted", "contribution_paid", "contribution_refunded", "monthly_report"],
)
def test_a_month_after_the_month_of_its_own_at_is_rejected(type_: str) -> None:
    book = registered()
    book.report(E1, W1, "2021-06", 230000)
    book.contribution(W1, "2021-06", 81000)
    assert_rejected_and_nothing_changes(
        book,
        book.raw(type_, **{**BASE[type_], "month": "2021-08", "at": "2021-07-31T23:59:59+08:00"}),
        "month",
    )


def test_the_month_of_at_is_read_in_the_timestamps_own_offset() -> None:
    book = registered()
    # 2021-08-01T00:30+08:00 is still July in UTC, but August in its own offset: accepted.
    assert book.report(E1, W1, "2021-08", 230000, at="2021-08-01T00:30:00+08:00") == []
    # 2021-07-31T20:00-05:00 is August in UTC, but July in its own offset: August is after it.
    assert book.report(E1, W1, "2021-09", 230000, at="2021-08-31T20:00:00-05:00") == [("rejected",)]
    assert book.report(E1, W1, "2021-07", 230000, at="2021-07-01T00:00:00+14:00") == []


@pytest.mark.parametrize("at", ["20210705T100000+0800", "2021-W27-1T10:00:00+08:00"])
def test_the_month_of_at_is_read_from_the_timestamp_in_any_iso_8601_form(at: str) -> None:
    # Both are 2021-07-05 10:00 +08:00: July and June are accepted, August is after it.
    book = registered()
    assert book.report(E1, W1, "2021-07", 230000, at=at) == []
    assert book.report(E1, W1, "2021-08", 230000, at=at) == [("rejected",)]
    assert "month" in book.last_reason()


def test_facts_about_unregistered_enterprises_or_workers_are_rejected() -> None:
    book = Book()
    assert_rejected_and_nothing_changes(
        book, book.raw("monthly_report", **BASE["monthly_report"]), "enterprise"
    )
    book.enterprise(E1)
    assert_rejected_and_nothing_changes(book, book.raw("monthly_report", **BASE["monthly_report"]), "worker")
    for type_ in ("residence_changed", "category_declared", "contribution_paid", "training_completed"):
        assert_rejected_and_nothing_changes(book, book.raw(type_, **BASE[type_]), "worker")
    for type_ in ("job_standard_approved", "competition_listed", "talent_award"):
        assert_rejected_and_nothing_changes(
            book, book.raw(type_, **{**BASE[type_], "enterprise": E2}), "enterprise", E2
        )


def test_registration_must_come_before_the_fact_even_when_submitted_later() -> None:
    book = Book()
    assert book.report(E1, W1, "2021-06", 230000) == [("rejected",)]
    book.enterprise(E1)
    book.worker(W1)
    # The rejected report is not revived by the registrations.
    assert book.engine.intake.registry.reports == set()


def test_a_park_operator_need_not_be_registered() -> None:
    book = Book()
    assert book.park("municipal", "2021-07-01", "2021-08-01", 100) == [
        grant("park_construction", PARK, None, 100)
    ]


@pytest.mark.parametrize(
    "type_",
    [
        "report_corrected",
        "report_retracted",
        "contribution_refunded",
        "training_retracted",
        "category_revoked",
        "competition_award",
    ],
)
def test_referring_to_something_that_does_not_exist_is_rejected(type_: str) -> None:
    book = registered()
    assert_rejected_and_nothing_changes(book, book.raw(type_, **BASE[type_]))


def test_a_report_of_another_enterprise_cannot_be_corrected() -> None:
    book = registered()
    book.enterprise(E2)
    book.report(E1, W1, "2021-06", 230000)
    assert_rejected_and_nothing_changes(
        book, book.raw("report_corrected", **{**BASE["report_corrected"], "enterprise": E2})
    )


DUPLICATES = [
    ("enterprise_registered", {}),
    ("worker_registered", {"residence": "320211"}),
    ("monthly_report", {"income_fen": 1}),
    ("contribution_paid", {"amount_fen": 2}),
    ("training_completed", {"hours": 3, "completed_on": "2021-07-02"}),
    ("category_declared", {"since": "2020-01-01"}),
    ("job_standard_approved", {"approved_on": "2021-08-01"}),
    ("competition_listed", {"listed_on": "2021-08-01"}),
    ("competition_award", {"rank": 2}),
    ("park_recognized", {"level": "national"}),
    ("talent_award", {"approved_amount_fen": 5}),
]


@pytest.mark.parametrize(("type_", "changes"), DUPLICATES, ids=[t for t, _ in DUPLICATES])
def test_a_second_fact_for_the_same_key_is_a_rejected_duplicate(type_: str, changes: dict[str, Any]) -> None:
    book = registered()  # registers E1 and W1
    if type_ == "competition_award":
        book.listing(E1, "c", "2021-07-01")
    if type_ not in {"enterprise_registered", "worker_registered"}:
        assert book.send(book.raw(type_, **BASE[type_])) != [("rejected",)]
    assert_rejected_and_nothing_changes(book, book.raw(type_, **{**BASE[type_], **changes}))


def test_the_same_key_for_other_parties_is_not_a_duplicate() -> None:
    book = registered()
    book.enterprise(E2)
    book.worker(W2)
    book.listing(E1, "c", "2021-07-01")
    assert book.report(E1, W1, "2021-06", 1) == []
    assert book.report(E2, W1, "2021-06", 1) == []
    assert book.report(E1, W2, "2021-06", 1) == []
    assert book.award("c", W1) == [flag("recognition", "skill_competition", W1, W1, "c")]
    assert book.award("c", W2) == [flag("recognition", "skill_competition", W2, W2, "c")]
    assert book.job_standard(E1, "j", "2021-07-01") == [grant("job_standard", E1, None, 1000000, ref="j")]
    assert book.job_standard(E2, "j", "2021-07-01") == [grant("job_standard", E2, None, 1000000, ref="j")]
    assert book.training(E1, W1, "c", 1, "2021-07-01") == [grant("training", E1, W1, 1850, ref="c")]
    assert book.training(E2, W1, "c", 1, "2021-07-01") == [grant("training", E2, W1, 1850, ref="c")]


@pytest.mark.parametrize(
    ("withdraw", "create"),
    [
        ("report_retracted", "monthly_report"),
        ("contribution_refunded", "contribution_paid"),
        ("training_retracted", "training_completed"),
        ("category_revoked", "category_declared"),
    ],
)
def test_withdrawn_facts_no_longer_exist(withdraw: str, create: str) -> None:
    book = registered()
    assert book.send(book.raw(create, **BASE[create])) != [("rejected",)]
    assert book.send(book.raw(withdraw, **BASE[withdraw])) != [("rejected",)]
    # withdrawing it again is rejected ...
    assert_rejected_and_nothing_changes(book, book.raw(withdraw, **BASE[withdraw]))
    # ... and a new one for the same key is accepted as new
    assert book.send(book.raw(create, **BASE[create])) != [("rejected",)]
    assert book.engine.submit(book.raw(create, **BASE[create]))[0].outcome == "rejected"  # now a duplicate


@pytest.mark.parametrize(
    ("type_", "field"),
    [
        ("job_standard_approved", "approved_on"),
        ("competition_listed", "listed_on"),
        ("park_recognized", "recognized_on"),
    ],
)
def test_dated_events_before_the_measures_are_rejected(type_: str, field: str) -> None:
    book = registered()
    assert_rejected_and_nothing_changes(book, book.raw(type_, **{**BASE[type_], field: "2021-05-30"}), field)
    assert book.send(book.raw(type_, **{**BASE[type_], field: "2021-05-31"})) != [("rejected",)]


def test_approved_on_before_the_measures_is_rejected_even_for_a_new_job_type() -> None:
    book = registered()
    assert book.job_standard(E1, "网约配送员", "2021-05-30") == [("rejected",)]
    assert book.job_standard(E1, "网约配送员", "2021-05-31") == [
        grant("job_standard", E1, None, 1000000, ref="网约配送员")
    ]


# --- idempotency: the fact id ----------------------------------------------------------------------


def test_same_id_same_content_records_nothing() -> None:
    book = registered()
    raw = book.raw("monthly_report", **BASE["monthly_report"])
    assert book.send(raw) == []
    before, decisions = state_snapshot(book.engine), len(book.decisions)
    submission, caused = book.engine.submit(dict(raw))
    assert submission.outcome == "duplicate" and caused == []
    assert state_snapshot(book.engine) == before and len(book.decisions) == decisions


def test_same_id_same_content_of_a_rejected_fact_records_nothing() -> None:
    book = registered()
    raw = book.raw("monthly_report", **{**BASE["monthly_report"], "worker": W2})  # W2 not registered
    assert book.send(raw) == [("rejected",)]
    book.worker(W2)  # even now that it would be accepted
    submission, caused = book.engine.submit(dict(raw))
    assert submission.outcome == "duplicate" and caused == []


def test_same_id_same_content_of_a_malformed_fact_records_nothing() -> None:
    book = registered()
    raw = book.raw("monthly_report", **{**BASE["monthly_report"], "income_fen": -5})
    assert book.send(raw) == [("rejected",)]
    assert book.engine.submit(dict(raw))[1] == []


@pytest.mark.parametrize(
    "change",
    [{"income_fen": 230001}, {"at": "2021-07-05T10:00:01+08:00"}, {"extra": "field"}, {"hours": 160.0}],
)
def test_same_id_different_content_is_rejected(change: dict[str, Any]) -> None:
    book = registered()
    raw = book.raw("monthly_report", **BASE["monthly_report"])
    book.send(raw)
    assert_rejected_and_nothing_changes(book, {**raw, **change}, raw["id"])


def test_same_id_as_a_rejected_fact_with_different_content_is_rejected() -> None:
    book = registered()
    raw = book.raw("monthly_report", **{**BASE["monthly_report"], "income_fen": -5})
    book.send(raw)
    assert_rejected_and_nothing_changes(book, {**raw, "income_fen": 5}, "fact id")


def test_same_id_same_content_is_a_no_op_whatever_the_key_order() -> None:
    book = registered()
    raw = book.raw("monthly_report", **BASE["monthly_report"])
    book.send(raw)
    assert book.engine.submit(dict(reversed(list(raw.items()))))[1] == []


def test_a_rejected_fact_records_exactly_one_rejected_decision_with_its_reason() -> None:
    book = registered()
    submission, decisions = book.engine.submit(
        book.raw("monthly_report", **{**BASE["monthly_report"], "month": "2021-13"})
    )
    assert submission.outcome == "rejected"
    assert [d.kind for d in decisions] == ["rejected"]
    d = decisions[0].to_dict()
    assert d["after"] == submission.fact_id and "month" in d["reason"] and d["rule_set"] == "wuxi-2021-26/1"


@pytest.mark.parametrize(
    "raw",
    [
        {"id": "x", "at": AT, "type": "enterprise_registered", "enterprise": E1, "name": "n", 1: "int key"},
        {
            "id": "x",
            "at": AT,
            "type": "enterprise_registered",
            "enterprise": E1,
            "name": "n",
            "bad": float("nan"),
        },
        {"id": 5, "at": AT, "type": "enterprise_registered", "enterprise": E1, "name": "n"},
        {"id": "x" * 500, "at": AT, "type": "enterprise_registered", "enterprise": E1, "name": "n"},
        {"id": "x", "at": AT, "type": "enterprise_registered", "enterprise": E1, "name": "a\x00b"},
    ],
)
def test_hostile_input_is_handled(raw: dict[Any, Any]) -> None:
    submission, decisions = Book().engine.submit(raw)
    assert submission.outcome in {"accepted", "rejected"}
    assert [d.kind for d in decisions] in ([], ["rejected"])
