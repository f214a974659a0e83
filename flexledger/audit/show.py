"""How the audit commands show facts, reasons and JSON: in the language asked for (`--lang zh|en`),
with every identity number masked (`contracts.identifiers.mask_identifiers`), ids in full."""

from __future__ import annotations

import json
from typing import Any

from contracts.facts import FactShapeError, parse_fact
from contracts.identifiers import mask_identifiers
from services.eligibility.domain.fact_text import fact_text

LANGS = ("en", "zh")


def masked_json(value: Any) -> Any:
    """`value` (JSON-able) with every identity number in it masked, wherever it is."""
    return json.loads(mask_identifiers(json.dumps(value, ensure_ascii=False, default=str)))


def fact_content(raw: Any) -> str:
    """A stored fact's fields (id, type and time left out: shown beside), masked, as compact JSON."""
    fields = {k: v for k, v in raw.items() if k not in ("id", "type", "at")} if isinstance(raw, dict) else raw
    return mask_identifiers(json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str))


def fact_line(raw: Any, lang: str) -> str:
    """'fact f19 category_revoked 2022-01-20: 撤销就业困难人员认定 {"category": ..., "worker": "3202…"}'."""
    if not isinstance(raw, dict):
        return f"fact ? {fact_content(raw)}"
    try:
        text = fact_text(parse_fact(raw))
        says = f"{text.day}: {text.zh if lang == 'zh' else text.en}"
    except (FactShapeError, ValueError, TypeError):
        says = str(raw.get("at", ""))
    return mask_identifiers(f"fact {raw.get('id')} {raw.get('type', '?')} {says} {fact_content(raw)}")


def reason(explanation: dict[str, Any], lang: str) -> str:
    """The decision's reason in `lang` (the English summary carries the article and the amount)."""
    text = explanation.get("reason_zh") if lang == "zh" else explanation.get("summary")
    return mask_identifiers(str(text or explanation.get("summary") or ""))
