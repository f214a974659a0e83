"""Steps 1-3 of `audit verify`, over each stream's own rows in version order: every row decrypts
and decodes (1), the stream's versions run 1, 2, 3, ..., its id is the keyed id of its book and
subject, and its hash chain links (2), and each fact's decisions re-derive (3, rederive.py). The pass
also collects the ledger's money and what it recorded of each fact (money.py) for the cross-checks.

This is the hot path: a forked worker runs `check_streams` over its share of the streams (run.py).
Per row it does only what the checks need; an event is named (its subject masked) only when it has a
problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flexledger.audit.replay import SubjectReplay
from flexledger.audit.store import (
    OPENED,
    PROCESSED,
    Decoder,
    EventTable,
    Row,
    StreamIds,
    Undecodable,
    where,
)
from flexledger.audit.verify.money import Money, Processed, money_line
from flexledger.audit.verify.rederive import rederive
from flexledger.audit.verify.report import INTAKE, STREAMS, Books, EventProblem, Problem, Report
from services.eligibility.aggregates import chain_content
from services.eligibility.domain.chain import GENESIS, link_hash
from services.intake.domain.submission import content_digest
from services.runtime.settings import Settings


@dataclass
class _Stream:
    book: str | None = None
    subject: str | None = None
    version: int = 0
    head: str = GENESIS
    replay: SubjectReplay | None = None
    broken: bool = False  # an earlier event could not be read: the chain cannot be followed


_REPORT_EVERY = 4096  # events between two calls of `progress`


def check_streams(
    settings: Settings, books: Books, part: tuple[int, int] | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Report, Money]:
    """Steps 1-3 over the streams of one part (`part` = (k, n): every row of the streams in part k of
    n; None: every stream), stream after stream, so that one stream's rules state is held at a time:
    the pass's memory stays flat however many streams the log has (read in notification order, every
    stream's state was held to the end). Runs in a worker process: takes and returns plain data;
    `progress` is called with the events read so far every few thousand events, and at the end."""
    report, money = Report(), Money()
    decoder, stream_id = Decoder(settings), StreamIds(settings)
    current, stream = "", _Stream()
    counts = report.counts
    for row in EventTable(settings, "eligibility").rows_by_stream(part=part):
        counts["events"] += 1
        if progress is not None and not counts["events"] % _REPORT_EVERY:
            progress(counts["events"])
        if row.originator_id != current:  # the previous stream is done: its state is dropped
            current, stream = row.originator_id, _Stream()
        if row.version != stream.version + 1:
            _version_gap(row, stream, books, report)
        stream.version = row.version
        try:
            state = decoder.decode(row)
        except Undecodable as exc:
            _undecodable(row, stream, exc, report)
            continue
        if row.topic == OPENED:
            _opened(row, state, stream, stream_id, report)
        elif row.topic == PROCESSED and (books is None or state.get("book") in books):
            _processed(row, state, stream, money, report)
        # other rows: checkpoints (step 4, checkpoints.py), and events of other kinds
    if progress is not None:
        progress(counts["events"])
    return report, money


def _version_gap(row: Row, stream: _Stream, books: Books, report: Report) -> None:
    if row.version <= stream.version:
        what = f"version {row.version} stored again after version {stream.version}"
    else:
        missing = ", ".join(str(v) for v in range(stream.version + 1, min(row.version, stream.version + 6)))
        what = (
            f"version {missing}{'…' if row.version - stream.version > 6 else ''} of this stream is "
            f"missing: a stored event was deleted (the stream jumps from version {stream.version} "
            f"to {row.version} here)"
        )
    if books is None or stream.book is None or stream.book in books:
        here = where(row, {"book": stream.book, "subject": stream.subject})
        report.add(Problem(here, what, (STREAMS, row.notification_id)))
    stream.broken = True


def _undecodable(row: Row, stream: _Stream, exc: Undecodable, report: Report) -> None:
    report.add(
        Problem(
            where(row, {"book": stream.book, "subject": stream.subject}),
            f"the stored event {exc}: it was altered",
            (STREAMS, row.notification_id),
        )
    )
    stream.broken = True
    report.counts["undecodable"] += 1


def _opened(row: Row, state: dict[str, Any], stream: _Stream, stream_id: StreamIds, report: Report) -> None:
    """A stream's first event: what it holds, and its id is the keyed id of that (else it was moved)."""
    stream.book, stream.subject = state.get("book"), state.get("subject")
    if (
        stream.book is not None
        and stream.subject is not None
        and str(stream_id(stream.book, stream.subject)) != row.originator_id
    ):
        report.add(
            Problem(
                where(row, state),
                "this stream's id is not the keyed id of its book and subject: the row was moved or forged",
                (STREAMS, row.notification_id),
            )
        )
    report.counts["streams"] += 1


def _processed(row: Row, state: dict[str, Any], stream: _Stream, money: Money, report: Report) -> None:
    """A fact's event: it belongs to its stream and links into its chain (step 2), its money is
    counted, its decisions re-derive (step 3), and what it recorded of the fact is kept for intake's
    cross-check (step 5)."""
    counts = report.counts

    def problem(what: str, check: int) -> None:
        report.add(Problem(where(row, state), what, (check, row.notification_id)))

    if stream.book is not None and (stream.book, stream.subject) != (state.get("book"), state.get("subject")):
        problem("the event names another book or subject than its stream", STREAMS)
    if not _links(state, stream, problem):
        return
    counts["links"] += 1
    counts["facts"] += 1
    book = str(state["book"])
    money.add_processed(book, int(state["seq"]), _fact(row, state, problem))
    decisions = state.get("decisions") or []
    _decisions(book, decisions, money, counts)
    stream.replay = rederive(stream.replay, state, decisions, book, problem, counts)


def _fact(row: Row, state: dict[str, Any], problem: EventProblem) -> Processed:
    """What the event recorded of its fact, for intake's cross-check (step 5); that its digest is the
    SHA-256 of the canonical JSON of its fact, as intake computes it, is checked here, where the fact
    is (the fact is not sent to the parent)."""
    fact_id, digest = state.get("fact_id"), state.get("digest")
    try:
        digest_is_facts = content_digest(state.get("fact")) == digest
    except ValueError:  # a fact intake could not have digested (a lone surrogate in a string)
        digest_is_facts = False
    if not digest_is_facts:
        problem(
            f"seq {state.get('seq')} (fact {fact_id}): its digest is not the SHA-256 of the fact stored "
            "with it, so the fact is not the one intake recorded: forged",
            INTAKE,
        )
    return fact_id, state.get("outcome"), state.get("subject"), digest, row.notification_id


def _links(state: dict[str, Any], stream: _Stream, problem: EventProblem) -> bool:
    """The hash chain (`chain.verify_chain`, one link at a time): the link to the stream's previous
    event, and this event's content under its own hash. False: the event lacks what its hash covers."""
    try:
        content = chain_content(state)
    except KeyError as exc:
        problem(f"the event lacks {exc}: it was altered", STREAMS)
        stream.broken = True
        return False
    if not stream.broken and state.get("prev_hash") != stream.head:
        problem(
            "its previous-hash does not link to the stream's previous event: an earlier "
            "event was altered, deleted or inserted",
            STREAMS,
        )
    if link_hash(str(state.get("prev_hash")), content) != state.get("hash"):
        problem("its content does not match its hash: the event was altered", STREAMS)
    stream.head = str(state.get("hash"))
    stream.broken = False
    return True


def _decisions(book: str, decisions: list[dict[str, Any]], money: Money, counts: dict[str, int]) -> None:
    """A fact's decisions counted by kind, and its grants and clawbacks added to the ledger's money."""
    counts["decisions"] += len(decisions)
    for d in decisions:
        counts[f"decisions.{d.get('kind')}"] += 1
        if d.get("kind") in ("grant", "clawback"):
            line = money_line(book, d)
            target = money.granted if d["kind"] == "grant" else money.clawed
            target[line] += int(d["amount_fen"])
            money.decisions[str(d["decision_id"])] = (d["kind"], line, int(d["amount_fen"]))
