"""RULES.md 4.1 employment_service (Art. 2), clause by clause, beyond what the vectors show.

Minimum wage: 202000 until 2021-07, 228000 from 2021-08, 249000 from 2024-01 (looked up on m-01)."""

from __future__ import annotations

from strategies import E1, E2, E3, OUTSIDE, W1, Book, clawback, grant

ES = "employment_service"
STABLE = 300000


def book_with(
    *enterprises: str,
    category: str | None = "employment_difficulty",
    since: str = "2021-01-01",
    **category_fields: object,
) -> Book:
    book = Book()
    for enterprise in enterprises:
        book.enterprise(enterprise)
    book.worker(W1, residence="320213", since="2015-01-01")
    if category:
        book.category(W1, category, since, **category_fields)
    return book


def test_six_consecutive_stable_months_qualify_and_grant_on_the_sixth() -> None:
    book = book_with(E1)
    assert book.work(E1, W1, "2021-06", [STABLE] * 5) == []
    assert book.report(E1, W1, "2021-11", STABLE) == [grant(ES, E1, W1, 100000)]
    assert book.report(E1, W1, "2021-12", STABLE) == []  # once per worker


def test_months_before_the_policy_start_never_count() -> None:
    book = book_with(E1)
    # 2021-01 .. 2021-05 are stable, but a run starts at 2021-06 at the earliest.
    assert book.work(E1, W1, "2021-01", [STABLE] * 10) == []
    assert book.report(E1, W1, "2021-11", STABLE) == [grant(ES, E1, W1, 100000)]


def test_a_missing_or_unstable_month_breaks_the_run() -> None:
    book = book_with(E1)
    # 2021-08 is below its wage (228000): no run through 2021-08 qualifies, up to 2022-01.
    assert (
        book.work(E1, W1, "2021-06", [STABLE, STABLE, 227999, STABLE, STABLE, STABLE, STABLE, STABLE]) == []
    )
    # a run 2021-09..2022-02 completes with February
    assert book.report(E1, W1, "2022-02", 228000) == [grant(ES, E1, W1, 100000)]


def test_income_exactly_the_minimum_wage_is_stable_and_the_wage_is_read_on_m_01() -> None:
    book = book_with(E1)
    # 2021-06, 2021-07 at 202000 (the wage then), 2021-08 .. 2021-11 at 228000.
    assert book.work(E1, W1, "2021-06", [202000, 202000, 228000, 228000, 228000]) == []
    assert book.report(E1, W1, "2021-11", 228000) == [grant(ES, E1, W1, 100000)]


def test_income_is_counted_per_enterprise_not_in_total() -> None:
    book = book_with(E1, E2)
    for month in ("2021-06", "2021-07", "2021-08", "2021-09", "2021-10", "2021-11"):
        book.report(E1, W1, month, 150000)
        book.report(E2, W1, month, 150000)  # 300000 in total, but stable through neither
    assert [d for d in book.decisions if d.program == ES] == []


def test_category_must_be_valid_on_the_first_day_of_the_run() -> None:
    book = book_with(E1, since="2021-06-02")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6) == []  # run 06..11: not valid on 2021-06-01
    assert book.report(E1, W1, "2021-12", STABLE) == [grant(ES, E1, W1, 100000)]  # run 07..12


def test_until_ends_a_category_and_is_inclusive() -> None:
    book = book_with(E1, category="registered_unemployed", until="2021-06-01")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6)[-1:] == [grant(ES, E1, W1, 80000)]  # valid on 06-01

    book = book_with(E1, category="registered_unemployed", until="2021-05-31")
    book.category(W1, "employment_difficulty", "2021-07-01")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6) == []  # not valid on 2021-06-01: run 06 fails
    assert book.report(E1, W1, "2021-12", STABLE) == [grant(ES, E1, W1, 100000)]  # run 07..12, difficulty


def test_no_category_no_grant_and_a_late_declaration_grants_retroactively() -> None:
    book = book_with(E1, category=None)
    assert book.work(E1, W1, "2021-06", [STABLE] * 8) == []  # 2021-06 .. 2022-01
    # valid from 2021-07-15: the runs from 06 and 07 fail, the run 2021-08 .. 2022-01 qualifies.
    assert book.category(W1, "registered_unemployed", "2021-07-15") == [grant(ES, E1, W1, 80000)]


def test_difficulty_is_preferred_and_a_later_difficulty_declaration_grants_the_difference() -> None:
    book = book_with(E1, category="registered_unemployed")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6)[-1:] == [grant(ES, E1, W1, 80000)]
    assert book.category(W1, "employment_difficulty", "2021-05-01") == [grant(ES, E1, W1, 20000)]
    assert book.revoke(W1, "employment_difficulty") == [clawback(ES, E1, W1, 20000)]
    assert book.revoke(W1, "registered_unemployed") == [clawback(ES, E1, W1, 80000)]


def test_residence_outside_wuxi_on_the_last_months_first_day_blocks_the_run() -> None:
    book = book_with(E1)
    book.moved(W1, OUTSIDE, "2021-11-01")  # not resident on 2021-11-01, (s+5)-01 of the run from 2021-06
    assert book.work(E1, W1, "2021-06", [STABLE] * 10) == []  # no run ending 2021-11 .. 2022-03 qualifies
    assert book.moved(W1, "320211", "2022-04-01") == []
    assert book.report(E1, W1, "2022-04", STABLE) == [grant(ES, E1, W1, 100000)]  # run 2021-11 .. 2022-04


def test_moving_out_after_the_last_months_first_day_does_not_block() -> None:
    book = book_with(E1)
    book.moved(W1, OUTSIDE, "2021-11-02")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6)[-1:] == [grant(ES, E1, W1, 100000)]


def test_residence_is_only_checked_at_the_end_of_the_run() -> None:
    book = Book()
    book.enterprise(E1)
    book.worker(W1, residence=OUTSIDE, since="2015-01-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    book.moved(W1, "320214", "2021-11-01")
    assert book.work(E1, W1, "2021-06", [STABLE] * 6)[-1:] == [grant(ES, E1, W1, 100000)]


def test_a_retroactive_move_out_claws_back() -> None:
    book = book_with(E1)
    book.work(E1, W1, "2021-06", [STABLE] * 6)
    assert book.moved(W1, OUTSIDE, "2021-10-01") == [clawback(ES, E1, W1, 100000)]


def test_tie_on_the_start_month_goes_to_the_smallest_enterprise_id() -> None:
    book = book_with(E1, E2)
    for month in ("2021-06", "2021-07", "2021-08", "2021-09", "2021-10"):
        book.report(E2, W1, month, STABLE)
        book.report(E1, W1, month, STABLE)
    assert book.report(E2, W1, "2021-11", STABLE) == [grant(ES, E2, W1, 100000)]  # E2 completes first ...
    # ... until E1, whose run starts in the same month and whose id is smaller, completes.
    assert book.report(E1, W1, "2021-11", STABLE) == sorted(
        [grant(ES, E1, W1, 100000), clawback(ES, E2, W1, 100000)], key=repr
    )


def test_the_earliest_start_wins_whatever_the_ids_and_the_completion_order() -> None:
    book = book_with(E1, E3)
    book.work(E1, W1, "2021-07", [STABLE] * 6)  # E1: run 2021-07 .. 2021-12 completes first
    assert book.decisions[-1].to_dict()["beneficiary"] == E1
    # E3 (largest id) reports 2021-06 .. 2021-11 late: its run starts earlier.
    out = book.work(E3, W1, "2021-06", [STABLE] * 6)
    assert out == sorted([grant(ES, E3, W1, 100000), clawback(ES, E1, W1, 100000)], key=repr)


def test_each_enterprise_uses_its_earliest_qualifying_run() -> None:
    # E1's run from 2021-06 does not qualify (no category on 2021-06-01); its run from 2021-08 does.
    # E2's earliest qualifying run starts 2021-09: E1 keeps the grant, with the E1 run from 2021-08.
    book = book_with(E1, E2, since="2021-07-20")
    book.work(E1, W1, "2021-06", [STABLE] * 8)  # through 2022-01
    assert book.decisions[-1].kind == "grant" and book.decisions[-1].after == "f" + str(book.count)
    assert book.work(E2, W1, "2021-09", [STABLE] * 6) == []


def test_a_retracted_report_breaks_the_run_and_claws_back() -> None:
    book = book_with(E1)
    book.work(E1, W1, "2021-06", [STABLE] * 6)
    assert book.retract(E1, W1, "2021-08") == [clawback(ES, E1, W1, 100000)]
    assert book.report(E1, W1, "2021-08", STABLE) == [grant(ES, E1, W1, 100000)]


def test_a_correction_below_the_wage_claws_back_and_a_correction_back_grants_again() -> None:
    book = book_with(E1)
    book.work(E1, W1, "2021-06", [STABLE] * 6)
    assert book.correct(E1, W1, "2021-09", 227999) == [clawback(ES, E1, W1, 100000)]
    assert book.correct(E1, W1, "2021-09", 228000) == [grant(ES, E1, W1, 100000)]
    assert book.correct(E1, W1, "2021-09", 228001) == []  # no change to the line, nothing recorded


def test_retracting_the_last_month_of_the_run_claws_back_until_it_is_reported_again() -> None:
    book = book_with(E1)
    book.work(E1, W1, "2021-06", [STABLE] * 6)
    assert book.retract(E1, W1, "2021-11") == [clawback(ES, E1, W1, 100000)]
    assert book.report(E1, W1, "2021-11", STABLE) == [grant(ES, E1, W1, 100000)]


def test_a_broken_run_is_replaced_by_the_next_one_when_it_completes() -> None:
    book = book_with(E1)
    book.work(E1, W1, "2021-06", [STABLE] * 7)  # granted with 2021-11; 2021-12 reported too
    assert book.retract(E1, W1, "2021-08") == [clawback(ES, E1, W1, 100000)]  # 09..12: four months
    assert book.report(E1, W1, "2022-01", STABLE) == []
    assert book.report(E1, W1, "2022-02", STABLE) == [grant(ES, E1, W1, 100000)]  # run 2021-09 .. 2022-02
    # A correction of a month before the run changes nothing; one inside it breaks it.
    assert book.correct(E1, W1, "2021-07", 1) == []
    assert book.correct(E1, W1, "2021-10", 1) == [clawback(ES, E1, W1, 100000)]
