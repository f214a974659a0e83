"""RULES.md section 1 and 5: resident identity numbers (GB 11643-1999) and unified social credit codes
(GB 32100-2015), checked against an independent implementation and python-stdnum's check functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from contracts.facts import FactShapeError, parse_fact
from contracts.identifiers import mask, ric_check_character, ric_problem, uscc_check_character, uscc_problem

PROVINCES = [
    11,
    12,
    13,
    14,
    15,
    21,
    22,
    23,
    31,
    32,
    33,
    34,
    35,
    36,
    37,
    41,
    42,
    43,
    44,
    45,
    46,
    50,
    51,
    52,
    53,
    54,
    61,
    62,
    63,
    64,
    65,
    71,
    81,
    82,
]
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def iso7064_mod11_2(first17: str) -> str:
    """Independent: the check character c makes sum(a_i * 2^(18-i)) + c ≡ 1 (mod 11), i = 1..17."""
    total = sum(int(a) * 2 ** (17 - i) for i, a in enumerate(first17))
    for c in range(11):
        if (total + c) % 11 == 1:
            return "X" if c == 10 else str(c)
    raise AssertionError


def gb32100(first17: str) -> str:
    weights = [3**i % 31 for i in range(17)]
    total = sum(ALPHABET.index(a) * w for a, w in zip(first17, weights, strict=True))
    return ALPHABET[-total % 31]


def valid_ric(first17: str) -> str:
    return first17 + iso7064_mod11_2(first17)


# --- resident identity numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "320213197804121019",
        "320211198509232025",
        "320205199907043032",
        "320206199702154042",
        "342401198011116063",
        "320281197003040450",
    ],
)
def test_vector_worker_ids_are_valid(number: str) -> None:
    assert ric_problem(number) is None


def test_wuxi_area_code_younger_than_the_holder_is_valid() -> None:
    # 320281 (江阴市) with a 1970 birth date: the area code is not checked against the birth year.
    number = valid_ric("32028119700304045")
    assert number == "320281197003040450"
    assert ric_problem(number) is None
    assert ric_problem(valid_ric("32021319300101001")) is None  # 320213 (梁溪区, 2015) born 1930


def test_lowercase_x_check_character_is_invalid() -> None:
    number = valid_ric("32021319900101004")
    assert number.endswith("X")
    assert ric_problem(number) is None
    assert ric_problem(number[:-1] + "x") is not None
    with pytest.raises(FactShapeError, match="worker"):
        parse_fact(
            {
                "id": "a",
                "at": "2021-06-01T09:00:00+08:00",
                "type": "worker_registered",
                "worker": number[:-1] + "x",
                "name": "n",
                "residence": "320213",
                "residence_since": "2015-01-01",
            }
        )


@pytest.mark.parametrize("province", PROVINCES)
def test_every_listed_province_code_is_accepted(province: int) -> None:
    assert ric_problem(valid_ric(f"{province}0101199001010{12:02d}")) is None


@pytest.mark.parametrize("province", sorted(set(range(100)) - set(PROVINCES)))
def test_other_province_codes_are_refused(province: int) -> None:
    problem = ric_problem(valid_ric(f"{province:02d}0101199001010{12:02d}"))
    assert problem is not None and "province" in problem


@pytest.mark.parametrize("birth", ["19990230", "19991301", "19990000", "20230229", "00000101", "19991232"])
def test_invalid_birth_dates_are_refused(birth: str) -> None:
    problem = ric_problem(valid_ric(f"320213{birth}001"))
    assert problem is not None and "birth date" in problem


@pytest.mark.parametrize("birth", ["20000229", "19000101", "19991231"])
def test_calendar_birth_dates_are_accepted(birth: str) -> None:
    assert ric_problem(valid_ric(f"320213{birth}001")) is None


@pytest.mark.parametrize(
    "number",
    [
        "32021319780412101",
        "3202131978041210199",
        "",
        "32021319780412101a",
        "3202131978041210１9",
        " 320213197804121019"[:18],
        "320213197804121018",
    ],
)
def test_malformed_or_wrong_check_character_is_refused(number: str) -> None:
    assert ric_problem(number) is not None


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[0-9]{17}", fullmatch=True))
def test_ric_check_character_agrees_with_independent_and_stdnum(first17: str) -> None:
    expected = iso7064_mod11_2(first17)
    assert ric_check_character(first17) == expected
    assert stdnum_ric.calc_check_digit(first17 + "0") == expected  # stdnum expects the check digit included


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(PROVINCES),
    st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"),
    st.integers(0, 999),
)
def test_any_number_with_a_known_province_and_calendar_birth_date_is_valid(
    province: int, birth: str, seq: int
) -> None:
    number = valid_ric(f"{province}{1234:04d}{birth}{seq:03d}")
    assert ric_problem(number) is None
    wrong = number[:17] + next(c for c in "0123456789X" if c != number[17])
    assert ric_problem(wrong) is not None


# --- unified social credit codes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["91320213MA1XY0001L", "91320214MA1XY00026", "91320211MA1XY0003X", "91320205MA1PK0001D"]
)
def test_vector_enterprise_codes_are_valid(code: str) -> None:
    assert uscc_problem(code) is None


@pytest.mark.parametrize(
    "first17",
    ["N1320213MA1XY0001", "Y1320213MA1XY0001", "A1320213MA1XY0001", "51110000MJ0000001", "G1320213MA1XY0001"],
)
def test_codes_starting_with_letters_are_valid(first17: str) -> None:
    code = first17 + gb32100(first17)
    assert uscc_problem(code) is None


@pytest.mark.parametrize(
    "code",
    [
        "91320213MA1XY00010",  # wrong check character (vector 07)
        "91320213ma1xy0001l",  # lowercase
        "91320213MA1XY0001",  # 17 characters
        "91320213MA1XY0001LL",
        "9132021IMA1XY0001L",
        "9132021OMA1XY0001L",
        "9132021SMA1XY0001L",
        "9132021VMA1XY0001L",
        "9132021ZMA1XY0001L",  # I O S V Z are not in the alphabet
    ],
)
def test_bad_codes_are_refused(code: str) -> None:
    assert uscc_problem(code) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
def test_uscc_check_character_agrees_with_independent_and_stdnum(first17: str) -> None:
    expected = gb32100(first17)
    assert uscc_check_character(first17) == expected
    assert stdnum_uscc.calc_check_digit(first17) == expected
    assert uscc_problem(first17 + expected) is None
    assert uscc_problem(first17 + next(c for c in ALPHABET if c != expected)) is not None


def test_mask_keeps_four_characters_each_side() -> None:
    assert mask("320213197804121019") == "3202**********1019"
    assert mask(None) is None


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
        st.builds(
            lambda p, b, s: valid_ric(f"{p}0101{b}{s:03d}"),
            st.sampled_from(PROVINCES),
            st.dates().map(lambda d: f"{d.year:04d}{d.month:02d}{d.day:02d}"),
            st.integers(0, 999),
        ),
        st.text(alphabet="0123456789X", min_size=16, max_size=19),
    )
)
def test_fact_validation_accepts_a_worker_id_exactly_when_ric_problem_does(number: str) -> None:
    raw = {
        "id": "a",
        "at": "2021-06-01T09:00:00+08:00",
        "type": "worker_registered",
        "worker": number,
        "name": "n",
        "residence": "320213",
        "residence_since": "2015-01-01",
    }
    try:
        parse_fact(raw)
        accepted = True
    except FactShapeError:
        accepted = False
    assert accepted == (ric_problem(number) is None)
