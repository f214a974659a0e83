"""RULES.md 4.4 - 4.7: job standards, skill competitions and recognitions, parks, talent awards."""

from __future__ import annotations

import pytest
from strategies import E1, E2, PARK, W1, W2, Book, flag, grant


def book() -> Book:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    return b


@pytest.mark.parametrize(
    ("level", "established_on", "amount", "expected"),
    [
        ("municipal", "2021-05-31", 600000000, 500000000),
        ("provincial", "2021-07-01", 500000000, 500000000),
        ("national", "2021-07-01", 499999999, 499999999),
        ("municipal", "2021-07-01", 1, 1),
        ("municipal", "2021-07-01", 0, None),  # a money line is > 0
        ("district", "2021-07-01", 100000000, None),  # district parks earn nothing
        ("national", "2021-05-30", 100000000, None),  # established before the measures: accepted, nothing
    ],
)
def test_park_construction(level: str, established_on: str, amount: int, expected: int | None) -> None:
    b = book()
    out = b.park(level, established_on, "2021-08-01", amount)
    assert out == ([] if expected is None else [grant("park_construction", PARK, None, expected)])
    assert b.engine.intake.registry.parks == {PARK}  # accepted either way
    assert b.park("national", "2021-07-01", "2021-08-02", 5) == [("rejected",)]  # one recognition per park


@pytest.mark.parametrize(
    ("approved", "expected"), [(100000001, 100000000), (120000000, 100000000), (100000000, 100000000), (1, 1)]
)
def test_talent_award_is_capped(approved: int, expected: int) -> None:
    b = book()
    assert b.talent(E1, "THRC-1", approved) == [grant("talent", E1, None, expected, ref="THRC-1")]


def test_talent_awards_are_per_award_id() -> None:
    b = book()
    b.enterprise(E2)
    assert b.talent(E1, "A", 0) == []  # accepted, no line
    assert b.talent(E1, "A", 5) == [("rejected",)]
    assert b.talent(E2, "B", 5) == [grant("talent", E2, None, 5, ref="B")]
    assert b.talent(E2, "A", 5) == [("rejected",)]  # a second talent award id, even for another enterprise


def test_job_standard_per_enterprise_and_job_type() -> None:
    b = book()
    assert b.job_standard(E1, "网约配送员", "2021-09-28") == [
        grant("job_standard", E1, None, 1000000, ref="网约配送员")
    ]
    assert b.job_standard(E1, "网约车司机", "2021-09-28") == [
        grant("job_standard", E1, None, 1000000, ref="网约车司机")
    ]
    assert b.job_standard(E1, "网约配送员", "2021-09-29") == [("rejected",)]


def test_skill_competition_listing_and_recognitions() -> None:
    b = book()
    b.worker(W2, residence="320211")
    assert b.award("WX-1", W1) == [("rejected",)]  # not listed (yet)
    assert "WX-1" in b.last_reason()
    assert b.listing(E1, "WX-1", "2021-10-20") == [grant("skill_competition", E1, None, 2000000, ref="WX-1")]
    assert b.listing(E1, "WX-1", "2021-10-21") == [("rejected",)]  # a second listing
    assert b.award("WX-1", W1, rank=3) == [flag("recognition", "skill_competition", W1, W1, "WX-1")]
    assert b.award("WX-1", W1, rank=1) == [("rejected",)]  # a second award to the same worker
    assert b.award("WX-1", W2, rank=2) == [flag("recognition", "skill_competition", W2, W2, "WX-1")]


def test_competition_listed_by_an_unregistered_enterprise_is_rejected() -> None:
    b = book()
    assert b.listing(E2, "WX-1", "2021-10-20") == [("rejected",)]
    assert b.award("WX-1", W1) == [("rejected",)]  # so it is not listed


def test_a_talent_award_submitted_before_the_measures_is_granted_with_the_cap() -> None:
    # 4.7 has no date condition and section 5 rejects no talent award for its date.
    b = book()
    assert b.talent(E1, "THRC-0", 150000000, at="2021-05-25T10:00:00+08:00") == [
        grant("talent", E1, None, 100000000, ref="THRC-0")
    ]
