"""`python -m flexledger.contracts_evolution`: may the generated schemas replace the released ones?

The released schemas are kept in `contracts/released/` (a copy of `contracts/schemas/` at the last
release). Within one version (a schema file such as `decision.v1.json`) a new schema must accept every
message the released one described (docs/design/contracts.md, "Evolution"):

- a property may be added only if it is optional (not `required`);
- no property or schema file may be removed, no property may become required;
- a property's type, format, pattern, bounds, `const` and `enum` stay exactly as released;
- an object released without declared properties (an open object) may gain optional typed properties.

Descriptions, titles, examples and defaults may change freely. Anything else is a new version: a new
model and schema file (`decision.v2`), published on a new topic alongside v1.

`--check` (what CI runs) exits 1 naming every breaking change; `--release` copies the current schemas
into `contracts/released/` (at a release, after the check passed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from flexledger.contracts_gen import CONTRACTS_DIR, schema_documents

RELEASED_DIR = CONTRACTS_DIR / "released"
# Keywords that document a schema without constraining what it accepts.
_DOCUMENTATION = frozenset({"title", "description", "examples", "default", "$comment", "$id", "$schema"})
# Keywords handled structurally below (compared property by property, not as a whole).
_STRUCTURE = frozenset({"properties", "required", "$defs", "additionalProperties"})


def _constraints(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _DOCUMENTATION | _STRUCTURE}


def _compare(old: Any, new: Any, where: str, problems: list[str]) -> None:
    if not isinstance(old, dict) or not isinstance(new, dict):
        if old != new:
            problems.append(f"{where}: changed from {old!r} to {new!r}")
        return
    old_rest, new_rest = _constraints(old), _constraints(new)
    for key in sorted(old_rest.keys() | new_rest.keys()):
        _compare_keyword(key, old_rest.get(key), new_rest.get(key), f"{where}.{key}", problems)
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name in sorted(old_props.keys() - new_props.keys()):
        problems.append(f"{where}.properties.{name}: removed")
    for name in sorted(old_props.keys() & new_props.keys()):
        _compare(old_props[name], new_props[name], f"{where}.properties.{name}", problems)
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        why = "added as required" if name not in old_props else "became required"
        problems.append(f"{where}.properties.{name}: {why}")
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if old_extra != new_extra:
        problems.append(f"{where}.additionalProperties: changed from {_short(old_extra)} to "
                        f"{_short(new_extra)}")


def _compare_keyword(key: str, old: Any, new: Any, where: str, problems: list[str]) -> None:
    if key in ("anyOf", "oneOf", "allOf") and isinstance(old, list) and isinstance(new, list) \
            and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _compare(a, b, f"{where}[{index}]", problems)
    elif isinstance(old, dict) and isinstance(new, dict):
        _compare(old, new, where, problems)
    elif old != new:
        problems.append(f"{where}: changed from {_short(old)} to {_short(new)}")


def _short(value: Any) -> str:
    text = "absent" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def breaking_changes(released: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Every way in which `current` (schema documents by file name) would refuse a message that
    `released` accepted. New files are new types or versions, never a break."""
    problems: list[str] = []
    for name in sorted(released):
        if name not in current:
            problems.append(f"{name}: removed (publish a new version alongside it instead)")
        else:
            _compare(_inlined(released[name]), _inlined(current[name]), name, problems)
    return problems


def _inlined(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every local `$ref` replaced by what it names (wire schemas are not recursive),
    so that moving a sub-schema into `$defs` is not mistaken for a change."""
    defs = document.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if isinstance(ref := node.get("$ref"), str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return resolve({**defs[ref.removeprefix("#/$defs/")], **rest})
        return {k: resolve(v) for k, v in node.items() if k != "$defs"}

    return resolve(document)


def _load(directory: Path) -> dict[str, Any]:
    paths = sorted(directory.glob("*.json"))
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in paths}


def current_schemas() -> dict[str, Any]:
    return {path.name: json.loads(text) for path, text in schema_documents().items()}


def main(argv: list[str]) -> int:
    if "--release" in argv:
        RELEASED_DIR.mkdir(exist_ok=True)
        for stale in RELEASED_DIR.glob("*.json"):
            stale.unlink()
        documents = schema_documents()
        for path, text in documents.items():
            (RELEASED_DIR / path.name).write_text(text, encoding="utf-8")
        print(f"released {len(documents)} schemas into {RELEASED_DIR.relative_to(CONTRACTS_DIR.parent)}")
        return 0
    problems = breaking_changes(_load(RELEASED_DIR), current_schemas())
    for problem in problems:
        print(f"breaking: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
