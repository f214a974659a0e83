"""Eligibility's read side: the decisions table and each book's progress, folded from the ledger's
notification log (exactly once: rows and follower position commit in one transaction).

Progress is a watermark: `last_seq` is the highest intake sequence up to which every fact of the book
has been processed. Facts of different subjects travel on different partitions and may be processed
out of order; seqs beyond a gap wait in `eligibility_pending_seqs` until the gap closes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

import asyncpg

from services.eligibility.aggregates import DecisionChain
from services.runtime.outbox import Batch, Connection

SCHEMA = "eligibility"
DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.eligibility_decisions (
    decision_id text PRIMARY KEY,
    book text NOT NULL,
    seq bigint NOT NULL,
    ordinal integer NOT NULL,
    after text,
    kind text NOT NULL,
    program text,
    beneficiary text,
    subject text,
    ref text,
    month text,
    amount_fen bigint NOT NULL,
    reason text,
    explanation jsonb,
    rule_set text NOT NULL,
    trace_id text,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS eligibility_decisions_by_book
    ON {SCHEMA}.eligibility_decisions (book, seq, ordinal);
-- One subject's decisions (the console's subject page: `?subject=`), by subject or beneficiary.
CREATE INDEX IF NOT EXISTS eligibility_decisions_by_subject ON {SCHEMA}.eligibility_decisions (book, subject);
CREATE INDEX IF NOT EXISTS eligibility_decisions_by_beneficiary
    ON {SCHEMA}.eligibility_decisions (book, beneficiary);
-- The enterprise the fact of a decision names (null: none), and which workers each enterprise
-- reported (an accepted fact naming both): what a platform may read (docs/design/http-auth.md).
ALTER TABLE {SCHEMA}.eligibility_decisions ADD COLUMN IF NOT EXISTS enterprise text;
-- What a clawback or revocation reverses (a JSON list of decision ids; null: nothing, or recorded
-- before decisions named it).
ALTER TABLE {SCHEMA}.eligibility_decisions ADD COLUMN IF NOT EXISTS reverses jsonb;
CREATE TABLE IF NOT EXISTS {SCHEMA}.eligibility_employment (
    book text NOT NULL,
    enterprise text NOT NULL,
    worker text NOT NULL,
    PRIMARY KEY (book, enterprise, worker)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.eligibility_progress (
    book text PRIMARY KEY,
    last_seq bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.eligibility_pending_seqs (
    book text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (book, seq)
);
"""
_INSERT = f"""
INSERT INTO {SCHEMA}.eligibility_decisions (decision_id, book, seq, ordinal, after, kind, program,
    beneficiary, subject, ref, month, amount_fen, reason, explanation, rule_set, trace_id, recorded_at,
    enterprise, reverses)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, $16, $17, $18, $19::jsonb)
ON CONFLICT (decision_id) DO NOTHING
"""
_INSERT_EMPLOYMENT = f"""
INSERT INTO {SCHEMA}.eligibility_employment (book, enterprise, worker) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING
"""
_COLUMNS = (
    "after, kind, program, beneficiary, subject, ref, month, amount_fen, reason, explanation, rule_set, "
    "decision_id, trace_id, seq, reverses"
)


async def create_tables(pool: asyncpg.Pool) -> None:
    await pool.execute(DDL)


class DecisionsProjection:
    async def __call__(self, conn: Connection, batch: Batch) -> None:
        rows: list[tuple[Any, ...]] = []
        links: set[tuple[str, str, str]] = set()
        seqs: dict[str, list[int]] = defaultdict(list)
        for _, stored in batch:
            if not isinstance(stored, DecisionChain.FactProcessed):
                continue
            seqs[stored.book].append(stored.seq)
            enterprise, worker = _named(stored.fact, "enterprise"), _named(stored.fact, "worker")
            if stored.outcome == "accepted" and enterprise is not None and worker is not None:
                links.add((stored.book, enterprise, worker))
            for ordinal, d in enumerate(stored.decisions):
                explanation = d.get("explanation")
                explanation = json.dumps(explanation, ensure_ascii=False) if explanation else None
                reverses = d.get("reverses")
                rows.append((
                    d["decision_id"], stored.book, stored.seq, ordinal, d["after"], d["kind"], d["program"],
                    d["beneficiary"], d["subject"], d["ref"], d["month"], d["amount_fen"], d["reason"],
                    explanation, d["rule_set"], stored.trace_id, stored.timestamp, enterprise,
                    None if reverses is None else json.dumps(reverses),
                ))
        if rows:
            await conn.executemany(_INSERT, rows)
        if links:
            await conn.executemany(_INSERT_EMPLOYMENT, sorted(links))
        for book, processed in seqs.items():
            await _advance(conn, book, processed)


def _named(fact: Any, name: str) -> str | None:
    value = fact.get(name) if isinstance(fact, dict) else None
    return value if isinstance(value, str) else None


async def _advance(conn: Connection, book: str, processed: list[int]) -> None:
    """Move the book's watermark over every contiguous processed seq; park the rest."""
    await conn.execute(
        f"INSERT INTO {SCHEMA}.eligibility_progress (book, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
        book,
    )
    last = int(await conn.fetchval(
        f"SELECT last_seq FROM {SCHEMA}.eligibility_progress WHERE book = $1 FOR UPDATE", book
    ))
    parked = {int(r["seq"]) for r in await conn.fetch(
        f"SELECT seq FROM {SCHEMA}.eligibility_pending_seqs WHERE book = $1", book
    )}
    waiting = parked | {s for s in processed if s > last}
    while last + 1 in waiting:
        last += 1
        waiting.discard(last)
    await conn.execute(f"UPDATE {SCHEMA}.eligibility_progress SET last_seq = $2 WHERE book = $1", book, last)
    await conn.execute(
        f"DELETE FROM {SCHEMA}.eligibility_pending_seqs WHERE book = $1 AND seq <= $2", book, last
    )
    if newly_parked := sorted(waiting - parked):
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.eligibility_pending_seqs (book, seq) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            [(book, s) for s in newly_parked],
        )


def _decision(row: asyncpg.Record) -> dict[str, Any]:
    """A decision as scenarios/FORMAT.md prints it, plus its id, rule set, explanation, trace id and
    what it reverses."""
    common = {"rule_set": row["rule_set"], "decision_id": row["decision_id"], "trace_id": row["trace_id"]}
    if row["kind"] == "rejected":
        return {"after": row["after"], "kind": "rejected", "reason": row["reason"], **common}
    out = {name: row[name] for name in ("after", "kind", "program", "beneficiary", "subject", "ref", "month")}
    out["amount_fen"] = int(row["amount_fen"])
    out.update(common)
    if row["explanation"] is not None:
        out["explanation"] = json.loads(row["explanation"])
    if row["reverses"] is not None:
        out["reverses"] = json.loads(row["reverses"])
    return out


# A platform's decisions: those whose fact names its enterprise, those it is the beneficiary or subject
# of, and those about a worker it reported that come from a fact naming no enterprise (a contribution,
# a category): not the decisions on another enterprise's reports of the same worker.
_OWN = f"""
AND (d.enterprise = $4 OR d.beneficiary = $4 OR d.subject = $4
     OR (d.enterprise IS NULL AND EXISTS (
         SELECT 1 FROM {SCHEMA}.eligibility_employment e
         WHERE e.book = d.book AND e.enterprise = $4 AND e.worker IN (d.subject, d.beneficiary))))
"""


async def decisions(
    pool: asyncpg.Pool, book: str, after_seq: int = 0, limit: int = 10_000, *, enterprise: str | None = None,
    subject: str | None = None, decision_id: str | None = None, known_as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """A page of the book's decisions; with `enterprise`, only that platform's (`_OWN`); with `subject`,
    only those about it or paid to it; with `decision_id`, only that one; with `known_as_of`, only
    those recorded at or before then."""
    where = "WHERE d.book = $1 AND d.seq > $2"
    arguments: list[Any] = [book, after_seq, limit]
    if enterprise is not None:
        where += _OWN
        arguments.append(enterprise)
    if subject is not None:
        arguments.append(subject)
        where += f" AND (d.subject = ${len(arguments)} OR d.beneficiary = ${len(arguments)})"
    if decision_id is not None:
        arguments.append(decision_id)
        where += f" AND d.decision_id = ${len(arguments)}"
    if known_as_of is not None:
        arguments.append(known_as_of)
        where += f" AND d.recorded_at <= ${len(arguments)}"
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM {SCHEMA}.eligibility_decisions d {where} ORDER BY d.seq, d.ordinal LIMIT $3",
        *arguments,
    )
    return [_decision(r) for r in rows]


async def progress(pool: asyncpg.Pool, book: str) -> int:
    value = await pool.fetchval(f"SELECT last_seq FROM {SCHEMA}.eligibility_progress WHERE book = $1", book)
    return int(value or 0)
