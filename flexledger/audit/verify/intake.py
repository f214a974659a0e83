"""Step 5 of `audit verify`: intake's log as a second witness. Every seq intake recorded, up to what
eligibility reports as processed (its progress watermark), has its eligibility event: this names a
deleted event even at the end of its stream, where no version gap shows it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import psycopg

from flexledger.audit.store import Decoder, EventTable, Undecodable, where
from flexledger.audit.verify.money import Money
from flexledger.audit.verify.report import AFTER_EVERY_EVENT, INTAKE, STREAMS, Books, Problem, Report
from services.runtime.settings import Settings

_RECORDED = ("FactSubmission.Recorded", "FactSubmission.ReuseRejected")


@dataclass
class IntakeLog:
    watermarks: dict[str, int]  # book -> the last seq eligibility reports processed
    recorded: dict[str, dict[int, str | None]]  # book -> seq -> fact id, as intake recorded them


def read_intake(settings: Settings, decoder: Decoder, books: Books, report: Report) -> IntakeLog | None:
    """Intake's recorded seqs and eligibility's processed watermarks (None: the check cannot run)."""
    table = EventTable(settings, "intake")
    if not table.exists():
        report.notes.append("intake's event table is missing: the intake cross-check was skipped")
        return None
    try:
        with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
            watermarks: dict[str, int] = dict(
                conn.execute("SELECT book, last_seq FROM eligibility.eligibility_progress").fetchall()
            )
    except psycopg.Error:
        report.notes.append("eligibility's progress table is unreadable: the intake cross-check was skipped")
        return None
    recorded: dict[str, dict[int, str | None]] = defaultdict(dict)
    for row in table.rows():
        if not row.topic.endswith(_RECORDED):
            continue
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            what = f"the stored event {exc}: it was altered"
            report.add(Problem(f"intake {where(row)}", what, (INTAKE, row.notification_id)))
            continue
        if books is None or state.get("book") in books:
            recorded[str(state["book"])][int(state["seq"])] = state.get("fact_id")
    return IntakeLog(watermarks, recorded)


def check_intake(intake: IntakeLog, money: Money, report: Report) -> None:
    """Step 5: every seq intake recorded, up to eligibility's processed watermark, has its event."""
    for book, seqs in sorted(intake.recorded.items()):
        report.counts["intake seqs"] += len(seqs)
        watermark = int(intake.watermarks.get(book, 0))
        processed = money.seqs.get(book, set())
        for seq in sorted(s for s in seqs if s <= watermark and s not in processed):
            report.add(
                Problem(
                    f"book {book}, seq {seq} (fact {seqs[seq]})",
                    "intake recorded this fact and eligibility reported it processed, but eligibility "
                    "holds no event for it: its ledger event was deleted",
                    (STREAMS, AFTER_EVERY_EVENT + seq),  # a deleted event: with the streams' problems
                )
            )
