"""Through the running services, every acceptance vector decides exactly as the engine does.

Compared as scenarios/FORMAT.md (and shared/hooks/compare_vectors.py) say: the multiset of
(after, kind, program, beneficiary, subject, ref, month, amount_fen), rejections by (after, kind).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flexledger.engine import Engine
from flexledger.pipeline import run_pipeline
from flexledger.scenario_file import load_scenario
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.yaml"))
FIELDS = ("after", "kind", "program", "beneficiary", "subject", "ref", "month", "amount_fen")


def _norm(decision: dict[str, Any]) -> tuple[Any, ...]:
    if decision.get("kind") == "rejected":
        return (str(decision.get("after")), "rejected")
    return tuple(
        None if decision.get(k) is None else int(decision[k]) if k == "amount_fen" else str(decision[k])
        for k in FIELDS
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v.stem for v in VECTORS])
def test_pipeline_decides_as_the_engine(services: Settings, vector: Path) -> None:
    facts = load_scenario(vector)["facts"]
    started = time.monotonic()
    book = f"scenario-{uuid.uuid4().hex}"
    piped = run_pipeline(facts, services, book=book)
    seconds = time.monotonic() - started
    engine = [d.to_dict() for d in Engine().run(facts)]
    missing = Counter(map(_norm, engine)) - Counter(map(_norm, piped))
    extra = Counter(map(_norm, piped)) - Counter(map(_norm, engine))
    assert not missing and not extra, (
        f"missing {list(missing.elements())[:5]}, extra {list(extra.elements())[:5]}"
    )
    # Beyond the comparison: every decision carries its rule set, id, trace id and (money, flags) explanation.
    assert all(d["rule_set"] and d["decision_id"] and d["trace_id"] for d in piped)
    assert all("explanation" in d for d in piped if d["kind"] != "rejected")
    # What each clawback or revocation reverses (issue 17.2), as the engine derives it in the same book
    # (decision ids include the book).
    in_book = [d.to_dict() for d in Engine(book=book).run(facts)]
    assert {d["decision_id"]: d.get("reverses") for d in piped} == \
        {d["decision_id"]: d.get("reverses") for d in in_book}
    print(f"{vector.stem}: {len(facts)} facts, {len(piped)} decisions in {seconds:.2f}s")
