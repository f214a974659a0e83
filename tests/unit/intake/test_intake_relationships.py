"""Issue 13's intake findings, on the pure core: who may submit which fact about whom (relationships),
fact ids scoped per submitter, repeated conflicts recorded once, reasons masked, facts from the future
refused, CSV formula cells refused. The same findings through the running intake:
tests/integration/test_intake_rules_http.py."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from stand_in_intake import E1, E2, W1, W2, enterprise_registered, monthly_report, worker_registered

from contracts.facts import MAX_TEXT, parse_fact
from contracts.identifiers import mask
from services.intake.domain.authorization import SUBMITTERS
from services.intake.domain.bulk import parse_csv
from services.intake.domain.clock_skew import future_at_problem
from services.intake.domain.fact_ids import in_scope, ledger_id, scope_of
from services.intake.domain.feed import AgencyFact, NotTaken, read_agency_message
from services.intake.domain.limits import BadValue, Limits, parse_json_body
from services.intake.domain.relationships import PLATFORM_NEEDS
from services.intake.domain.submission import IntakeBook, Submission
from services.runtime.access.principals import Principal

DOC = Path(__file__).resolve().parents[3] / "docs" / "design" / "intake-auth.md"
BEIJING = "110101"
HR = "hr_bureau"
SOCIAL = "social_insurance_agency"


def residence_changed(fact_id: str, worker: str = W1, residence: str = BEIJING) -> dict[str, Any]:
    return {"id": fact_id, "type": "residence_changed", "at": "2021-08-01T09:00:00+08:00", "worker": worker,
            "residence": residence, "since": "2021-08-01"}


def contribution_paid(fact_id: str, worker: str = W1) -> dict[str, Any]:
    return {"id": fact_id, "type": "contribution_paid", "at": "2021-07-05T10:00:00+08:00", "worker": worker,
            "month": "2021-06", "amount_fen": 90000}


def _book(*facts: tuple[str | None, dict[str, Any]]) -> IntakeBook:
    """A book after `facts`, each (submitter scope, raw fact), every one of them accepted."""
    book = IntakeBook()
    for submitter, raw in facts:
        submission = book.submit(raw, submitter)
        assert submission.outcome == "accepted", submission
    return book


def _two_platforms() -> IntakeBook:
    """E1 registered W1 and reported for it; E2 registered W2 and reported for it."""
    return _book((E1, enterprise_registered("e1", E1)), (E2, enterprise_registered("e2", E2)),
                 (E1, worker_registered("w1", W1)), (E2, worker_registered("w2", W2)),
                 (E1, monthly_report("r1", worker=W1)), (E2, monthly_report("r2", enterprise=E2, worker=W2)))


# ---- relationships: residence_changed and worker_registered, row by row --------------------------


def test_platform_cannot_move_another_platforms_worker_to_beijing() -> None:
    book = _two_platforms()
    moved = book.check(residence_changed("m1", worker=W1), submitter=E2)
    assert moved.outcome == "refused"
    assert moved.reason is not None and E2 in moved.reason
    assert W1 not in moved.reason and mask(W1) in moved.reason
    book.record(moved)
    assert book.last_seq == 6, "a refusal records nothing"


@pytest.mark.parametrize(("who", "outcome"), [
    (E1, "accepted"),  # registered the worker and reported for it
    (E2, "refused"),  # neither
    (HR, "accepted"),  # the HR bureau may move anyone
    (None, "accepted"),  # the operator: RULES.md alone
])
def test_residence_changed_row(who: str | None, outcome: str) -> None:
    assert _two_platforms().check(residence_changed("m1", worker=W1), submitter=who).outcome == outcome


def test_a_platform_that_only_reported_the_worker_has_the_worker() -> None:
    book = _two_platforms()
    book.submit(monthly_report("r3", enterprise=E2, worker=W1), E2)  # W1 also works through E2
    assert book.check(residence_changed("m1", worker=W1), submitter=E2).outcome == "accepted"


def test_a_platform_that_only_registered_the_worker_has_the_worker() -> None:
    book = _book((E1, enterprise_registered("e1")), (E1, worker_registered("w1")))
    assert book.check(residence_changed("m1"), submitter=E1).outcome == "accepted"


def test_a_platform_registers_a_new_worker_and_a_registered_one_is_rules_duplicate() -> None:
    book = _book((E1, enterprise_registered("e1")), (E2, enterprise_registered("e2", E2)))
    assert book.submit(worker_registered("w1"), E1).outcome == "accepted"
    again = book.check(worker_registered("w1"), submitter=E2)
    assert again.outcome == "rejected" and again.reason is not None and "already registered" in again.reason


def test_platform_registration_never_blocks_the_hr_bureaus() -> None:
    book = _book((E2, enterprise_registered("e2", E2)))
    false = {**worker_registered("w1"), "name": "假名", "residence": BEIJING}
    assert book.submit(false, E2).outcome == "accepted"  # a platform that does not employ W1 came first
    genuine = book.submit(worker_registered("w1"), HR)
    assert genuine.outcome == "accepted" and genuine.fact_id == "hr_bureau/w1"
    # it supersedes: the platform no longer has the worker by its registration, so it cannot move them
    assert book.check(residence_changed("m1"), submitter=E2).outcome == "refused"
    # and the HR bureau's own registration is authoritative: a second one is RULES.md's duplicate
    assert book.check(worker_registered("w2"), submitter=HR).outcome == "rejected"


def test_the_operator_keeps_rules_md_for_a_second_registration() -> None:
    book = _book((E1, enterprise_registered("e1")), (E1, worker_registered("w1")))
    assert book.check(worker_registered("x"), submitter=None).outcome == "rejected"


def test_the_engine_and_the_operator_see_no_relationship_check() -> None:
    """`scenario run --via engine` and the operator's pipeline runs submit without a submitter: a
    residence change by no platform at all is decided by RULES.md alone, as in the vectors."""
    book = _book((None, enterprise_registered("e1")), (None, worker_registered("w1")))
    assert book.submit(residence_changed("m1")).outcome == "accepted"


def test_the_design_document_has_the_relationship_cells() -> None:
    text = DOC.read_text(encoding="utf-8")
    header = re.search(r"^\| fact type \|(.*)\|\s*$", text, flags=re.MULTILINE)
    assert header is not None
    roles = [cell.strip() for cell in header.group(1).split("|")]
    for kind, line in re.findall(r"^\| `(\w+)` \|(.*)\|\s*$", text, flags=re.MULTILINE):
        platform_cell = [cell.strip() for cell in line.split("|")][roles.index("platform")]
        assert (platform_cell in ("has", "new")) == (kind in PLATFORM_NEEDS), kind
        if kind in PLATFORM_NEEDS:
            assert platform_cell == PLATFORM_NEEDS[kind] and "platform" in SUBMITTERS[kind]


# ---- fact ids scoped per submitter ---------------------------------------------------------------


def test_fact_ids_cannot_be_squatted() -> None:
    book = _two_platforms()
    squat = {**monthly_report("c-2021-06", month="2021-05", enterprise=E2, worker=W2)}
    assert book.submit(squat, E2).outcome == "accepted"  # a platform takes the id the agency will use
    genuine = book.submit(contribution_paid("c-2021-06"), SOCIAL)
    assert genuine.outcome == "accepted", genuine.reason
    assert genuine.fact_id == "social_insurance_agency/c-2021-06"
    assert genuine.raw["id"] == genuine.fact_id  # as recorded and published: unique in the book
    assert book.check(contribution_paid("c-2021-06"), submitter=SOCIAL).outcome == "duplicate"


def test_scopes_are_enterprises_roles_and_none_for_the_operator() -> None:
    assert scope_of(Principal("platform", "k", E1)) == E1
    assert scope_of(Principal("hr_bureau", "k")) == "hr_bureau"
    assert scope_of(Principal("operator", "k")) is None
    assert in_scope({"id": "f1"}, None) == {"id": "f1"}
    assert in_scope({"id": "f1"}, E1) == {"id": f"{E1}/f1"}
    assert in_scope({"id": 5}, E1) == {"id": 5}  # left to validation (rejected for its shape)


def test_a_long_id_keeps_the_length_limit_in_its_scope() -> None:
    long_id = "x" * MAX_TEXT
    scoped = ledger_id(SOCIAL, long_id)
    assert len(scoped) <= MAX_TEXT and scoped.startswith(f"{SOCIAL}/sha256:")
    assert ledger_id(SOCIAL, long_id) == scoped != ledger_id(SOCIAL, "y" * MAX_TEXT)
    fact = parse_fact(in_scope(contribution_paid(long_id), SOCIAL))  # downstream, the fact still parses
    assert fact.id == scoped


def test_a_numeric_id_is_scoped_too() -> None:
    book = IntakeBook()
    rejected = book.submit({**enterprise_registered("x"), "id": 5}, E1)
    assert rejected.outcome == "rejected" and rejected.fact_id == f"{E1}/5"
    assert book.check({**enterprise_registered("y"), "id": "5"}).outcome == "accepted"  # the operator's "5"


# ---- repeated conflicts, masked reasons ----------------------------------------------------------


def test_repeated_conflicts_do_not_grow_the_ledger() -> None:
    book = _book((E1, enterprise_registered("e1")))
    other = {**enterprise_registered("e1"), "name": "another name"}
    first = book.submit(other, E1)
    assert first.outcome == "rejected" and first.conflict
    seq = book.last_seq
    repeats: list[Submission] = [book.submit(other, E1) for _ in range(99)]
    assert {(s.outcome, s.conflict) for s in repeats} == {("duplicate", True)}
    assert book.last_seq == seq
    third = book.submit({**other, "name": "a third name"}, E1)  # another content: a conflict of its own
    assert third.outcome == "rejected" and book.last_seq == seq + 1


def test_rejection_reasons_mask_identity_numbers() -> None:
    """The finding: `worker: '3202…' is beyond the limit …` published a number in clear."""
    body = (b'{"id": "x1", "type": "residence_changed", "at": "2021-08-01T09:00:00+08:00", '
            b'"worker": 320213197804121019, "residence": "320213", "since": "2021-08-01"}')
    with pytest.raises(BadValue) as caught:
        parse_json_body(body, 65536, 8)
    assert W1 in str(caught.value)  # the guard's own message holds it: intake must mask what it publishes
    submission = IntakeBook().check(caught.value.stand_in, str(caught.value), submitter=HR)
    assert submission.outcome == "rejected" and submission.reason is not None
    assert W1 not in submission.reason and mask(W1) in submission.reason
    reuse = IntakeBook()
    reuse.submit({"id": W1, "type": "enterprise_registered"})
    conflict = reuse.check({"id": W1, "type": "worker_registered"})
    assert conflict.reason is not None and W1 not in conflict.reason


# ---- at: no fact from the future -----------------------------------------------------------------

RECEIVED = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


def test_facts_dated_2099_are_refused() -> None:
    report = monthly_report("r1", month="2099-06")
    report["at"] = "2099-07-03T10:00:00+08:00"
    problem = future_at_problem(report, RECEIVED, 300)
    assert problem is not None and problem.startswith("at 2099-07-03T10:00:00+08:00")


def test_an_agency_message_dated_2099_is_a_400_dead_letter() -> None:
    fact = {**contribution_paid("c1"), "at": "2099-07-03T10:00:00+08:00", "month": "2099-06"}
    read = read_agency_message(SOCIAL, [], json.dumps(fact).encode(), Limits(), RECEIVED)
    assert isinstance(read, NotTaken) and read.status == 400 and read.reason.startswith("at 2099-07-03")
    assert read.fact_id == "c1"
    assert isinstance(read_agency_message(SOCIAL, [], json.dumps(contribution_paid("c1")).encode(), Limits(),
                                          RECEIVED), AgencyFact)


@pytest.mark.parametrize(("at", "refused"), [
    ("2021-07-05T10:00:00+08:00", False),  # historic: every vector's
    ((RECEIVED + timedelta(seconds=300)).isoformat(), False),  # within the skew
    ((RECEIVED + timedelta(seconds=301)).isoformat(), True),
    ("2026-12-04T00:04:00+08:00", False),  # 16:04 UTC, in another offset
    ("2026-12-04T00:06:00+08:00", True),
    ("9999-12-31T23:59:59+14:00", True),
    ("2099-07-03", None),  # not a timestamp with its offset: validation rejects it
    ("2099-07-03T10:00:00", None),
    (20990703, None),
])
def test_at_is_bounded_by_the_receipt_time_and_the_skew(at: Any, refused: bool | None) -> None:
    problem = future_at_problem({"at": at}, RECEIVED, 300)
    assert (problem is not None) == bool(refused)


# ---- CSV formula cells ---------------------------------------------------------------------------

CSV_HEADER = "id,at,enterprise,worker,month,income_fen,hours,district\n"


@pytest.mark.parametrize("cell", ['"=HYPERLINK(""http://x"",""y"")"', "+1", "-2", "@SUM(A1)"])
def test_csv_formula_cells_are_neutralised(cell: str) -> None:
    body = CSV_HEADER + f"{cell},2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,210000,168,320213\n"
    [row] = parse_csv(body.encode(), Limits())
    assert row.fact is None and row.reason is not None and row.reason.startswith("id ")
    assert "formula" in row.reason


def test_csv_negative_income_is_a_number_for_the_rules_to_reject() -> None:
    body = CSV_HEADER + f"r1,2021-07-05T10:00:00+08:00,{E1},{W1},2021-06,-5,168,320213\n"
    [row] = parse_csv(body.encode(), Limits())
    assert row.fact is not None and row.fact["income_fen"] == -5
