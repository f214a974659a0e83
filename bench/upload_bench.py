"""Bulk upload benchmark (issue 6): a 100,000-row JSON Lines file of valid facts through the running
intake with `flexledger submit`'s client, with its progress bar; prints rows/s and checks the counts.

    flexledger dev up                        # or any running stack (FLEXLEDGER_* settings)
    .venv/bin/python bench/upload_bench.py [--rows 100000] [--chunk-rows 5000] [--key flk_...]

The file: enterprises (platforms), workers, then monthly reports, month by month (each worker reported
by one platform), all valid, in a fresh book `bench-<hex>`. The key defaults to the bootstrap operator
key (the platform keys would each cover one enterprise). After the upload the benchmark reads intake's
progress for the book: its last seq must equal the accepted count (every row is a new valid fact), and
the accepted count must equal the number of rows. Exit status 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.identifiers import ric_check_character, uscc_check_character
from flexledger import submit
from services.runtime.settings import Settings

ENTERPRISES = 10
WORKERS_PER_ROWS = 10  # one worker for every this many rows: ~9 monthly reports each
FIRST_MONTH = (2021, 6)


def enterprise_code(index: int) -> str:
    first17 = f"91320213MA{index:07d}"
    return first17 + uscc_check_character(first17)


def worker_id(index: int) -> str:
    """Unique valid resident identity numbers: (birth date, sequence) is injective in `index`."""
    birth = date(1970, 1, 1) + timedelta(days=index // 1000)
    first17 = f"320213{birth:%Y%m%d}{index % 1000:03d}"
    return first17 + ric_check_character(first17)


def _month(index: int) -> tuple[str, str]:
    """(YYYY-MM of the report, `at` in the month after it)."""
    year, month = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index, 12)
    next_year, next_month = divmod(year * 12 + month + 1, 12)
    return f"{year:04d}-{month + 1:02d}", f"{next_year:04d}-{next_month + 1:02d}-05T10:00:00+08:00"


def facts(rows: int) -> Iterator[dict[str, Any]]:
    """`rows` valid facts: enterprises, workers, then monthly reports month by month."""
    workers = max(1, rows // WORKERS_PER_ROWS)
    enterprises = min(ENTERPRISES, rows)
    made = 0
    for e in range(enterprises):
        yield {"id": f"e{e}", "type": "enterprise_registered", "at": "2021-05-01T09:00:00+08:00",
               "enterprise": enterprise_code(e), "name": f"平台{e}"}
        made += 1
    for w in range(min(workers, rows - made)):
        yield {"id": f"w{w}", "type": "worker_registered", "at": "2021-05-02T09:00:00+08:00",
               "worker": worker_id(w), "name": f"工人{w}", "residence": "320213",
               "residence_since": "2015-01-01"}
        made += 1
    month = 0
    while made < rows:
        name, at = _month(month)
        for w in range(min(workers, rows - made)):
            yield {"id": f"r{w}-{name}", "type": "monthly_report", "at": at,
                   "enterprise": enterprise_code(w % enterprises), "worker": worker_id(w), "month": name,
                   "income_fen": 180000 + (w * 7919 + month * 104729) % 200000, "hours": 120 + w % 80,
                   "district": "320213"}
            made += 1
        month += 1


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for fact in facts(rows):
            out.write(json.dumps(fact, ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk-rows", type=int, default=5_000)
    parser.add_argument("--key", default=None, help="API key (default: the bootstrap operator key)")
    parser.add_argument("--book", default=None, help="default: a fresh bench-<hex> book")
    args = parser.parse_args()
    settings = Settings.from_env()
    url = f"http://127.0.0.1:{settings.intake_port}"
    key = args.key or submit.operator_key(settings)
    book = args.book or f"bench-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "facts.jsonl"
        started = time.monotonic()
        write_file(path, args.rows)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.monotonic() - started:.1f} s; uploading to {url}, book {book}, "
              f"{args.chunk_rows:,} rows per request")
        started = time.monotonic()
        summary = submit.Summary()
        code = submit.run_submit(path, key=key, url=url, book=book, chunk_rows=args.chunk_rows,
                                 summary=summary)
        elapsed = time.monotonic() - started
    last_seq = int(httpx.get(f"{url}/v1/books/{book}/progress", headers={"Authorization": f"Bearer {key}"},
                             timeout=30).json()["last_seq"])
    rate = args.rows / elapsed
    print(f"upload: {args.rows:,} rows in {elapsed:.1f} s = {rate:,.0f} rows/s (client exit status {code})")
    print(f"accepted {summary.accepted:,}, duplicates {summary.duplicates:,}, rejected {summary.rejected:,}; "
          f"intake's progress for {book}: last seq {last_seq:,}")
    if code != submit.EXIT_OK or not summary.accepted == last_seq == args.rows:
        print(f"MISMATCH: expected {args.rows:,} accepted and last seq {args.rows:,}", file=sys.stderr)
        return 1
    print("counts match: accepted == intake's last seq == rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
