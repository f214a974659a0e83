"""Step 5 of `audit verify`: intake's log as a second witness, both ways.

- Every seq intake recorded, up to what eligibility reports as processed (its progress watermark), has
  its eligibility event: this names a deleted event even at the end of its stream, where no version gap
  shows it.
- Every fact eligibility processed is the one intake recorded at its (book, seq): same fact id,
  outcome, subject and digest, and the digest is the SHA-256 of the canonical JSON of the fact
  eligibility stored (intake's own `content_digest`, applied in the stream pass, where the fact is). A
  fact decided without intake — published straight to the facts topic, or written into eligibility's
  store by the owner role — is named so: its chain links and its decisions re-derive, since whoever
  wrote it made them, but intake never recorded it. A second event for one (book, seq) is named too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg

from flexledger.audit.store import Decoder, EventTable, Undecodable, where
from flexledger.audit.verify.money import Money, Processed
from flexledger.audit.verify.report import AFTER_EVERY_EVENT, INTAKE, STREAMS, Books, Problem, Report
from services.runtime.settings import Settings

_RECORDED = ("FactSubmission.Recorded", "FactSubmission.ReuseRejected")


class Recorded(NamedTuple):
    """Intake's record of one (book, seq): the submission it numbered so. Its fields are the first four
    of eligibility's `Processed`, in that order, so that the two compare as tuples."""

    fact_id: str | None
    outcome: str | None
    subject: str | None
    digest: str | None


@dataclass
class IntakeLog:
    watermarks: dict[str, int]  # book -> the last seq eligibility reports processed
    recorded: dict[str, dict[int, Recorded]] = field(default_factory=lambda: defaultdict(dict))
    read_up_to: int = 0  # the notification id of the last row read


def read_watermarks(settings: Settings) -> dict[str, int] | None:
    """Eligibility's processed watermarks (book -> last seq), None when unreadable. Read before the
    stream pass starts: every event up to them is stored by then, so the pass, which reads stream after
    stream, cannot miss one that a later watermark would ask for."""
    try:
        with psycopg.connect(settings.pg_dsn(), connect_timeout=10) as conn:
            rows = conn.execute("SELECT book, last_seq FROM eligibility.eligibility_progress").fetchall()
            return dict(rows)
    except psycopg.Error:
        return None


def read_intake(
    settings: Settings, decoder: Decoder, books: Books, report: Report, watermarks: dict[str, int] | None
) -> IntakeLog | None:
    """Intake's recorded submissions, with eligibility's processed watermarks (None: the check cannot
    run)."""
    if not EventTable(settings, "intake").exists():
        report.notes.append("intake's event table is missing: the intake cross-check was skipped")
        return None
    if watermarks is None:
        report.notes.append("eligibility's progress table is unreadable: the intake cross-check was skipped")
        return None
    intake = IntakeLog(watermarks)
    read_recorded(settings, decoder, books, intake, report)
    return intake


def read_recorded(
    settings: Settings, decoder: Decoder, books: Books, intake: IntakeLog, report: Report
) -> None:
    """Intake's recorded submissions after those already read. Read again once the stream pass is done:
    on a running stack eligibility may have processed, meanwhile, facts intake recorded after the first
    read (intake commits in notification order, before it publishes)."""
    for row in EventTable(settings, "intake").rows(after=intake.read_up_to):
        intake.read_up_to = row.notification_id
        if not row.topic.endswith(_RECORDED):
            continue
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            what = f"the stored event {exc}: it was altered"
            report.add(Problem(f"intake {where(row)}", what, (INTAKE, row.notification_id)))
            continue
        if books is None or state.get("book") in books:
            intake.recorded[str(state["book"])][int(state["seq"])] = Recorded(
                state.get("fact_id"), state.get("outcome", "rejected"),  # a reuse has no outcome: rejected
                state.get("subject"), state.get("digest"),
            )


def check_intake(intake: IntakeLog, money: Money, report: Report) -> None:
    """Step 5, both ways: intake's recorded seqs against eligibility's events, and eligibility's
    processed facts against intake's records."""
    _every_recorded_seq_processed(intake, money, report)
    _every_processed_fact_recorded(intake, money, report)


def _every_recorded_seq_processed(intake: IntakeLog, money: Money, report: Report) -> None:
    """Every seq intake recorded, up to eligibility's processed watermark, has its event."""
    for book, seqs in sorted(intake.recorded.items()):
        report.counts["intake seqs"] += len(seqs)
        watermark = int(intake.watermarks.get(book, 0))
        processed = money.processed.get(book, {})
        for seq in sorted(s for s in seqs if s <= watermark and s not in processed):
            report.add(
                Problem(
                    f"book {book}, seq {seq} (fact {seqs[seq].fact_id})",
                    "intake recorded this fact and eligibility reported it processed, but eligibility "
                    "holds no event for it: its ledger event was deleted",
                    (STREAMS, AFTER_EVERY_EVENT + seq),  # a deleted event: with the streams' problems
                )
            )


def _every_processed_fact_recorded(intake: IntakeLog, money: Money, report: Report) -> None:
    """Every fact eligibility processed is the one intake recorded at its (book, seq), once. (That its
    digest is its fact's the stream pass checked, chains.py.)"""
    for book, processed in money.processed.items():
        recorded = intake.recorded.get(book, {})
        report.counts["facts held to intake"] += len(processed)
        for seq, fact in processed.items():
            what = mismatch(recorded.get(seq), fact)
            if what is not None:
                report.add(Problem(_named(book, seq, fact), what, (INTAKE, fact[-1])))
    for book, seq, fact in money.again:
        report.counts["facts held to intake"] += 1
        what = f"eligibility holds another event for this seq (notification {money.processed[book][seq][-1]})"
        differs = mismatch(intake.recorded.get(book, {}).get(seq), fact)
        what += f"; {differs}" if differs else ": a fact processed twice, or a forged copy"
        report.add(Problem(_named(book, seq, fact), what, (INTAKE, fact[-1])))


def _named(book: str, seq: int, fact: Processed) -> str:
    fact_id, *_, notification_id = fact
    return f"book {book}, seq {seq} (fact {fact_id}), notification {notification_id}"


def mismatch(recorded: Recorded | None, processed: Processed) -> str | None:
    """What is wrong with eligibility's record of a fact, held to intake's record of its (book, seq)
    (None: intake never recorded it); None when nothing is."""
    stored = processed[:4]
    if stored == recorded:  # a named tuple equals the plain tuple of its fields
        return None
    if recorded is None:
        return (
            "eligibility decided a fact intake never recorded: forged (published past intake, or written "
            "into eligibility's store)"
        )
    differs = []
    for name, mine, witnessed in zip(Recorded._fields, stored, recorded, strict=True):
        if mine != witnessed:
            shown = (_short(mine), _short(witnessed)) if name == "digest" else (mine, witnessed)
            differs.append(f"{name.replace('_', ' ')} {shown[0]} where intake recorded {shown[1]}")
    return f"eligibility decided another fact than intake recorded at this seq ({'; '.join(differs)}): forged"


def _short(digest: str | None) -> str:
    return f"{digest[:12]}…" if digest else str(digest)
