"""`flexledger submit` against StandInIntake, an in-process stand-in for intake's bulk endpoint
(httpx.MockTransport; not the real service)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from rich.console import Console
from stand_in_intake import (
    E1,
    E2,
    W1,
    W2,
    StandInIntake,
    enterprise_registered,
    monthly_report,
    worker_registered,
)
from typer.testing import CliRunner

from flexledger import submit as client
from services.intake.domain.bulk import CSV_COLUMNS
from services.intake.domain.limits import Limits
from services.intake.domain.submission import FactIds

ROOT = Path(__file__).resolve().parents[3]
VECTOR = ROOT / "tests" / "vectors" / "01-employment-service-difficulty.yaml"


class Run:
    """One run_submit against a stand-in, with its console output and the sleeps it asked for."""

    def __init__(self, intake: StandInIntake, file: Path, key: str, **options: Any) -> None:
        self.console = Console(record=True, width=200, force_terminal=False)
        self.sleeps: list[float] = []
        ticks = iter(range(0, 10_000, 2))
        self.code = client.run_submit(
            file, key=key, url="http://intake.test", console=self.console, transport=intake.transport(),
            sleep=self.sleeps.append, clock=lambda: float(next(ticks)), **options,
        )
        self.output = self.console.export_text()


def _jsonl(path: Path, *facts: object, blank_lines: bool = False) -> Path:
    separator = "\n\n" if blank_lines else "\n"
    path.write_text(separator.join(json.dumps(f, ensure_ascii=False) for f in facts) + "\n", encoding="utf-8")
    return path


def _rejected(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_jsonl_file_goes_up_in_chunks_with_key_book_and_content_type(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("platform", E1)
    facts = [enterprise_registered("f1"), worker_registered("f2"),
             *(monthly_report(f"f{i}", f"2021-0{i - 2}") for i in range(3, 6))]
    run = Run(intake, _jsonl(tmp_path / "facts.jsonl", *facts), key.token, book="sandbox-1", chunk_rows=2)
    assert run.code == client.EXIT_OK, run.output
    assert len(intake.requests) == 3
    request = intake.requests[0]
    assert request.url.path == "/v1/facts/bulk"
    assert request.headers["Authorization"] == f"Bearer {key.token}"
    assert request.headers["X-Flexledger-Book"] == "sandbox-1"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    fact_ids = intake.books["sandbox-1"].fact_ids
    assert set(intake.books) == {"sandbox-1"} and isinstance(fact_ids, FactIds) and len(fact_ids.digests) == 5
    assert "5 of 5 rows: 5 accepted, 0 duplicates, 0 rejected in 2.0 s (2 rows/s)" in run.output
    assert key.secret not in run.output


def test_sending_the_file_again_gives_duplicates(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("platform", E1)
    file = _jsonl(tmp_path / "facts.jsonl", enterprise_registered("f1"), worker_registered("f2"))
    assert Run(intake, file, key.token).code == client.EXIT_OK
    again = Run(intake, file, key.token)
    assert again.code == client.EXIT_OK and "0 accepted, 2 duplicates, 0 rejected" in again.output


def test_rejected_rows_are_written_with_their_file_row_line_id_and_reason(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("platform", E1)
    path = tmp_path / "facts.jsonl"
    lines = [
        json.dumps(enterprise_registered("f1")),
        json.dumps(worker_registered("f2")),
        "{this is not json",
        json.dumps(monthly_report("f4", enterprise=E2)),  # another platform's report: 403
        json.dumps(monthly_report("f5", worker=W2)),  # worker not registered: 400
        json.dumps(monthly_report("f1")),  # id f1 reused with other content: 409
        json.dumps(monthly_report("f7")),
    ]
    path.write_text("\n\n".join(lines) + "\n", encoding="utf-8")  # blank lines: line = 2 * row - 1
    out = tmp_path / "rejected.jsonl"
    run = Run(intake, path, key.token, rejected_out=out, chunk_rows=2)
    assert run.code == client.EXIT_REJECTED
    assert "7 of 7 rows: 3 accepted, 0 duplicates, 4 rejected (of which 1 id conflicts)" in run.output
    rejected = _rejected(out)
    assert [(r["row"], r["line"], r["fact_id"], r["outcome"], r["status"]) for r in rejected] == [
        (3, 5, None, "rejected", 400),
        (4, 7, "f4", "rejected", 403),
        (5, 9, "f5", "rejected", 400),
        (6, 11, "f1", "conflict", 409),
    ]
    assert "not valid JSON" in rejected[0]["reason"]
    assert "a platform may submit facts only for itself" in rejected[1]["reason"]
    assert "is not registered" in rejected[2]["reason"] and W2 not in rejected[2]["reason"]
    assert "row 3 (line 5)" in run.output and f"all in {out}" not in run.output


def test_a_csv_file_sends_its_header_with_every_chunk(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("operator")
    setup = tmp_path / "setup.jsonl"
    _jsonl(setup, enterprise_registered("e1"), worker_registered("w1"))
    assert Run(intake, setup, key.token).code == client.EXIT_OK
    header = ",".join(CSV_COLUMNS)
    rows = [f"r{m},2021-12-05T10:00:00+08:00,{E1},{W1},2021-{m:02d},210000,168,320213" for m in range(1, 6)]
    rows[2] = rows[2].replace(",210000,", ",210000.00,")
    csv_file = tmp_path / "reports.csv"
    csv_file.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "rejected.jsonl"
    run = Run(intake, csv_file, key.token, rejected_out=out, chunk_rows=2)
    assert run.code == client.EXIT_REJECTED
    bodies = [r.content.decode() for r in intake.requests[1:]]
    assert len(bodies) == 3 and all(body.startswith(header + "\n") for body in bodies)
    assert all(r.headers["Content-Type"] == "text/csv" for r in intake.requests[1:])
    assert "4 accepted, 0 duplicates, 1 rejected" in run.output
    [rejected] = _rejected(out)
    assert (rejected["row"], rejected["line"], rejected["fact_id"]) == (3, 4, "r3")
    assert rejected["reason"].startswith("income_fen '210000.00' is not a whole number")


def test_a_scenario_file_sends_its_facts(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("operator")
    run = Run(intake, VECTOR, key.token, chunk_rows=5)
    assert run.code == client.EXIT_OK, run.output
    assert "13 of 13 rows: 13 accepted" in run.output
    first = json.loads(intake.requests[0].content.decode().splitlines()[0])
    assert first["at"] == "2021-06-01T09:00:00+08:00" and first["name"] == "锡城到家服务平台"


def test_a_scenario_fact_that_cannot_be_json_is_rejected_locally(tmp_path: Path) -> None:
    intake = StandInIntake()
    key = intake.issue("operator")
    scenario = tmp_path / "s.yaml"
    scenario.write_text("facts:\n  - {id: f1, type: monthly_report, hours: .nan}\n  - {id: f2, type: nope}\n",
                        encoding="utf-8")
    out = tmp_path / "rejected.jsonl"
    run = Run(intake, scenario, key.token, rejected_out=out)
    assert run.code == client.EXIT_REJECTED
    rejected = _rejected(out)
    assert (rejected[0]["row"], rejected[0]["status"]) == (1, None)
    assert "cannot be sent as JSON" in rejected[0]["reason"]
    assert rejected[1]["row"] == 2 and rejected[1]["status"] == 400
    assert len(intake.requests[0].content.decode().splitlines()) == 1


def test_429_waits_as_told_and_503_is_retried(tmp_path: Path) -> None:
    intake = StandInIntake(refuse_next=[429, 503])
    key = intake.issue("platform", E1)
    run = Run(intake, _jsonl(tmp_path / "f.jsonl", enterprise_registered("f1")), key.token)
    assert run.code == client.EXIT_OK and "1 accepted" in run.output
    assert run.sleeps == [2.0, 1.0]
    assert len(intake.requests) == 3


def test_the_stand_in_rate_limit_is_honoured_through_retry_after(tmp_path: Path) -> None:
    intake = StandInIntake(limits=Limits(max_bulk_rows=50, rate_burst_facts=50, rate_facts_per_s=0.5))
    key = intake.issue("platform", E1)
    file = _jsonl(tmp_path / "f.jsonl", *(enterprise_registered(f"f{i}") for i in range(60)))
    run = Run(intake, file, key.token, chunk_rows=30)
    assert run.code == client.EXIT_SERVER  # the stand-in's clock never moves: the bucket stays empty
    assert run.sleeps == [20.0] * client.MAX_RATE_LIMIT_WAITS
    assert "intake answered 429" in run.output and "30 of 60 rows" in run.output


def test_a_wrong_key_stops_the_upload_as_refused(tmp_path: Path) -> None:
    intake = StandInIntake()
    intake.issue("platform", E1)
    run = Run(intake, _jsonl(tmp_path / "f.jsonl", enterprise_registered("f1")), "flk_nope")
    assert run.code == client.EXIT_SERVER
    assert "intake refused the key (401): a valid API key is required" in run.output


def test_413_suggests_smaller_chunks(tmp_path: Path) -> None:
    intake = StandInIntake(limits=Limits(max_bulk_rows=3, rate_burst_facts=3))
    key = intake.issue("platform", E1)
    run = Run(intake, _jsonl(tmp_path / "f.jsonl", *(enterprise_registered(f"f{i}") for i in range(4))),
              key.token, chunk_rows=4)
    assert run.code == client.EXIT_SERVER and "try a smaller --chunk-rows" in run.output


def test_a_dropped_connection_is_retried_then_reported(tmp_path: Path) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    console = Console(record=True, width=200)
    sleeps: list[float] = []
    code = client.run_submit(_jsonl(tmp_path / "f.jsonl", enterprise_registered("f1")), key="k",
                             url="http://intake.test", console=console,
                             transport=httpx.MockTransport(unreachable), sleep=sleeps.append)
    assert code == client.EXIT_UNREACHABLE and sleeps == [1.0, 2.0, 4.0]
    assert "cannot reach intake at http://intake.test" in console.export_text()


def test_a_response_without_results_is_a_server_error(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"accepted": 1}))
    console = Console(record=True, width=200)
    code = client.run_submit(_jsonl(tmp_path / "f.jsonl", enterprise_registered("f1")), key="k",
                             url="http://intake.test", console=console, transport=transport)
    assert code == client.EXIT_SERVER and "without a list of results" in console.export_text()


def test_rows_the_server_does_not_answer_count_as_rejected(tmp_path: Path) -> None:
    answer = {"results": [{"row": 2, "fact_id": "f2", "outcome": "accepted", "status": 201, "reason": None},
                          {"row": 99, "outcome": "accepted"}, "junk"]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    out = tmp_path / "rejected.jsonl"
    console = Console(record=True, width=200)
    file = _jsonl(tmp_path / "f.jsonl", enterprise_registered("f1"), enterprise_registered("f2"))
    code = client.run_submit(file, key="k", url="http://intake.test", console=console, transport=transport,
                             rejected_out=out)
    assert code == client.EXIT_REJECTED
    rejected = [(r["row"], r["reason"]) for r in _rejected(out)]
    assert rejected == [(1, "intake returned no result for this row")]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("facts.txt", "x", "cannot tell the format"),
    ("missing.jsonl", None, "No such file"),
    ("empty.csv", "", "the CSV file is empty"),
    ("bad.yaml", "facts: 3\n", "a scenario is a mapping"),
])
def test_file_problems_exit_2_before_any_request(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    intake = StandInIntake()
    run = Run(intake, path, "k")
    assert run.code == client.EXIT_FILE and message in run.output and not intake.requests


@pytest.mark.parametrize("url", ["ftp://intake.test", "http://", "not a url at all", "http://[::1"])
def test_a_bad_url_exits_2(tmp_path: Path, url: str) -> None:
    console = Console(record=True, width=200)
    code = client.run_submit(_jsonl(tmp_path / "f.jsonl", {}), key="k", url=url, console=console)
    assert code == client.EXIT_FILE and "intake URL" in console.export_text()


def test_server_reasons_are_printed_as_text_not_markup(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(400, json={"reason": "[bold]x[/bold] y"}))
    console = Console(record=True, width=200)
    code = client.run_submit(_jsonl(tmp_path / "f.jsonl", {}), key="k", url="http://t", console=console,
                             transport=transport)
    assert code == client.EXIT_SERVER and "intake answered 400: [bold]x[/bold] y" in console.export_text()


def test_an_unwritable_rejected_out_exits_2(tmp_path: Path) -> None:
    intake = StandInIntake()
    out = tmp_path / "no" / "such" / "dir.jsonl"
    run = Run(intake, _jsonl(tmp_path / "f.jsonl", {}), "k", rejected_out=out)
    assert run.code == client.EXIT_FILE and "--rejected-out" in run.output


def test_chunks_respect_rows_and_bytes() -> None:
    entries = [client.Entry(i, i, b"x" * 10) for i in range(1, 8)]
    assert [len(c) for c in client.chunks(entries, 3)] == [3, 3, 1]
    assert [len(c) for c in client.chunks(entries, 100, max_chunk_bytes=25)] == [2, 2, 2, 1]
    with_problem = [*entries[:2], client.Entry(3, 3, None, "bad"), *entries[3:]]
    assert sum(len(c) for c in client.chunks(with_problem, 100)) == 6


def test_default_url_uses_the_intake_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLEDGER_INTAKE_PORT", "28081")
    assert client.default_url() == "http://127.0.0.1:28081"


def test_the_command_line_reads_its_options(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("submit")(client.submit)
    app.command("noop")(lambda: None)
    arguments = ["submit", str(tmp_path / "nope.jsonl"), "--key", "k", "--chunk-rows", "0"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2 and "chunk-rows" in result.output
    result = CliRunner().invoke(app, ["submit", str(tmp_path / "nope.txt")], env={"FLEXLEDGER_API_KEY": "k"})
    assert result.exit_code == client.EXIT_FILE and "cannot tell the format" in result.output


def test_flexledger_submit_is_registered() -> None:
    result = subprocess.run([sys.executable, "-c", "import sys; from flexledger.cli import main; "
                             "sys.argv = ['flexledger', 'submit', '--help']; main()"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 0 and "--rejected-out" in result.stdout and "--chunk-rows" in result.stdout
