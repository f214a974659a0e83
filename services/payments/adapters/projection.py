"""Payments' read side: one row per payment order or clawback, folded from the notification log."""

from __future__ import annotations

from typing import Any

import asyncpg

from contracts.outbox import Batch, Connection
from services.payments.adapters.relay import to_message

SCHEMA = "payments"
DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.payments_orders (
    order_id text PRIMARY KEY,
    book text NOT NULL,
    event text NOT NULL,
    decision_id text NOT NULL,
    program text,
    beneficiary text,
    subject text,
    ref text,
    month text,
    amount_fen bigint NOT NULL,
    rule_set text NOT NULL,
    trace_id text,
    recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_orders_by_book ON {SCHEMA}.payments_orders (book, position);
"""
_FIELDS = ("order_id", "book", "event", "decision_id", "program", "beneficiary", "subject", "ref", "month",
           "amount_fen", "rule_set", "trace_id", "recorded_at")
_INSERT = (
    f"INSERT INTO {SCHEMA}.payments_orders ({', '.join(_FIELDS)}, position) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_FIELDS) + 2))}) ON CONFLICT (order_id) DO NOTHING"
)


async def create_tables(pool: asyncpg.Pool) -> None:
    await pool.execute(DDL)


class OrdersProjection:
    async def __call__(self, conn: Connection, batch: Batch) -> None:
        rows = []
        for notification_id, stored in batch:
            if (message := to_message(stored)) is not None:
                body = message.body.model_dump()
                rows.append((*(body[name] for name in _FIELDS), notification_id))
        if rows:
            await conn.executemany(_INSERT, rows)


async def orders(pool: asyncpg.Pool, book: str, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {', '.join(_FIELDS)} FROM {SCHEMA}.payments_orders "
        "WHERE book = $1 ORDER BY position LIMIT $2",
        book, limit,
    )
    return [{**dict(r), "recorded_at": r["recorded_at"].isoformat()} for r in rows]
