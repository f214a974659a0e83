"""RULES.md 4.3 training (Art. 6): 1850 fen per class hour, 50000 fen per worker, in acceptance order."""

from __future__ import annotations

from strategies import E1, E2, W1, W2, Book, clawback, grant

TR = "training"


def book() -> Book:
    b = Book()
    b.enterprise(E1)
    b.enterprise(E2)
    b.worker(W1)
    b.worker(W2, residence="320211")
    return b


def test_training_completed_before_the_measures_earns_nothing_and_uses_no_cap() -> None:
    b = book()
    assert b.training(E1, W1, "early", 20, "2021-05-30") == []  # accepted, earns nothing
    assert b.decisions == []
    assert b.training(E1, W1, "late", 30, "2021-06-10") == [
        grant(TR, E1, W1, 50000, ref="late")
    ]  # 55500 capped
    assert b.untrain(E1, W1, "early") == []  # its retraction changes nothing either


def test_training_completed_on_the_day_the_measures_took_effect_earns() -> None:
    b = book()
    assert b.training(E1, W1, "c", 10, "2021-05-31") == [grant(TR, E1, W1, 18500, ref="c")]


def test_the_cap_is_used_in_acceptance_order_not_completion_order() -> None:
    b = book()
    assert b.training(E1, W1, "a", 20, "2021-09-01") == [grant(TR, E1, W1, 37000, ref="a")]
    assert b.training(E2, W1, "b", 20, "2021-07-01") == [grant(TR, E2, W1, 13000, ref="b")]
    assert b.training(E2, W1, "c", 1, "2021-06-01") == []  # no cap left: a line of 0 is absent


def test_a_retraction_frees_the_cap_and_a_new_record_for_the_same_key_joins_at_the_end() -> None:
    b = book()
    b.training(E1, W1, "a", 20, "2021-07-01")  # 37000
    b.training(E2, W1, "b", 20, "2021-07-02")  # 13000
    assert b.untrain(E1, W1, "a") == sorted(
        [clawback(TR, E1, W1, 37000, ref="a"), grant(TR, E2, W1, 24000, ref="b")], key=repr
    )
    assert b.training(E1, W1, "a", 20, "2021-07-01") == [grant(TR, E1, W1, 13000, ref="a")]  # after b now


def test_the_cap_is_per_worker() -> None:
    b = book()
    assert b.training(E1, W1, "a", 200, "2021-07-01") == [grant(TR, E1, W1, 50000, ref="a")]
    assert b.training(E1, W2, "a", 200, "2021-07-01") == [grant(TR, E1, W2, 50000, ref="a")]


def test_hours_bounds_one_and_two_hundred_are_accepted() -> None:
    b = book()
    assert b.training(E1, W1, "one", 1, "2021-07-01") == [grant(TR, E1, W1, 1850, ref="one")]
    assert b.training(E1, W2, "max", 200, "2021-07-01") == [grant(TR, E1, W2, 50000, ref="max")]
