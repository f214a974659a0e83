"""RULES.md 4.8 new_employment (Art. 4): per calendar year, the first month >= policy start that is
stable in total and has a contribution."""

from __future__ import annotations

from strategies import E1, E2, OUTSIDE, W1, Book, flag

NE = "new_employment"


def stat(month: str, kind: str = "statistic") -> tuple[object, ...]:
    return flag(kind, NE, None, W1, month=month)


def ne_only(decisions: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [d for d in decisions if d[0] != "rejected" and d[1] == NE]


def book(residence: str = "320213") -> Book:
    b = Book()
    b.enterprise(E1)
    b.enterprise(E2)
    b.worker(W1, residence=residence)
    return b


def test_months_before_the_policy_start_do_not_count() -> None:
    b = book()
    assert ne_only(b.work(E1, W1, "2021-05", [202000], 70000)) == []
    assert ne_only(b.work(E1, W1, "2021-06", [202000], 70000)) == [stat("2021-06")]


def test_income_is_stable_in_total_over_platforms() -> None:
    b = book()
    assert b.contribution(W1, "2021-08", 70000) == []
    assert b.report(E1, W1, "2021-08", 150000) == []
    assert ne_only(b.report(E2, W1, "2021-08", 78000)) == [stat("2021-08")]  # 228000 in total


def test_once_per_calendar_year() -> None:
    b = book()
    out = b.work(E1, W1, "2021-11", [300000] * 4, 70000)  # 2021-11 .. 2022-02
    assert ne_only(out) == [stat("2021-11"), stat("2022-01")]


def test_a_contribution_is_needed_and_an_earlier_one_moves_the_count() -> None:
    b = book()
    b.work(E1, W1, "2022-03", [300000] * 3)  # stable, no contribution
    assert b.contribution(W1, "2022-05", 70000) == [stat("2022-05")]
    assert b.contribution(W1, "2022-04", 70000) == sorted(
        [stat("2022-04"), stat("2022-05", "statistic_revoked")], key=repr
    )
    assert b.refund(W1, "2022-04") == sorted(
        [stat("2022-04", "statistic_revoked"), stat("2022-05")], key=repr
    )


def test_the_minimum_wage_is_the_one_in_force_on_m_01() -> None:
    b = book()
    # December 2023 (wage 228000) reported in January 2024: 240000 is stable.
    assert ne_only(b.work(E1, W1, "2023-12", [240000], 70000)) == [stat("2023-12")]
    # January 2024: the wage is 249000, 240000 is not stable; February at exactly 249000 is.
    assert ne_only(b.work(E1, W1, "2024-01", [240000, 249000], 70000)) == [stat("2024-02")]


def test_residence_does_not_matter_for_the_statistic() -> None:
    b = book(residence=OUTSIDE)
    assert ne_only(b.work(E1, W1, "2021-06", [300000], 70000)) == [stat("2021-06")]
