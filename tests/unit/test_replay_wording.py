"""A ledger recorded before the explanations were reworded (issue 16) still re-derives: in substance
(every field but the explanation), not byte for byte; a different amount or kind does not."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flexledger.audit.replay import same_decisions, same_in_substance
from flexledger.audit.verify import rederive as rederive_step


def _decision(**changes: Any) -> dict[str, Any]:
    decision: dict[str, Any] = {
        "decision_id": "d1", "kind": "clawback", "programme": "social_insurance", "amount_fen": -54000,
        "period": "2021-06", "rule_set": "wuxi-2021-26/1",
        "explanation": {"summary": "entitlement ended after fact f19", "reason_zh": "原依据",
                        "fact_ids": ["f1"]},
    }
    return {**decision, **changes}


def test_a_reworded_explanation_is_the_same_decision_in_substance_only() -> None:
    recorded = [_decision()]
    today = [_decision(explanation={"summary": "entitlement ended by fact f19 (category_revoked)",
                                    "reason_zh": "因事实 f19 …享受资格终止", "fact_ids": ["f1", "f19"]})]
    assert not same_decisions(recorded, today)
    assert same_in_substance(recorded, today)


def test_a_different_amount_or_kind_is_not_the_same_decision() -> None:
    assert not same_in_substance([_decision()], [_decision(amount_fen=-27000)])
    assert not same_in_substance([_decision()], [_decision(kind="grant")])
    assert not same_in_substance([_decision()], [])


class _Replay:
    def __init__(self, derived: list[dict[str, Any]]) -> None:
        self.derived = derived

    def decide(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return self.derived


def test_verify_counts_earlier_wordings_and_reports_only_real_differences() -> None:
    problems: list[str] = []
    counts: Counter[str] = Counter()
    reworded = [_decision(explanation={"summary": "reworded"})]
    rederive_step.rederive(_Replay(reworded), {}, [_decision()], "main",  # type: ignore[arg-type]
                           lambda text, kind: problems.append(text), counts)
    assert problems == [] and counts["explained by an earlier wording"] == 1
    rederive_step.rederive(_Replay([_decision(amount_fen=1)]), {}, [_decision()], "main",  # type: ignore[arg-type]
                           lambda text, kind: problems.append(text), counts)
    assert len(problems) == 1 and "do not re-derive" in problems[0]
