"""RULES.md sections 2 and 3: parameters by the date they apply to, decisions as the difference between
successive entitlement states, each with the rule set id and an explanation."""

from __future__ import annotations

from dataclasses import replace

import pytest
from strategies import E1, W1, Book, clawback, grant, month_range

from flexledger.engine import Engine
from services.eligibility.domain.months import month_index
from services.eligibility.domain.parameters import ParameterTable, ParameterValue
from services.eligibility.domain.ruleset import CURRENT, RULE_SETS, rule_set


@pytest.mark.parametrize(
    ("month", "wage"),
    [
        ("2018-08", 202000),
        ("2021-06", 202000),
        ("2021-07", 202000),
        ("2021-08", 228000),
        ("2023-12", 228000),
        ("2024-01", 249000),
        ("2030-01", 249000),
    ],
)
def test_min_wage_is_looked_up_on_the_first_day_of_the_month(month: str, wage: int) -> None:
    assert CURRENT.min_wage(month_index(month)) == wage


def test_parameter_values_by_date_with_their_citations() -> None:
    params = CURRENT.params
    assert params.at("min_wage_monthly_fen", "2023-12-31").value == 228000
    assert params.at("min_wage_monthly_fen", "2024-01-01").since == "2024-01-01"
    with pytest.raises(LookupError):
        params.at("employment_service_difficulty_fen", "2021-05-30")
    assert params.at("employment_service_difficulty_fen", "2021-05-31").value == 100000
    expected = {
        "employment_service_unemployed_fen": 80000,
        "employment_service_difficulty_fen": 100000,
        "stable_income_months": 6,
        "social_insurance_months_difficulty": 36,
        "social_insurance_months_graduate": 24,
        "graduate_window_months": 24,
        "social_insurance_extension_months": 12,
        "training_fen_per_hour": 1850,
        "training_cap_fen_per_worker": 50000,
        "job_standard_fen": 1000000,
        "skill_competition_fen": 2000000,
        "park_construction_cap_fen": 500000000,
        "talent_cap_fen": 100000000,
    }
    for name, value in expected.items():
        found = params.at(name, "2021-06-01")
        assert (found.value, found.since) == (value, "2021-05-31"), name
        assert found.source
    rate = params.at("social_insurance_rate", "2021-06-01").value
    assert rate.numerator == 2 and rate.denominator == 3  # an exact fraction, not a float
    assert [v.value for v in params.history("min_wage_monthly_fen")] == [202000, 228000, 249000]


def test_a_parameter_table_is_sorted_by_date_whatever_the_order_given() -> None:
    table = ParameterTable(
        (ParameterValue("p", 2, "2022-01-01", "s"), ParameterValue("p", 1, "2020-01-01", "s"))
    )
    assert table.at("p", "2021-06-01").value == 1 and table.at("p", "2022-01-01").value == 2


def test_rule_sets_by_id() -> None:
    assert rule_set("wuxi-2021-26/1") is CURRENT and CURRENT.id in RULE_SETS
    with pytest.raises(LookupError):
        rule_set("wuxi-2021-26/9")


def test_a_version_2_stands_beside_version_1() -> None:
    wages = tuple(
        v for n in CURRENT.params.names() for v in CURRENT.params.history(n) if n != "min_wage_monthly_fen"
    )
    v2 = replace(
        CURRENT,
        id="wuxi-2021-26/2",
        params=ParameterTable(
            (*wages, ParameterValue("min_wage_monthly_fen", 100000, "2018-01-01", "hypothetical"))
        ),
    )
    facts = Book()
    facts.enterprise(E1)
    facts.worker(W1)
    facts.category(W1, "employment_difficulty", "2021-01-01")
    facts.work(E1, W1, "2021-06", [150000] * 6)
    v1_decisions = [d.to_dict() for d in Engine().run(facts.raws)]
    v2_decisions = [d.to_dict() for d in Engine(v2).run(facts.raws)]
    assert [d["kind"] for d in v1_decisions] == []
    assert [(d["kind"], d["rule_set"]) for d in v2_decisions] == [("grant", "wuxi-2021-26/2")]
    assert [d.to_dict() for d in Engine().run(facts.raws)] == v1_decisions  # version 1 replays as version 1


def test_a_change_records_the_difference_never_an_edit() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "registered_unemployed", "2021-01-01")
    b.work(E1, W1, "2021-06", [300000] * 6)
    assert b.category(W1, "employment_difficulty", "2021-01-01") == [
        grant("employment_service", E1, W1, 20000)
    ]
    assert b.revoke(W1, "registered_unemployed") == []  # difficulty alone still gives 100000
    assert b.revoke(W1, "employment_difficulty") == [clawback("employment_service", E1, W1, 100000)]


def test_facts_that_change_no_line_record_nothing() -> None:
    b = Book()
    assert b.enterprise(E1) == []
    assert b.worker(W1) == []
    assert b.report(E1, W1, "2021-06", 300000) == []
    assert b.correct(E1, W1, "2021-06", 300000) == []
    assert b.moved(W1, "320211", "2021-01-01") == []
    assert b.decisions == []


def test_every_decision_carries_the_rule_set_and_an_explanation() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1, residence="320213")
    b.category(W1, "employment_difficulty", "2021-03-01")
    b.work(E1, W1, "2021-06", [300000] * 6, 90000)
    b.revoke(W1, "employment_difficulty")
    b.training(E1, W1, "c", 10, "2021-07-01")
    b.report(E1, W1, "2021-06", 1, id="dup")  # rejected duplicate
    kinds = {d.kind for d in b.decisions}
    assert {"grant", "clawback", "statistic", "rejected"} <= kinds
    for d in b.decisions:
        out = d.to_dict()
        assert out["rule_set"] == "wuxi-2021-26/1" and out["decision_id"]
        if d.kind == "rejected":
            assert out["reason"]
            continue
        e = out["explanation"]
        assert e["article"].startswith("Art.") and e["rule_set"] == "wuxi-2021-26/1"
        assert e["reason_en"] and e["reason_zh"] and e["summary"].startswith(e["article"])
        assert e["fact_ids"] and all(isinstance(i, str) for i in e["fact_ids"])
        assert all({"name", "value", "since"} <= set(p) for p in e["parameters"])
    assert len({d.decision_id for d in b.decisions}) == len(b.decisions)


def test_the_employment_service_explanation_names_the_run_the_category_and_the_facts() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1, residence="320213")  # f2
    b.category(W1, "employment_difficulty", "2021-03-01")  # f3
    b.work(E1, W1, "2021-09", [300000] * 6)  # f4 .. f9
    (decision,) = b.decisions
    e = decision.to_dict()["explanation"]
    assert e["article"] == "Art. 2"
    assert e["summary"].startswith("Art. 2 — 1000 CNY: 6 consecutive months 2021-09..2022-02")
    assert E1 in e["reason_en"] and "2021-03-01" in e["reason_en"]
    assert "就业困难人员" in e["reason_zh"]
    assert set(e["fact_ids"]) == {"f2", "f3", *(f"f{i}" for i in range(4, 10))}
    params = {p["name"]: (p["value"], p["since"]) for p in e["parameters"]}
    assert params["employment_service_difficulty_fen"] == ("100000", "2021-05-31")
    assert params["min_wage_monthly_fen"] == ("228000", "2021-08-01")


def test_the_social_insurance_explanation_names_the_contribution_and_the_rate() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "employment_difficulty", "2021-03-01")
    b.report(E1, W1, "2021-06", 100)
    b.contribution(W1, "2021-06", 100000, id="pay")
    (decision,) = b.decisions
    e = decision.to_dict()["explanation"]
    assert "100000" in e["reason_en"] and "2/3" in e["reason_en"] and "pay" in e["fact_ids"]
    assert {p["name"] for p in e["parameters"]} >= {"social_insurance_rate"}


def test_decision_ids_are_deterministic_across_engines() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "employment_difficulty", "2021-03-01")
    b.work(E1, W1, "2021-06", [300000] * 7, 81000)
    first = [d.to_dict() for d in Engine().run(b.raws)]
    assert first == [d.to_dict() for d in Engine().run(b.raws)]
    assert first == [d.to_dict() for d in b.decisions]
    assert [m for m in month_range("2021-06", 7)] == [
        d["month"] for d in first if d["program"] == "social_insurance"
    ]
