"""Files the command needs at run time that live in `deploy/` (the broker's pom and configs, roles.sql).

In a checkout they are read from `deploy/`; the wheel carries the same files as package data in
`flexledger/_deploy/` (pyproject.toml: `force-include`), so an installed `flexledger` needs no checkout.
"""

from __future__ import annotations

from pathlib import Path

from services.runtime.settings import PROJECT_ROOT

_PACKAGED = Path(__file__).resolve().parent / "_deploy"


def deploy_path(*parts: str) -> Path:
    """`deploy/<parts>` of the checkout, or its copy inside the installed package."""
    root = _PACKAGED if _PACKAGED.is_dir() else PROJECT_ROOT / "deploy"
    return root.joinpath(*parts)
