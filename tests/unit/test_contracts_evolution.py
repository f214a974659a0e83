"""The evolution check: the generated schemas may replace the released ones only compatibly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flexledger import contracts_evolution as evolution

RELEASED: dict[str, Any] = {
    "order.v1.json": {
        "type": "object",
        "required": ["order_id", "event"],
        "properties": {
            "order_id": {"type": "string", "description": "the order"},
            "event": {"enum": ["created", "cancelled"]},
            "amount_fen": {"type": "integer", "minimum": 1},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "explanation": {"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]},
        },
    },
}


def changed(edit: Any) -> list[str]:
    current = copy.deepcopy(RELEASED)
    edit(current["order.v1.json"])
    return evolution.breaking_changes(RELEASED, current)


def test_the_committed_schemas_are_compatible_with_the_released_ones() -> None:
    assert evolution.main([]) == 0, "a breaking change: make it a new version (docs/design/contracts.md)"


def test_documentation_and_optional_additions_are_compatible() -> None:
    def edit(schema: dict[str, Any]) -> None:
        schema["properties"]["order_id"]["description"] = "reworded"
        schema["properties"]["reverses"] = {"type": "array", "items": {"type": "string"}}
        # an open object documented with typed, optional properties, moved into $defs
        schema["$defs"] = {"Explanation": {"type": "object", "additionalProperties": True,
                                           "properties": {"article": {"type": "string"}}}}
        schema["properties"]["explanation"]["anyOf"][0] = {"$ref": "#/$defs/Explanation"}

    assert changed(edit) == []
    assert evolution.breaking_changes(RELEASED, {**RELEASED, "order.v2.json": {"type": "object"}}) == []


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda s: s["properties"].pop("amount_fen"), "amount_fen: removed"),
    (lambda s: s["required"].append("amount_fen"), "amount_fen: became required"),
    (lambda s: (s["properties"].update(new={"type": "string"}), s["required"].append("new")),
     "new: added as required"),
    (lambda s: s["properties"]["amount_fen"].update(type="number"), "amount_fen.type: changed"),
    (lambda s: s["properties"]["amount_fen"].update(minimum=0), "amount_fen.minimum: changed"),
    (lambda s: s["properties"]["event"]["enum"].append("paid"), "event.enum: changed"),
    (lambda s: s["properties"]["note"]["anyOf"].pop(), "note.anyOf: changed"),
    (lambda s: s.update(additionalProperties=False), "additionalProperties: changed"),
])
def test_anything_else_is_a_breaking_change(edit: Any, expected: str) -> None:
    problems = changed(edit)
    assert any(expected in problem for problem in problems), problems


def test_a_removed_schema_file_is_a_breaking_change() -> None:
    assert evolution.breaking_changes(RELEASED, {}) == [
        "order.v1.json: removed (publish a new version alongside it instead)"]
