"""Who may submit which fact: 401 without a principal, 403 when the fact is not theirs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from stand_in_intake import E1, E2, enterprise_registered, monthly_report, worker_registered

from contracts.facts import FACT_TYPES
from services.intake.domain.authorization import (
    ENTERPRISE_BOUND,
    SUBMITTERS,
    Refusal,
    authorization_problem,
    authorize,
)
from services.runtime.access.principals import ROLES, Principal

DOC = Path(__file__).resolve().parents[3] / "docs" / "design" / "intake-auth.md"
PLATFORM = Principal("platform", "k1", E1)


def _principal(role: str) -> Principal:
    return Principal(role, "k", E1 if role == "platform" else None)  # type: ignore[arg-type]


def test_no_principal_is_401_and_says_how_to_authenticate() -> None:
    refusal = authorize(None, monthly_report("f1"))
    assert refusal is not None and refusal.status == 401 and "Authorization: Bearer" in refusal.reason


def test_a_platform_may_report_for_itself() -> None:
    for fact in (enterprise_registered("f1"), worker_registered("f2"), monthly_report("f3")):
        assert authorize(PLATFORM, fact) is None


@pytest.mark.parametrize("kind", sorted(ENTERPRISE_BOUND))
def test_a_platform_may_not_name_another_enterprise(kind: str) -> None:
    fact = {"id": "f1", "type": kind, "enterprise": E2}
    refusal = authorize(PLATFORM, fact)
    assert refusal == Refusal(403, refusal.reason if refusal else "")
    assert refusal is not None and E2 in refusal.reason and E1 in refusal.reason


def test_platform_bound_types_are_exactly_the_platform_types_with_an_enterprise() -> None:
    assert sorted(ENTERPRISE_BOUND) == ["enterprise_registered", "monthly_report", "report_corrected",
                                        "report_retracted", "training_completed", "training_retracted"]


@pytest.mark.parametrize("kind", sorted(FACT_TYPES))
@pytest.mark.parametrize("role", ROLES)
def test_every_role_and_type_follows_the_table(role: str, kind: str) -> None:
    fact = {"id": "f1", "type": kind, "enterprise": E1}
    problem = authorization_problem(_principal(role), fact)
    may = role == "operator" or role in SUBMITTERS[kind]
    assert (problem is None) == may, problem
    if problem is not None:
        assert kind in problem and role in problem


def test_the_operator_may_submit_anything() -> None:
    operator = Principal("operator", "k")
    assert authorize(operator, monthly_report("f1", enterprise=E2)) is None
    assert authorize(operator, {"type": "talent_award", "enterprise": E2}) is None


@pytest.mark.parametrize("raw", [
    None, [], "x", {}, {"type": None}, {"type": "no_such_type"}, {"type": ["monthly_report"]},
    {"type": "monthly_report"}, {"type": "monthly_report", "enterprise": 42},
])
def test_what_only_validation_can_judge_is_left_to_validation(raw: object) -> None:
    assert authorization_problem(PLATFORM, raw) is None


def test_a_hostile_enterprise_value_is_shown_short_and_escaped() -> None:
    problem = authorization_problem(PLATFORM, monthly_report("f1", enterprise="A\n" * 1000))
    assert problem is not None and "\n" not in problem and len(problem) < 200


def test_the_design_document_has_the_same_table() -> None:
    rows = re.findall(r"^\| `(\w+)` \|(.*)\|\s*$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    table = {kind: {cell.strip() for cell in cells.split("|")} for kind, cells in rows}
    assert set(table) == set(FACT_TYPES)
    header = re.search(r"^\| fact type \|(.*)\|\s*$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert header is not None
    roles = [cell.strip() for cell in header.group(1).split("|")]
    for kind, line in rows:
        cells = [cell.strip() for cell in line.split("|")]
        documented = {role for role, cell in zip(roles, cells, strict=True) if cell and role != "operator"}
        assert documented == set(SUBMITTERS[kind]), kind
        platform_cell = cells[roles.index("platform")]
        assert (platform_cell == "own") == (kind in ENTERPRISE_BOUND), kind
        assert cells[roles.index("operator")], kind
