"""Issue 17.2: a clawback names the grant decisions it reverses, a revocation the decision that granted
its flag (`reverses`, sorted ids); grants and flags name none."""

from __future__ import annotations

from collections import Counter
from typing import Any

from strategies import E1, W1, Book

from flexledger.audit.replay import WITHOUT_REVERSES, WORDING, earlier_formats, same_in_substance
from flexledger.audit.verify import rederive as rederive_step
from services.eligibility.domain.decision import Decision

LOW = 120000  # platform work, never stable (social insurance tests)


def ids(book: Book, kind: str, program: str, month: str | None = None) -> list[str]:
    """The ids of the book's decisions of this kind on this programme (and month), in ledger order."""
    return [d.decision_id for d in book.decisions
            if d.kind == kind and d.program == program and (month is None or d.month == month)]


def only(book: Book, kind: str, program: str, month: str | None = None) -> Decision:
    found = [d for d in book.decisions
             if d.kind == kind and d.program == program and (month is None or d.month == month)]
    assert len(found) == 1, found
    return found[0]


def employment_service_book() -> Book:
    """E1 employs W1 stably for six months: registered_unemployed gives 80000, employment_difficulty
    raises the line to 100000 (RULES.md 4.1): two grants on one line."""
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "registered_unemployed", "2021-01-01")
    b.work(E1, W1, "2021-06", [300000] * 6)
    b.category(W1, "employment_difficulty", "2021-01-01")
    assert len(ids(b, "grant", "employment_service")) == 2
    return b


def test_grants_and_flags_name_nothing_they_reverse() -> None:
    b = employment_service_book()
    assert all(d.reverses is None for d in b.decisions)
    assert all("reverses" not in d.to_dict() and "reverses" not in d.stored() for d in b.decisions)


def test_a_clawback_that_ends_a_line_reverses_every_grant_of_it_sorted() -> None:
    b = employment_service_book()
    b.revoke(W1, "registered_unemployed")  # difficulty alone still gives 100000: nothing changes
    b.revoke(W1, "employment_difficulty")
    clawback = only(b, "clawback", "employment_service")
    assert clawback.amount_fen == 100000
    assert clawback.reverses == tuple(sorted(ids(b, "grant", "employment_service")))
    assert clawback.to_dict()["reverses"] == clawback.stored()["reverses"] == list(clawback.reverses)


def test_a_reduction_reverses_the_grants_it_reduces_which_a_later_clawback_names_again() -> None:
    b = employment_service_book()
    b.revoke(W1, "employment_difficulty")  # 100000 -> 80000: 20000 clawed back
    grants = tuple(sorted(ids(b, "grant", "employment_service")))
    reduced = only(b, "clawback", "employment_service")
    assert (reduced.amount_fen, reduced.reverses) == (20000, grants)
    b.revoke(W1, "registered_unemployed")  # the rest
    ended = [d for d in b.decisions if d.kind == "clawback"][-1]
    assert (ended.amount_fen, ended.reverses) == (80000, grants)


def test_a_category_revoked_claws_back_each_month_reversing_that_months_grant() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "employment_difficulty", "2021-01-01")
    for month in ("2021-06", "2021-07"):
        b.report(E1, W1, month, LOW)
        b.contribution(W1, month, 90000)
    b.revoke(W1, "employment_difficulty")
    for month in ("2021-06", "2021-07"):
        clawback = only(b, "clawback", "social_insurance", month)
        assert clawback.after == b.decisions[-1].after  # both caused by the revocation
        assert clawback.reverses == (only(b, "grant", "social_insurance", month).decision_id,)


def test_a_line_granted_again_after_it_ended_reverses_only_the_new_grant() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "employment_difficulty", "2021-01-01")
    b.report(E1, W1, "2021-06", LOW)
    b.contribution(W1, "2021-06", 90000)
    b.refund(W1, "2021-06")
    b.contribution(W1, "2021-06", 90000)
    b.refund(W1, "2021-06")
    grants = ids(b, "grant", "social_insurance", "2021-06")
    clawbacks = [d for d in b.decisions if d.kind == "clawback"]
    assert len(grants) == len(clawbacks) == 2
    assert [c.reverses for c in clawbacks] == [(grants[0],), (grants[1],)]


def test_an_extension_revoked_reverses_the_extension_and_its_months_clawbacks_their_grants() -> None:
    b = Book()
    b.enterprise(E1)
    b.worker(W1)
    b.category(W1, "employment_difficulty", "2021-01-01")
    b.work(E1, W1, "2021-06", [LOW], 90000)
    b.work(E1, W1, "2023-12", [228000, 249000, 249000, 100000, 249000, 249000], 90000)  # 2024-03 unstable
    b.work(E1, W1, "2024-06", [LOW], 90000)
    extension = only(b, "extension", "social_insurance")
    b.correct(E1, W1, "2024-03", 249000)  # the end is stable now: no extension
    revoked = only(b, "extension_revoked", "social_insurance")
    assert revoked.reverses == (extension.decision_id,)
    clawback = only(b, "clawback", "social_insurance", "2024-06")
    assert clawback.reverses == (only(b, "grant", "social_insurance", "2024-06").decision_id,)
    b.correct(E1, W1, "2024-03", 248999)  # extended again: a new extension, reversed by the next revocation
    b.correct(E1, W1, "2024-03", 249000)
    extensions = ids(b, "extension", "social_insurance")
    assert [d.reverses for d in b.decisions if d.kind == "extension_revoked"] == [(e,) for e in extensions]


def test_the_engine_decides_reverses_the_same_every_time() -> None:
    first, second = employment_service_book(), employment_service_book()
    for b in (first, second):
        b.revoke(W1, "employment_difficulty")
        b.revoke(W1, "registered_unemployed")
    assert [d.stored() for d in first.decisions] == [d.stored() for d in second.decisions]


# --- a ledger recorded before `reverses` still verifies -----------------------------------------------

def _clawback(**changes: Any) -> dict[str, Any]:
    decision: dict[str, Any] = {"decision_id": "c1", "kind": "clawback", "amount_fen": 60000,
                                "rule_set": "wuxi-2021-26/1", "explanation": {"summary": "ended"},
                                "reverses": ["g1"]}
    return {**decision, **changes}


def _recorded_before() -> dict[str, Any]:
    return {name: value for name, value in _clawback().items() if name != "reverses"}


def test_a_stored_clawback_without_reverses_is_the_same_in_substance_and_counted() -> None:
    assert same_in_substance([_recorded_before()], [_clawback()])
    assert earlier_formats([_recorded_before()], [_clawback()]) == [WITHOUT_REVERSES]
    reworded = {**_recorded_before(), "explanation": {"summary": "old words"}}
    assert earlier_formats([reworded], [_clawback()]) == [WORDING, WITHOUT_REVERSES]


def test_stored_reverses_that_differ_or_appear_from_nowhere_do_not_re_derive() -> None:
    assert not same_in_substance([_clawback()], [_clawback(reverses=["g2"])])
    assert not same_in_substance([_clawback()], [_recorded_before()])  # derived names none: not older


class _Replay:
    def __init__(self, derived: list[dict[str, Any]]) -> None:
        self.derived = derived

    def decide(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return self.derived


def test_verify_counts_decisions_recorded_before_reverses_without_a_problem() -> None:
    problems: list[str] = []
    counts: Counter[str] = Counter()
    rederive_step.rederive(_Replay([_clawback()]), {}, [_recorded_before()], "main",  # type: ignore[arg-type]
                           lambda text, kind: problems.append(text), counts)
    assert problems == [] and counts[WITHOUT_REVERSES] == 1 and counts[WORDING] == 0
