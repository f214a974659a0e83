"""Bytes per stored event, per service: what the province's databases grow by in a year
(docs/design/scale.md).

For each service schema: its events (rows of `<schema>_events`), the event table's size on disk with its
indexes and TOAST (`pg_total_relation_size`), and every other table of the schema (tracking, snapshots,
read side, followers' positions); bytes per event = the schema's whole size / its events. The facts
recorded are intake's `Recorded` events (one per accepted or rejected submission).

    python bench/db_sizes.py                          # against the stack of `flexledger dev env`
    python bench/e2e_bench.py --facts 20000 --workers 4000 --skip-latency --skip-raw --skip-audit --keep
    FLEXLEDGER_PG_PORT=35432 python bench/db_sizes.py # ... then against the kept bench stack
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from services.runtime.settings import Settings  # noqa: E402

SCHEMAS = ("intake", "eligibility", "payments")

SIZES = """
SELECT c.relname, pg_total_relation_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY pg_total_relation_size(c.oid) DESC
"""


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def main() -> None:
    settings = Settings.from_env()
    with psycopg.connect(settings.pg_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("ANALYZE")  # reltuples of the tables that are not counted below
        for schema in SCHEMAS:
            rows = conn.execute(SIZES, (schema,)).fetchall()
            if not rows:
                print(f"{schema}: no tables")
                continue
            events_table = f"{schema}_events"
            events = conn.execute(f'SELECT count(*) FROM "{schema}"."{events_table}"').fetchone()
            count = int(events[0]) if events else 0
            total = sum(int(size) for _, size, _ in rows)
            per_event = f"{total / count:,.0f} bytes per event" if count else "no events"
            print(f"{schema}: {count:,} events, {_mb(total)} in all, {per_event}")
            for name, size, tuples in rows:
                print(f"  {name:<40} {_mb(int(size)):>12}  ~{max(int(tuples), 0):,} rows")


if __name__ == "__main__":
    main()
