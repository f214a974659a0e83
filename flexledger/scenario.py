"""`flexledger scenario run FILE [--via engine|pipeline]` (scenarios/FORMAT.md)."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from flexledger.engine import Engine
from flexledger.exits import Exit, fail
from flexledger.scenario_file import ScenarioError, load_scenario
from services.eligibility.domain.ruleset import CURRENT

app = typer.Typer(no_args_is_help=True, help="Run acceptance vectors.")


class Via(StrEnum):
    engine = "engine"
    pipeline = "pipeline"


# More facts than this through the pipeline take long enough to show a progress bar (on stderr).
PROGRESS_FROM_FACTS = 200


@app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="a scenario YAML file: a mapping with a list of facts "
                                              "under 'facts' (scenarios/FORMAT.md)")],
    via: Annotated[
        Via, typer.Option(help="engine: in-process; pipeline: through the running services")
    ] = Via.engine,
) -> None:
    """Submit the scenario's facts in order and print the decisions as one JSON object. Exit status
    2 for a file that is not a scenario, 3 when the services cannot be reached (flexledger/exits.py)."""
    try:
        scenario = load_scenario(file)
    except ScenarioError as exc:
        fail(str(exc), Exit.USAGE)
    if via is Via.engine:
        decisions = [d.to_dict() for d in Engine().run(scenario["facts"])]
    else:
        from flexledger.pipeline import PipelineError, run_pipeline

        try:
            decisions = run_pipeline(scenario["facts"],
                                     progress=len(scenario["facts"]) > PROGRESS_FROM_FACTS)
        except PipelineError as exc:
            fail(str(exc), Exit.UNREACHABLE)
    json.dump({"rule_set": CURRENT.id, "decisions": decisions}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
