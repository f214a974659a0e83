"""Reading acceptance vectors (scenarios/FORMAT.md).

Dates and timestamps stay strings exactly as written: YAML's implicit timestamp type is switched off,
since the ledger's facts carry dates as strings and an unquoted date must not change type on the way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _FactLoader(yaml.SafeLoader):
    pass


_FactLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ScenarioError(Exception):
    """The file cannot be read as a scenario."""


def load_scenario(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_FactLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("facts"), list):
        raise ScenarioError(f"{path}: a scenario is a mapping with a list under 'facts'")
    return data
