"""Release hygiene (docs/releasing.md): one version, a changelog that has it, a licence file that
matches the metadata, and every runtime dependency in the lock."""

from __future__ import annotations

import re
import tomllib

from flexledger import __version__
from services.runtime.settings import PROJECT_ROOT


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(__version__)}\]", changelog, re.MULTILINE)


def test_the_version_has_one_place_and_the_licence_matches() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "flexledger/__init__.py"
    assert project["project"]["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in (PROJECT_ROOT / "LICENSE").read_text()


def test_every_runtime_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    locked = {line.split("==")[0] for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
              if line and not line.startswith("#")}
    for requirement in project["project"]["dependencies"]:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is not in requirements.lock (docs/releasing.md, step 4)"
