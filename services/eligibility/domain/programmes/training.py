"""4.3 training — 线上职业培训补贴 (Art. 6): 18.5 CNY per class hour, at most 500 CNY per worker,
paid to the enterprise in the order the records were accepted."""

from __future__ import annotations

from services.eligibility.domain.entitlement import Basis, Line, Lines, money_key
from services.eligibility.domain.ruleset import RuleSet
from services.eligibility.domain.worker_file import WorkerFile

PROGRAM = "training"


def training(file: WorkerFile, rules: RuleSet) -> Lines:
    lines: Lines = {}
    used = 0
    for record in file.trainings.values():
        if record.completed_on < rules.policy_start_date:
            continue  # completed before the measures: earns nothing and uses none of the cap
        rate = rules.params.at("training_fen_per_hour", record.completed_on)
        cap = rules.params.at("training_cap_fen_per_worker", record.completed_on)
        assert isinstance(rate.value, int) and isinstance(cap.value, int)
        full = record.hours * rate.value
        amount = min(full, max(cap.value - used, 0))
        if amount <= 0:
            continue
        used += amount
        capped = "" if amount == full else f", capped: {cap.value - used + amount} fen of the cap was left"
        lines[money_key(PROGRAM, record.enterprise, file.worker, record.course, None)] = Line(amount, Basis(
            article="Art. 6",
            reason_en=(
                f"{record.hours} class hours x {rate.value} fen completed {record.completed_on}{capped}"
            ),
            reason_zh=f"线上培训{record.hours}课时 × {rate.value}分，累计不超过{cap.value}分/人",
            params=((rate.name, str(rate.value), rate.since), (cap.name, str(cap.value), cap.since)),
            fact_ids=(record.fact_id,),
        ))
    return lines
