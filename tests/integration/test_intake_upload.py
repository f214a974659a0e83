"""`flexledger submit FILE` against the real intake (a process on the real database and broker): the
command's summary, its file of rejected rows and intake's records agree, and sending the file again
records nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from intake_support import (
    E1,
    book,
    enterprise_code,
    enterprise_registered,
    log_position,
    monthly_report,
    recorded,
    worker_id,
    worker_registered,
)

from services.runtime.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.integration

SUMMARY = re.compile(r"(\d+) of (\d+) rows: (\d+) accepted, (\d+) duplicates, (\d+) rejected")


def _submit(settings: Settings, *args: str) -> tuple[int, tuple[int, ...], str]:
    """`flexledger submit ...` as a user runs it, with the stack's settings and no --key (the
    bootstrap operator key); exit status, (rows, total, accepted, duplicates, rejected), output."""
    env = {**os.environ, **settings.as_env(), "COLUMNS": "200"}
    env.pop("FLEXLEDGER_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "flexledger", "submit", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    found = SUMMARY.search(output.replace("\n", " "))
    assert found, output
    return done.returncode, tuple(int(n) for n in found.groups()), output


def _facts(workers: int) -> list[Any]:
    facts: list[Any] = [enterprise_registered(f"e{k}", enterprise_code(k)) for k in range(1, 4)]
    facts += [worker_registered(f"w{w}", worker_id(w)) for w in range(workers)]
    for month in ("2021-06", "2021-07"):
        at = "2021-08-05T10:00:00+08:00"
        facts += [
            {**monthly_report(f"r{w}-{month}", month, enterprise_code(w % 3 + 1), worker_id(w)), "at": at}
            for w in range(workers)
        ]
    return facts


def test_a_file_uploaded_with_submit_matches_intakes_records(intake: Settings, tmp_path: Path) -> None:
    name = book()
    since = log_position(intake)
    facts = _facts(100)  # 303 valid facts
    invalid = [
        {**monthly_report("bad-month", "2021-13"), "enterprise": E1},
        monthly_report("unregistered", worker=worker_id(999)),
        facts[5],  # an identical resubmission inside the file: a duplicate
        {**facts[6], "name": "changed"},  # the id of facts[6] with other content: a conflict
    ]
    lines = [json.dumps(f, ensure_ascii=False) for f in facts + invalid] + [
        "{not json",
        '{"id": "x", "n": 1e999}',
    ]
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejected_out = tmp_path / "rejected.jsonl"

    code, counts, output = _submit(
        intake, str(path), "--book", name, "--chunk-rows", "250", "--rejected-out", str(rejected_out)
    )
    assert code == 1, output  # some rows rejected
    rows, total, accepted, duplicates, rejected = counts
    assert (rows, total, accepted, duplicates, rejected) == (309, 309, 303, 1, 5), output

    stored = recorded(intake, name, since)
    assert sum(e.outcome == "accepted" for e in stored if hasattr(e, "outcome")) == accepted
    # Recorded: every accepted row, and the rejections of readable facts (not the unreadable line).
    assert [e.seq for e in stored] == list(range(1, accepted + 4 + 1))
    written = [json.loads(line) for line in rejected_out.read_text(encoding="utf-8").splitlines()]
    assert len(written) == rejected and {w["status"] for w in written} == {400, 409}
    assert all(w["reason"] for w in written)

    code, counts, output = _submit(intake, str(path), "--book", name, "--chunk-rows", "1000")
    assert code == 1 and counts[2] == 0 and counts[3] == 303 + 4, output  # every recorded fact: a duplicate
    # nothing is recorded again, not even the conflicting reuse: the same conflict again is answered
    # 409 without another ledger event (issue 13)
    assert len(recorded(intake, name, since)) == len(stored)


def test_a_csv_file_of_monthly_reports(intake: Settings, tmp_path: Path) -> None:
    name = book()
    since = log_position(intake)
    setup = tmp_path / "setup.jsonl"
    setup.write_text(
        "\n".join(json.dumps(f) for f in (enterprise_registered("e1"), worker_registered("w1"))) + "\n",
        encoding="utf-8",
    )
    assert _submit(intake, str(setup), "--book", name)[0] == 0
    rows = [
        f"c{m},2021-12-05T10:00:00+08:00,{E1},{worker_id(1)},2021-{m:02d},200000,160,320213"
        for m in range(6, 12)
    ]
    path = tmp_path / "reports.csv"
    path.write_text(
        "id,at,enterprise,worker,month,income_fen,hours,district\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    code, counts, output = _submit(intake, str(path), "--book", name, "--chunk-rows", "4")
    assert code == 0 and counts == (6, 6, 6, 0, 0), output
    assert len(recorded(intake, name, since)) == 8
