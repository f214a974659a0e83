"""Every acceptance vector (tests/vectors/*.yaml) through the engine and through `flexledger scenario run`,
compared as scenarios/FORMAT.md says: the multiset of decisions, order ignored, unknown fields ignored,
rejections by (after, "rejected"); nothing missing and nothing extra."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import reference_rules
from typer.testing import CliRunner

from flexledger.engine import Engine
from flexledger.scenario_file import load_scenario

VECTORS = sorted((Path(__file__).parents[1] / "vectors").glob("*.yaml"))
FIELDS = ("after", "kind", "program", "beneficiary", "subject", "ref", "month", "amount_fen")


def norm(d: dict[str, Any]) -> tuple[Any, ...]:
    """As ../shared/hooks/compare_vectors.py normalises a decision (None kept)."""
    if d.get("kind") == "rejected":
        return (str(d.get("after")), "rejected")
    return tuple(
        None if d.get(k) is None else (int(d[k]) if k == "amount_fen" else str(d[k])) for k in FIELDS
    )


def assert_same_decisions(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> None:
    want, got = Counter(map(norm, expected)), Counter(map(norm, actual))
    missing, extra = sorted(want - got, key=repr), sorted(got - want, key=repr)
    assert not missing and not extra, f"missing {missing}\nextra {extra}"


def test_the_vectors_are_there() -> None:
    assert len(VECTORS) >= 9


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_by_engine(path: Path) -> None:
    scenario = load_scenario(path)
    decisions = [d.to_dict() for d in Engine().run(scenario["facts"])]
    assert_same_decisions(scenario["expect"]["decisions"], decisions)
    assert all(d["rule_set"] == "wuxi-2021-26/1" for d in decisions)


@pytest.fixture(scope="module")
def cli() -> Any:
    from flexledger import cli

    cli._register()
    return cli.app


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_by_cli(cli: Any, path: Path) -> None:
    result = CliRunner().invoke(cli, ["scenario", "run", str(path), "--via", "engine"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["rule_set"] == "wuxi-2021-26/1"
    assert_same_decisions(load_scenario(path)["expect"]["decisions"], printed["decisions"])


def test_cli_default_is_the_engine_and_output_is_deterministic(cli: Any) -> None:
    path = next(p for p in VECTORS if p.name.startswith("04"))
    first = CliRunner().invoke(cli, ["scenario", "run", str(path)])
    second = CliRunner().invoke(cli, ["scenario", "run", str(path)])
    assert first.exit_code == 0 and first.stdout == second.stdout


def test_cli_unreadable_file_exits_non_zero(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("facts: {not: a list}\n", encoding="utf-8")
    assert CliRunner().invoke(cli, ["scenario", "run", str(bad)]).exit_code != 0
    assert CliRunner().invoke(cli, ["scenario", "run", str(tmp_path / "missing.yaml")]).exit_code != 0


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector_final_state_agrees_with_the_independent_reading(path: Path) -> None:
    """The entitlement the ledger ends with equals E(accepted facts) of tests/unit/reference_rules.py."""
    engine = Engine()
    accepted = [raw for raw in load_scenario(path)["facts"] if engine.submit(raw)[0].outcome == "accepted"]
    state = {key: line.amount_fen for key, line in engine.entitlement.lines().items()}
    assert state == reference_rules.entitlement(accepted)
