"""Parameters as data (services/eligibility/domain/rule_sets/*.yaml) and reforms: `audit what-if --set`
and `--parameters` replay the recorded facts under changed parameters (issue 16.5)."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from strategies import E1, W1, Book, month_range

from contracts.messages import fact_subject
from flexledger.audit.whatif import as_json, reformed, render, replay_streams
from flexledger.engine import Engine
from services.eligibility.domain.parameters import Change, ParameterError
from services.eligibility.domain.programmes.social_insurance import round_half_up
from services.eligibility.domain.ruleset import CURRENT, RULE_SET_FILES

RULES_MD_TABLE = {  # RULES.md section 2, as written there
    "min_wage_monthly_fen": [(202000, "2018-08-01"), (228000, "2021-08-01"), (249000, "2024-01-01")],
    "employment_service_unemployed_fen": [(80000, "2021-05-31")],
    "employment_service_difficulty_fen": [(100000, "2021-05-31")],
    "stable_income_months": [(6, "2021-05-31")],
    "social_insurance_rate": [(Fraction(2, 3), "2021-05-31")],
    "social_insurance_months_difficulty": [(36, "2021-05-31")],
    "social_insurance_months_graduate": [(24, "2021-05-31")],
    "graduate_window_months": [(24, "2021-05-31")],
    "social_insurance_extension_months": [(12, "2021-05-31")],
    "training_fen_per_hour": [(1850, "2021-05-31")],
    "training_cap_fen_per_worker": [(50000, "2021-05-31")],
    "job_standard_fen": [(1000000, "2021-05-31")],
    "skill_competition_fen": [(2000000, "2021-05-31")],
    "park_construction_cap_fen": [(500000000, "2021-05-31")],
    "talent_cap_fen": [(100000000, "2021-05-31")],
    # RULES.md 4.2's "P0+30 … P0+35": the period's last 6 months decide the extension
    "social_insurance_stable_end_months": [(6, "2021-05-31")],
}


def test_the_rule_set_reads_its_parameters_from_its_yaml_file() -> None:
    assert (RULE_SET_FILES / "wuxi-2021-26-1.yaml").is_file()
    params = CURRENT.params
    assert params.names() == sorted(RULES_MD_TABLE)
    for name, values in RULES_MD_TABLE.items():
        history = params.history(name)
        assert [(v.value, v.since) for v in history] == values, name
        assert all(v.unit and v.source for v in history), name
    assert params.at("social_insurance_rate", "2023-01-01").unit == "ratio"


def test_a_change_applies_from_its_date_and_keeps_the_earlier_values() -> None:
    params = CURRENT.params.reformed([Change.parse("social_insurance_rate=1/2@2023-01-01")])
    assert params.at("social_insurance_rate", "2022-12-01").value == Fraction(2, 3)
    assert params.at("social_insurance_rate", "2023-01-01").value == Fraction(1, 2)
    undated = CURRENT.params.reformed([Change.parse("min_wage_monthly_fen=300000")])
    assert [(v.value, v.since) for v in undated.history("min_wage_monthly_fen")] == [(300000, "2018-08-01")]
    # a change from a date drops the later values (the new value holds from its date on)
    mid = CURRENT.params.reformed([Change.parse("min_wage_monthly_fen=230000@2022-01-01")])
    assert [v.value for v in mid.history("min_wage_monthly_fen")] == [202000, 228000, 230000]
    assert CURRENT.params.at("social_insurance_rate", "2023-01-01").value == Fraction(2, 3)  # unchanged


@pytest.mark.parametrize("text", [
    "no_such_parameter=1", "social_insurance_rate", "social_insurance_rate=half",
    "min_wage_monthly_fen=1/2", "min_wage_monthly_fen=1@2023-13-01", "=3",
])
def test_a_bad_change_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ParameterError):
        CURRENT.params.reformed([Change.parse(text)])


def test_a_parameter_file_replaces_the_histories_it_holds(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "docs" / "reforms" / "training-rate-2024.yaml"
    rules = reformed(None, (), example)
    assert rules.id == "wuxi-2021-26/1+reform"
    assert rules.params.at("training_fen_per_hour", "2024-02-01").value == 2500
    assert rules.params.at("training_fen_per_hour", "2023-02-01").value == 1850
    assert rules.params.history("min_wage_monthly_fen") == CURRENT.params.history("min_wage_monthly_fen")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  nope:\n    values: {'2021-01-01': 1}\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="nope"):
        reformed(None, (), bad)
    assert reformed(None) is CURRENT


# --- the reform: halving the social insurance rate from 2023 ---------------------------------------------

def _stored(raws: list[dict[str, Any]], book: str = "main") -> list[tuple[str, str, dict[str, Any]]]:
    """The facts as eligibility stores them (per subject stream, with their decisions and time)."""
    engine, out = Engine(book=book), []
    for raw in raws:
        submission, decisions = engine.submit(raw)
        if submission.outcome == "duplicate":
            continue
        out.append((fact_subject(raw) or "", raw["id"], {
            "book": book, "seq": engine.intake.last_seq, "fact_id": submission.fact_id,
            "outcome": submission.outcome, "fact": raw, "reason": submission.reason,
            "digest": submission.digest, "subject": fact_subject(raw),
            "timestamp": datetime.fromisoformat(raw["at"]), "decisions": [d.to_dict() for d in decisions],
        }))
    return out


def test_halving_the_social_insurance_rate_from_a_date_changes_exactly_the_later_grants() -> None:
    book = Book()
    book.enterprise(E1)
    book.worker(W1, residence="320213", since="2015-01-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    contributions = {}
    for i, month in enumerate(month_range("2022-06", 14)):  # 2022-06 .. 2023-07
        book.report(E1, W1, month, 120000)
        contributions[month] = 90001 + 7 * i
        book.contribution(W1, month, contributions[month])
    book.training(E1, W1, "c1", 10, "2023-03-01")  # another programme: unchanged

    halved = reformed(None, ["social_insurance_rate=1/2@2023-01-01"])
    result = replay_streams(_stored(book.raws), halved, "main")

    assert not result.problems and result.facts == len(book.raws)
    later = {m: c for m, c in contributions.items() if m >= "2023-01"}
    recorded = sorted(d for diff in result.differences for d in diff.recorded)
    would_be = sorted(d for diff in result.differences for d in diff.would_be)
    assert [(d[1], d[2], d[6]) for d in recorded] == [("grant", "social_insurance", m) for m in sorted(later)]
    assert [(d[1], d[2], d[6]) for d in would_be] == [("grant", "social_insurance", m) for m in sorted(later)]
    for old, new in zip(recorded, would_be, strict=True):
        contribution = later[old[6]]
        assert old[7] == round_half_up(contribution * 2, 3) and new[7] == round_half_up(contribution, 2)
    expected = sum(round_half_up(c, 2) - round_half_up(c * 2, 3) for c in later.values())
    assert expected < 0 and result.money() == {("social_insurance", 2023): expected}
    printed = as_json(result)
    assert printed["money"] == [
        {"program": "social_insurance", "fiscal_year": 2023, "difference_fen": expected}
    ]
    assert W1 not in str(printed) and W1 not in "\n".join(render(result))


def test_the_recorded_parameters_reproduce_the_ledger() -> None:
    book = Book()
    book.enterprise(E1)
    book.worker(W1)
    book.category(W1, "employment_difficulty", "2021-01-01")
    for month in month_range("2021-06", 8):
        book.report(E1, W1, month, 300000)
        book.contribution(W1, month, 90000)
    result = replay_streams(_stored(book.raws), reformed("wuxi-2021-26/1"), "main")
    assert result.decisions_recorded == result.decisions_would_be > 0
    assert not result.differences and not result.money()
