"""`flexledger scenario run FILE [--via engine|pipeline]` (scenarios/FORMAT.md)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flexledger.engine import Engine
from flexledger.scenario_file import ScenarioError, load_scenario
from services.eligibility.domain.ruleset import CURRENT

app = typer.Typer(no_args_is_help=True, help="Run acceptance vectors.")


class Via(StrEnum):
    engine = "engine"
    pipeline = "pipeline"


@app.command("run")
def run(
    file: Path,
    via: Annotated[
        Via, typer.Option(help="engine: in-process; pipeline: through the running services")
    ] = Via.engine,
) -> None:
    """Submit the scenario's facts in order and print the decisions as one JSON object."""
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    if via is Via.engine:
        decisions = [d.to_dict() for d in Engine().run(scenario["facts"])]
    else:
        from flexledger.pipeline import PipelineError, run_pipeline

        try:
            decisions = run_pipeline(scenario["facts"])
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(3) from exc
    json.dump({"rule_set": CURRENT.id, "decisions": decisions}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
