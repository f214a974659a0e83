"""Explanations say why, in both languages (issue 16.4): a clawback names the fact that ended the
entitlement (its type, id and date) and what is clawed back; an extension and its revocation likewise;
the fact that caused a decision is always among its `fact_ids`; dates come from the parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from strategies import E1, E2, W1, Book

from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario
from services.eligibility.domain.decision import Decision

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.yaml"))
LOW = 120000


def _explained(book: Book, kind: str, program: str | None = None) -> list[Decision]:
    return [d for d in book.decisions if d.kind == kind and (program is None or d.program == program)]


def _texts(decision: Decision) -> tuple[str, str, list[str]]:
    e: dict[str, Any] = decision.explanation or {}
    return e["reason_en"], e["reason_zh"], e["fact_ids"]


def difficulty_book() -> Book:
    book = Book()
    book.enterprise(E1)
    book.enterprise(E2)
    book.worker(W1, residence="320213", since="2015-01-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    return book


def test_a_clawback_after_a_revoked_category_says_the_entitlement_ended_and_by_which_fact() -> None:
    book = difficulty_book()
    book.work(E1, W1, "2021-06", [LOW, LOW], 90000)
    book.submit("category_revoked", id="rev-1", worker=W1, category="employment_difficulty",
                at="2022-03-05T10:00:00+08:00")
    clawbacks = _explained(book, "clawback", "social_insurance")
    assert [d.month for d in clawbacks] == ["2021-06", "2021-07"]
    assert all(d.after == "rev-1" for d in clawbacks)
    en, zh, fact_ids = _texts(clawbacks[0])
    assert en.startswith("entitlement ended by fact rev-1 (category_revoked, 2022-03-05")
    assert "employment_difficulty declaration revoked" in en and "60000 fen (600 CNY)" in en
    assert "social_insurance 2021-06" in en
    assert zh.startswith("因事实 rev-1（2022-03-05 撤销就业困难人员认定）")
    assert "灵活就业社会保险补贴 2021-06的享受资格终止" in zh and "追回已享受的600元" in zh
    assert "rev-1" in fact_ids


def test_a_reduced_grant_says_by_which_fact_and_how_much_is_clawed_back() -> None:
    book = Book()
    book.enterprise(E1)
    book.worker(W1)
    book.category(W1, "registered_unemployed", "2021-01-01")
    book.category(W1, "employment_difficulty", "2021-01-01")
    book.work(E1, W1, "2021-06", [300000] * 6)
    book.submit("category_revoked", id="rev-2", worker=W1, category="employment_difficulty",
                at="2022-01-20T10:00:00+08:00")
    (reduced,) = _explained(book, "clawback", "employment_service")
    assert reduced.amount_fen == 20000
    en, zh, fact_ids = _texts(reduced)
    assert en.startswith("reduced from 100000 to 80000 fen by fact rev-2 (category_revoked, 2022-01-20")
    assert "20000 fen (200 CNY) of employment_service clawed back" in en
    assert "就业创业服务补助由100000分核减为80000分，追回200元" in zh and "rev-2" in zh and "失业人员" in zh
    assert "rev-2" in fact_ids


def test_an_extension_and_its_revocation_say_why_with_dates_from_the_parameters() -> None:
    book = difficulty_book()
    book.work(E1, W1, "2021-06", [LOW], 90000)  # P0 = 2021-06, X = 2024-06
    book.submit("monthly_report", id="act-1", enterprise=E1, worker=W1, month="2024-06", income_fen=LOW,
                hours=40, district="320213")
    (extension,) = _explained(book, "extension")
    en, zh, fact_ids = _texts(extension)
    assert "period 2021-06..2024-05 (36 months) ended without stable employment in 2023-12..2024-05" in en
    assert "extended by 12 months to 2025-05" in en and "fact act-1 (monthly_report, 2024-07-05" in en
    assert "政策享受期限延长12个月至2025-05" in zh and "期满前6个月（2023-12..2024-05）未稳定就业" in zh
    assert "事实 act-1" in zh and "act-1" in fact_ids
    params = {p["name"]: p for p in (extension.explanation or {})["parameters"]}
    assert params["social_insurance_extension_months"] == {
        "name": "social_insurance_extension_months", "value": "12", "since": "2021-05-31"}
    assert params["social_insurance_stable_end_months"]["value"] == "6"

    book.submit("report_retracted", id="ret-1", enterprise=E1, worker=W1, month="2024-06",
                at="2024-08-01T10:00:00+08:00")
    (revoked,) = _explained(book, "extension_revoked")
    en, zh, fact_ids = _texts(revoked)
    assert en.startswith("extension social_insurance 2024-06 revoked by fact ret-1 (report_retracted, "
                         "2024-08-01: report of 2024-06 through")
    assert "its condition no longer holds" in en and "extended by 12 months" in en
    assert zh.startswith("因事实 ret-1（2024-08-01 撤回") and "延长享受期" in zh and "予以撤销" in zh
    assert "ret-1" in fact_ids


@pytest.mark.parametrize("vector", VECTORS, ids=[v.stem for v in VECTORS])
def test_the_fact_that_caused_a_decision_is_among_its_fact_ids(vector: Path) -> None:
    for decision in Engine().run(load_scenario(vector)["facts"]):
        if decision.kind != "rejected":
            explanation = decision.explanation or {}
            assert decision.after in explanation["fact_ids"], decision
            assert explanation["reason_en"] and explanation["reason_zh"]


def test_no_explanation_cites_a_literal_policy_date_the_parameters_do_not_hold() -> None:
    """Every parameter an explanation cites is cited with the date its value took effect."""
    from services.eligibility.domain.ruleset import CURRENT

    for vector in VECTORS:
        for decision in Engine().run(load_scenario(vector)["facts"]):
            for p in (decision.explanation or {}).get("parameters", []):
                sinces = {v.since for v in CURRENT.params.history(p["name"])}
                assert p["since"] in sinces, (decision.kind, p)
