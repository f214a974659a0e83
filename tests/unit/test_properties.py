"""Properties of the ledger over generated fact timelines (RULES.md section 3, issue 3 item 7):

(a) replaying any prefix of the facts through a fresh engine reproduces the decisions made up to there;
(b) for every money line, grants minus clawbacks equal E(facts) computed from scratch, and every flag's
    appear/revoke history ends in the from-scratch flag set — from scratch both by the core's
    `entitlement_from_scratch` and by an independent reading of RULES.md (`reference_rules`);
(c) resubmitting an accepted fact unchanged records nothing and leaves the state as it was;
(d) a rejected fact changes nothing and records exactly one `rejected` decision;
and two runs give byte-identical output.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import reference_rules
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import Timeline, state_snapshot, timelines

from contracts.facts import AnyFact
from flexledger.engine import Engine
from services.eligibility.domain.decision import Decision
from services.eligibility.domain.entitlement import MONEY
from services.eligibility.domain.entitlement_state import entitlement_from_scratch
from services.eligibility.domain.ruleset import CURRENT
from services.intake.domain.submission import Submission

ROOT = Path(__file__).parents[2]
# Small cities of every kind, and long lives (40+ months) that reach the social insurance extension.
TIMELINES = st.one_of(timelines(), timelines(max_workers=2, min_months=40, max_months=48, max_events=15))
# FLEXLEDGER_PROPERTY_EXAMPLES=2000 for a deeper search than the suite's default.
EXAMPLES = int(os.environ.get("FLEXLEDGER_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Run:
    """A timeline through one engine, with each submission's outcome and decisions."""

    def __init__(self, facts: list[dict[str, Any]], check_rejections: bool = False) -> None:
        self.engine = Engine()
        self.steps: list[tuple[Submission, list[Decision]]] = []
        self.accepted: list[tuple[dict[str, Any], AnyFact]] = []
        for raw in facts:
            before = None
            if check_rejections and self.engine.intake.check(raw).outcome == "rejected":
                before = state_snapshot(self.engine)
            submission, decisions = self.engine.submit(raw)
            if before is not None:
                # (d) a rejected fact changes nothing and records one rejected decision
                assert submission.outcome == "rejected"
                assert [d.kind for d in decisions] == ["rejected"], decisions
                assert decisions[0].after == submission.fact_id and decisions[0].reason
                assert state_snapshot(self.engine) == before
            elif submission.outcome == "duplicate":
                assert decisions == []
            elif submission.outcome == "rejected":
                assert [d.kind for d in decisions] == ["rejected"]
            else:
                assert all(d.kind != "rejected" for d in decisions)
            if submission.outcome == "accepted":
                assert submission.fact is not None
                self.accepted.append((raw, submission.fact))
            self.steps.append((submission, decisions))

    def decisions(self, upto: int | None = None) -> list[dict[str, Any]]:
        return [d.to_dict() for _, ds in self.steps[:upto] for d in ds]


def ledger_state(decisions: list[dict[str, Any]]) -> tuple[dict[tuple[Any, ...], int], set[tuple[Any, ...]]]:
    """Money lines as sums of grants minus clawbacks, and the flags whose history ends present."""
    money: dict[tuple[Any, ...], int] = defaultdict(int)
    flags: dict[tuple[Any, ...], bool] = {}
    for d in decisions:
        if d["kind"] == "rejected":
            continue
        where = (d["program"], d["beneficiary"], d["subject"], d["ref"], d["month"])
        if d["kind"] == "grant":
            assert d["amount_fen"] > 0
            money[where] += d["amount_fen"]
        elif d["kind"] == "clawback":
            assert d["amount_fen"] > 0
            money[where] -= d["amount_fen"]
            assert money[where] >= 0, f"clawed back more than granted on {where}"
        elif d["kind"] in {"extension", "statistic", "recognition"}:
            assert d["amount_fen"] == 0
            assert not flags.get((d["kind"], *where)), f"{d['kind']} appeared twice on {where}"
            flags[(d["kind"], *where)] = True
        elif d["kind"].endswith("_revoked"):
            kind = d["kind"].removesuffix("_revoked")
            assert flags.get((kind, *where)), f"{d['kind']} of a flag that is not there: {where}"
            flags[(kind, *where)] = False
    return {k: v for k, v in money.items() if v}, {k for k, present in flags.items() if present}


def split(lines: dict[tuple[Any, ...], int]) -> tuple[dict[tuple[Any, ...], int], set[tuple[Any, ...]]]:
    money = {key[1:]: amount for key, amount in lines.items() if key[0] == MONEY}
    return money, {key for key in lines if key[0] != MONEY}


def check_against_from_scratch(run: Run, upto: int | None = None) -> None:
    accepted = (
        run.accepted
        if upto is None
        else [
            (raw, fact)
            for raw, fact in run.accepted
            if any(step[0].fact is fact for step in run.steps[:upto])
        ]
    )
    money, flags = ledger_state(run.decisions(upto))
    core_money, core_flags = split(
        {k: v.amount_fen for k, v in entitlement_from_scratch([f for _, f in accepted], CURRENT).items()}
    )
    assert money == core_money
    assert flags == core_flags
    ref_money, ref_flags = split(reference_rules.entitlement([raw for raw, _ in accepted]))
    assert money == ref_money
    assert flags == ref_flags


@PROPERTY
@given(TIMELINES, st.data())
def test_a_replayed_prefix_reproduces_the_decisions_made_up_to_there(
    timeline: Timeline, data: st.DataObject
) -> None:
    full = Run(timeline.facts)
    for _ in range(3):
        k = data.draw(st.integers(0, len(timeline.facts)), label="prefix")
        assert [d.to_dict() for d in Engine().run(timeline.facts[:k])] == full.decisions(k)


@PROPERTY
@given(TIMELINES)
def test_grants_minus_clawbacks_equal_the_entitlement_from_scratch(timeline: Timeline) -> None:
    run = Run(timeline.facts)
    check_against_from_scratch(run)
    assert {k: v.amount_fen for k, v in run.engine.entitlement.lines().items()} == {
        k: v.amount_fen for k, v in entitlement_from_scratch([f for _, f in run.accepted], CURRENT).items()
    }


@settings(PROPERTY, max_examples=max(EXAMPLES // 5, 15))
@given(timelines(max_workers=2, min_months=40, max_months=48, max_events=15), st.data())
def test_grants_minus_clawbacks_equal_the_entitlement_at_every_prefix(
    timeline: Timeline, data: st.DataObject
) -> None:
    run = Run(timeline.facts)
    for _ in range(4):
        check_against_from_scratch(run, data.draw(st.integers(0, len(timeline.facts)), label="prefix"))


@PROPERTY
@given(TIMELINES, st.data())
def test_resubmitting_an_accepted_fact_unchanged_records_nothing(
    timeline: Timeline, data: st.DataObject
) -> None:
    run = Run(timeline.facts)
    if not run.accepted:
        return
    before = state_snapshot(run.engine)
    for raw, _ in run.accepted:
        submission, decisions = run.engine.submit(dict(raw))
        assert submission.outcome == "duplicate" and decisions == []
    assert state_snapshot(run.engine) == before
    # ... and the timeline goes on exactly as without the resubmissions (mid-way, too)
    k = data.draw(st.integers(0, len(timeline.facts)), label="cut")
    earlier = [raw for raw, _ in run.accepted if any(raw is f for f in timeline.facts[:k])]
    again = [*timeline.facts[:k], *(dict(raw) for raw in earlier), *timeline.facts[k:]]
    assert Run(again).decisions() == run.decisions()


@PROPERTY
@given(TIMELINES)
def test_a_rejected_fact_changes_nothing(timeline: Timeline) -> None:
    run = Run(timeline.facts, check_rejections=True)
    # Without the rejected facts whose id nothing else uses, every other decision is the same.
    ids = [f.get("id") for f in timeline.facts]
    dropped = {
        ids[i] for i, (s, _) in enumerate(run.steps) if s.outcome == "rejected" and ids.count(ids[i]) == 1
    }
    if dropped:
        keep = [f for f in timeline.facts if f.get("id") not in dropped]
        # A rejection is recorded with intake's next seq, which its decision id includes: dropping a
        # rejected fact renumbers later rejections (only their ids), and nothing else.
        assert _rejection_ids_dropped(Run(keep).decisions()) == _rejection_ids_dropped(
            [d for d in run.decisions() if d["after"] not in dropped]
        )


def _rejection_ids_dropped(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in d.items() if k != "decision_id"} if d["kind"] == "rejected" else d
            for d in decisions]


@settings(PROPERTY, max_examples=max(EXAMPLES // 4, 20))
@given(TIMELINES)
def test_two_runs_give_byte_identical_output(timeline: Timeline) -> None:
    first = json.dumps(Run(timeline.facts).decisions(), ensure_ascii=False, sort_keys=False)
    second = json.dumps([d.to_dict() for d in Engine().run(timeline.facts)], ensure_ascii=False)
    assert first == second


def test_output_is_byte_identical_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = generate
    spec.loader.exec_module(generate)
    facts = list(generate.generate_facts(workers=60, platforms=3, months=14, seed=7))
    path = tmp_path / "city.yaml"
    path.write_text(
        yaml.safe_dump({"name": "generated", "facts": facts}, allow_unicode=True), encoding="utf-8"
    )
    outputs = []
    for seed in ("1", "2"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from flexledger.cli import main; sys.argv[0] = 'flexledger'; main()",
                "scenario",
                "run",
                str(path),
            ],
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            timeout=120,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    decisions = json.loads(outputs[0])["decisions"]
    assert {d["kind"] for d in decisions} >= {"grant", "rejected"}
