"""Step 3 of `audit verify`: each fact's decisions re-derive exactly from its stream's earlier facts
under the stream's recorded rule set (the pure core, through `replay.SubjectReplay`)."""

from __future__ import annotations

from typing import Any

from contracts.facts import FactShapeError
from flexledger.audit.replay import SubjectReplay, earlier_formats, same_decisions, same_in_substance
from flexledger.audit.verify.report import REDERIVATION, EventProblem


def rederive(
    replay: SubjectReplay | None, state: dict[str, Any], decisions: list[dict[str, Any]], book: str,
    problem: EventProblem, counts: dict[str, int],
) -> SubjectReplay | None:
    """Re-derive one fact's decisions with its stream's replay (made at the stream's first fact) and
    compare them with the stored `decisions`. Returns the replay the stream's next fact continues (None
    after a fact that cannot be replayed: the next one starts afresh)."""
    try:
        if replay is None:
            replay = SubjectReplay(str(state["rule_set"]), book)
        derived = replay.decide(state)
    except (LookupError, FactShapeError, KeyError, ValueError, TypeError) as exc:
        problem(f"its fact cannot be replayed: {exc}", REDERIVATION)
        return None
    counts["re-derived"] += 1
    if same_decisions(decisions, derived):
        return replay
    if same_in_substance(decisions, derived):
        for earlier in earlier_formats(decisions, derived):  # not a problem: see `same_in_substance`
            counts[earlier] += 1
        return replay
    stored_ids = [d.get("decision_id") for d in decisions]
    derived_ids = [d.get("decision_id") for d in derived]
    problem(
        f"its decisions do not re-derive from the stored facts (stored {stored_ids}, "
        f"re-derived {derived_ids})",
        REDERIVATION,
    )
    return replay
