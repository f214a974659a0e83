"""RULES.md 4.2 social_insurance (Art. 2, 财社〔2017〕164号) and its one-year extension, clause by clause.

A contribution of 90000 fen gives a line of 60000; 81000 gives 54000."""

from __future__ import annotations

from typing import Any

import pytest
from strategies import E1, E2, OUTSIDE, W1, Book, flag, month_range, si

from services.eligibility.domain.programmes.social_insurance import round_half_up

SI = "social_insurance"
LOW = 120000  # platform work, never stable


def si_only(decisions: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [d for d in decisions if d[0] != "rejected" and d[1] == SI]


def difficulty_book(**category_fields: Any) -> Book:
    book = Book()
    book.enterprise(E1)
    book.enterprise(E2)
    book.worker(W1, residence="320213", since="2015-01-01")
    book.category(W1, "employment_difficulty", category_fields.pop("since", "2021-01-01"), **category_fields)
    return book


def graduate_book(graduated: str, since: str = "2021-01-01", **category_fields: Any) -> Book:
    book = Book()
    book.enterprise(E1)
    book.worker(W1, residence="320213", since="2015-01-01")
    book.category(W1, "graduate_unemployed", since, graduated=graduated, **category_fields)
    return book


def test_rounding_is_half_up_per_line() -> None:
    book = difficulty_book()
    book.report(E1, W1, "2021-06", LOW)
    assert book.contribution(W1, "2021-06", 100000) == [si(W1, "2021-06", 66667)]  # 66666.67
    book.report(E1, W1, "2021-07", LOW)
    assert book.contribution(W1, "2021-07", 100001) == [si(W1, "2021-07", 66667)]  # 66667.33
    book.report(E1, W1, "2021-08", LOW)
    assert book.contribution(W1, "2021-08", 100002) == [si(W1, "2021-08", 66668)]  # exact
    book.report(E1, W1, "2021-09", LOW)
    assert book.contribution(W1, "2021-09", 1) == [si(W1, "2021-09", 1)]  # 0.67


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        (1, 2, 1),
        (3, 2, 2),
        (5, 2, 3),
        (2, 4, 1),
        (1, 3, 0),
        (2, 3, 1),
        (0, 3, 0),
        (200000, 3, 66667),
        (7, 1, 7),
    ],
)
def test_round_half_up_is_not_bankers_rounding(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_up(numerator, denominator) == expected


def test_a_month_is_covered_only_with_platform_income() -> None:
    book = difficulty_book()
    assert book.contribution(W1, "2021-06", 81000) == []  # no platform work that month
    assert book.report(E1, W1, "2021-06", 0, hours=0) == []  # income 0 is no platform work either
    assert book.correct(E1, W1, "2021-06", 1) == [si(W1, "2021-06", 54000)]
    assert book.retract(E1, W1, "2021-06") == [si(W1, "2021-06", 54000, kind="clawback")]


def test_months_before_the_policy_start_are_not_covered() -> None:
    book = difficulty_book()
    book.report(E1, W1, "2021-05", LOW)
    assert book.contribution(W1, "2021-05", 81000) == []


def test_residence_outside_wuxi_on_m_01_blocks_the_month() -> None:
    book = difficulty_book()
    book.moved(W1, OUTSIDE, "2021-08-01")
    book.moved(W1, "320213", "2021-09-15")
    decisions = book.work(E1, W1, "2021-06", [LOW] * 5, 90000)  # 2021-06 .. 2021-10
    assert si_only(decisions) == [si(W1, m, 60000) for m in ("2021-06", "2021-07", "2021-10")]


def test_residence_facts_with_the_same_since_the_later_accepted_wins() -> None:
    book = Book()
    book.enterprise(E1)
    book.worker(W1, residence="320213", since="2021-01-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    assert book.moved(W1, OUTSIDE, "2021-01-01") == []
    assert si_only(book.work(E1, W1, "2021-06", [LOW] * 2, 90000)) == []
    assert book.moved(W1, "320205", "2021-01-01") == [si(W1, "2021-06", 60000), si(W1, "2021-07", 60000)]
    assert book.moved(W1, OUTSIDE, "2021-01-01") == [
        si(W1, "2021-06", 60000, "clawback"),
        si(W1, "2021-07", 60000, "clawback"),
    ]


def test_a_refunded_contribution_claws_back_and_a_new_payment_is_granted_anew() -> None:
    book = difficulty_book()
    book.work(E1, W1, "2021-06", [LOW] * 2, 90000)
    assert book.refund(W1, "2021-07") == [si(W1, "2021-07", 60000, "clawback")]
    assert book.refund(W1, "2021-07") == [("rejected",)]
    assert book.contribution(W1, "2021-07", 90001) == [si(W1, "2021-07", 60001)]


def test_until_ends_the_track_category_month_by_month() -> None:
    book = difficulty_book(until="2021-08-01")
    decisions = book.work(E1, W1, "2021-06", [LOW] * 4, 90000)  # valid on 06-01, 07-01, 08-01; not 09-01
    assert si_only(decisions) == [si(W1, m, 60000) for m in ("2021-06", "2021-07", "2021-08")]


def test_the_graduate_track_is_24_months_from_the_first_covered_month_without_extension() -> None:
    book = graduate_book(graduated="2021-06-20", since="2021-06-01")
    decisions = book.work(E1, W1, "2021-06", [LOW] * 32, 90000)  # 2021-06 .. 2024-01, never stable
    assert si_only(decisions) == [si(W1, m, 60000) for m in month_range("2021-06", 24)]  # .. 2023-05
    assert not [d for d in book.decisions if d.kind == "extension"]


def test_the_graduate_window_is_24_months_after_the_month_of_leaving_school() -> None:
    book = graduate_book(graduated="2019-06-01")  # window through 2021-06
    assert si_only(book.work(E1, W1, "2021-06", [LOW], 90000)) == [si(W1, "2021-06", 60000)]

    book = graduate_book(graduated="2019-06-30")
    # 2021-06 has a contribution but no platform work: the first covered month 2021-07 is too late.
    book.contribution(W1, "2021-06", 90000)
    assert si_only(book.work(E1, W1, "2021-07", [LOW] * 3, 90000)) == []
    # A late report for 2021-06 makes it covered, inside the window: the period starts there.
    assert book.report(E1, W1, "2021-06", LOW) == [si(W1, m, 60000) for m in month_range("2021-06", 4)]

    book = graduate_book(graduated="2019-05-31")  # window through 2021-05, before the policy start
    assert si_only(book.work(E1, W1, "2021-06", [LOW] * 2, 90000)) == []


def test_the_period_starts_at_the_first_covered_month_and_moves_with_it() -> None:
    book = graduate_book(graduated="2020-06-10")  # window through 2022-06
    book.contribution(W1, "2021-06", 90000)  # not covered: no platform work
    decisions = book.work(E1, W1, "2021-07", [LOW] * 25, 90000)  # 2021-07 .. 2023-07
    assert si_only(decisions) == [si(W1, m, 60000) for m in month_range("2021-07", 24)]  # P0 = 2021-07
    # Now 2021-06 becomes covered: P0 = 2021-06, the period ends 2023-05, and 2023-06 is clawed back.
    assert book.report(E1, W1, "2021-06", LOW) == sorted(
        [si(W1, "2021-06", 60000), si(W1, "2023-06", 60000, "clawback")], key=repr
    )


def test_difficulty_is_preferred_over_graduate_when_both_are_valid() -> None:
    book = graduate_book(graduated="2021-05-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    decisions = book.work(E1, W1, "2021-06", [LOW] * 26, 90000)
    assert si_only(decisions) == [si(W1, m, 60000) for m in month_range("2021-06", 26)]  # beyond 24


def test_one_period_per_worker_the_track_of_the_first_covered_month() -> None:
    # Graduate valid from 2021-06, difficulty only from 2021-09: P0 = 2021-06 on the graduate track.
    book = graduate_book(graduated="2021-05-01")
    book.category(W1, "employment_difficulty", "2021-09-01")
    decisions = book.work(E1, W1, "2021-06", [LOW] * 26, 90000)
    assert si_only(decisions) == [si(W1, m, 60000) for m in month_range("2021-06", 24)]


def test_a_revoked_track_category_claws_back_and_the_period_follows_the_remaining_facts() -> None:
    book = graduate_book(graduated="2021-05-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    book.work(E1, W1, "2021-06", [LOW] * 2, 90000)
    # Revoking difficulty: the graduate track from 2021-06 gives the same two lines, nothing changes.
    assert book.revoke(W1, "employment_difficulty") == []
    assert book.revoke(W1, "graduate_unemployed") == [
        si(W1, "2021-06", 60000, "clawback"),
        si(W1, "2021-07", 60000, "clawback"),
    ]


# --- the extension ---------------------------------------------------------------------------------
# P0 = 2021-06, so the period is 2021-06 .. 2024-05, X = 2024-06, the last six months are
# 2023-12 (wage 228000) and 2024-01 .. 2024-05 (wage 249000), and the extended period ends 2025-05.

EXTENSION = flag("extension", SI, W1, W1, month="2024-06")
REVOKED = flag("extension_revoked", SI, W1, W1, month="2024-06")


def started(**category_fields: Any) -> Book:
    book = difficulty_book(**category_fields)
    assert si_only(book.work(E1, W1, "2021-06", [LOW], 90000)) == [si(W1, "2021-06", 60000)]
    return book


def stable_end(book: Book) -> None:
    book.work(E1, W1, "2023-12", [228000, 249000, 249000, 249000, 249000, 249000], 90000)


def test_extension_when_not_stably_employed_at_the_end_and_active_after_it() -> None:
    book = started()
    # A month before X is no activity "for a month >= X".
    assert si_only(book.work(E1, W1, "2024-05", [LOW], 90000)) == [si(W1, "2024-05", 60000)]
    assert book.report(E1, W1, "2024-06", LOW) == [EXTENSION]
    assert book.contribution(W1, "2024-06", 90000) == [si(W1, "2024-06", 60000)]
    assert si_only(book.work(E1, W1, "2025-05", [LOW], 90000)) == [si(W1, "2025-05", 60000)]  # P0 + 47
    assert si_only(book.work(E1, W1, "2025-06", [LOW], 90000)) == []  # P0 + 48


def test_extension_is_triggered_by_a_contribution_alone() -> None:
    book = started()
    assert book.contribution(W1, "2024-07", 90000) == [EXTENSION]  # a month > X counts too
    assert book.report(E1, W1, "2024-07", LOW) == [si(W1, "2024-07", 60000)]


def test_no_extension_when_stably_employed_at_the_end() -> None:
    book = started()
    stable_end(book)
    assert si_only(book.work(E1, W1, "2024-06", [LOW], 90000)) == []
    assert not [d for d in book.decisions if "extension" in d.kind]


def test_no_extension_when_the_category_lapsed_on_x_01() -> None:
    book = started(until="2024-05-31")
    assert si_only(book.work(E1, W1, "2024-06", [LOW], 90000)) == []
    book = started(until="2024-06-01")  # still valid on X-01
    assert si_only(book.work(E1, W1, "2024-06", [LOW], 90000)) == [EXTENSION, si(W1, "2024-06", 60000)]
    assert si_only(book.work(E1, W1, "2024-07", [LOW], 90000)) == []  # not valid on 2024-07-01


def test_graduate_track_never_has_an_extension() -> None:
    book = graduate_book(graduated="2021-05-01")
    book.work(E1, W1, "2021-06", [LOW], 90000)
    assert si_only(book.work(E1, W1, "2023-06", [LOW], 90000)) == []  # P0 + 24
    assert si_only(book.work(E1, W1, "2024-06", [LOW], 90000)) == []


def test_a_correction_that_makes_the_end_stable_revokes_the_extension_and_claws_back() -> None:
    book = started()
    book.work(E1, W1, "2023-12", [228000, 249000, 249000, 100000, 249000, 249000], 90000)  # 2024-03 unstable
    assert si_only(book.work(E1, W1, "2024-06", [LOW], 90000)) == [EXTENSION, si(W1, "2024-06", 60000)]
    assert si_only(book.correct(E1, W1, "2024-03", 249000)) == sorted(
        [REVOKED, si(W1, "2024-06", 60000, "clawback")], key=repr
    )
    assert si_only(book.correct(E1, W1, "2024-03", 248999)) == [EXTENSION, si(W1, "2024-06", 60000)]


def test_stable_at_the_end_is_read_in_total_over_all_platforms() -> None:
    book = started()
    book.work(E1, W1, "2023-12", [228000, 249000, 249000, 248999, 249000, 249000], 90000)
    assert si_only(book.report(E1, W1, "2024-06", LOW)) == [EXTENSION]
    assert si_only(book.report(E2, W1, "2024-03", 1)) == [REVOKED]  # 248999 + 1 = 249000 in total


def test_the_extension_is_revoked_when_its_activity_is_withdrawn() -> None:
    book = started()
    assert book.report(E1, W1, "2024-06", LOW) == [EXTENSION]
    assert book.retract(E1, W1, "2024-06") == [REVOKED]
    assert book.contribution(W1, "2024-08", 90000) == [EXTENSION]
    assert book.refund(W1, "2024-08") == [REVOKED]


def test_no_lines_after_the_period_without_an_extension() -> None:
    book = started()
    stable_end(book)
    assert si_only(book.work(E1, W1, "2024-06", [LOW] * 3, 90000)) == []
    # Retracting a report of the last six months: 2024-02 is no longer covered (clawed back), the end
    # is no longer stable, so the extension comes with the months after the period.
    out = si_only(book.retract(E1, W1, "2024-02"))
    assert out == sorted(
        [
            si(W1, "2024-02", 60000, "clawback"),
            EXTENSION,
            *[si(W1, m, 60000) for m in ("2024-06", "2024-07", "2024-08")],
        ],
        key=repr,
    )
