"""`flexledger demo`: push a realistic month of facts through the running stack and show the result.

Three years of history for a small city (flexledger/demo_data.py) go in first, then the month of June
2024 as platforms and agencies would send it. The demo then waits until the pipeline has decided on
everything and prints what happened in that month, per-programme totals, the payments side, and the
result of `audit verify`, and ends by writing one decision's evidence bundle and checking it with the
standalone verifier. Fact ids are fixed, so running it again changes nothing (all duplicates).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import httpx
import typer
from rich.console import Console
from rich.table import Table

from contracts.decisions import MoneyProgramme
from contracts.identifiers import mask
from flexledger import output
from flexledger.demo_data import MONTH, DemoCity
from flexledger.exits import Exit, fail
from flexledger.pipeline import PipelineError, _get, _url, _wait_for
from services.runtime.settings import Settings

console = Console(width=150)  # wide enough for the payments table, also when piped
DRAIN_TIMEOUT_S = 600.0
PROGRAMMES = get_args(MoneyProgramme)  # every programme with a budget
# Lines without a month fall in the fiscal year their decision was recorded in (docs/design/payments.md),
# which for the demo is this calendar year.
FISCAL_YEARS = tuple(range(2021, datetime.now(UTC).year + 1))
# Finance's appropriation per programme and year for the demo city; the talent budget starts empty so
# that its order waits as awaiting-budget until the demo raises it.
DEMO_APPROPRIATION_FEN = 50_000_000_00
SETTLE_WAIT_S = 15.0


def _operator_key(settings: Settings) -> str:
    from flexledger.submit import operator_key

    return operator_key(settings)


def _write_jsonl(path: Path, facts: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in facts), encoding="utf-8")
    return path


def _upload(path: Path, key: str, settings: Settings, book: str) -> None:
    from flexledger.submit import run_submit

    run_submit(path, key=key, url=_url(settings.intake_port), book=book, console=console)


def _money_table(title: str, decisions: list[dict[str, Any]]) -> Table:
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for d in decisions:
        entry = counts[(d.get("program") or "-", d["kind"])]
        entry[0] += 1
        entry[1] += d.get("amount_fen") or 0
    table = Table(title=title)
    for column in ("programme", "decision", "count", "amount (CNY)"):
        table.add_column(column, justify="right" if column in ("count", "amount (CNY)") else "left")
    for (program, kind), (count, fen) in sorted(counts.items()):
        table.add_row(program, kind, str(count), f"{fen / 100:,.2f}" if fen else "")
    return table


def _totals_table(decisions: list[dict[str, Any]]) -> Table:
    net: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in decisions:
        if d["kind"] == "grant":
            net[d["program"]][0] += d["amount_fen"]
        elif d["kind"] == "clawback":
            net[d["program"]][1] += d["amount_fen"]
    table = Table(title="Entitlement per programme since 2021-06 (CNY)")
    for column in ("programme", "granted", "clawed back", "net"):
        table.add_column(column, justify="left" if column == "programme" else "right")
    for program, (granted, clawed) in sorted(net.items()):
        table.add_row(
            program, f"{granted / 100:,.2f}", f"{clawed / 100:,.2f}", f"{(granted - clawed) / 100:,.2f}"
        )
    return table


def _show_examples(decisions: list[dict[str, Any]]) -> None:
    shown: set[str] = set()
    for d in decisions:
        if (
            d["kind"] in shown
            or d["kind"] not in ("grant", "clawback", "extension")
            or not d.get("explanation")
        ):
            continue
        shown.add(d["kind"])
        who = mask(d.get("beneficiary"))
        console.print(
            f"[bold]{d['kind']}[/bold] after fact {d['after']} to {who}: {d['explanation']['summary']}",
            highlight=False,
        )
        console.print(f"   {d['explanation']['reason_zh']}", highlight=False)


def _appropriate(
    client: httpx.Client, settings: Settings, book: str, program: str, year: int, fen: int
) -> str:
    response = client.post(
        f"{_url(settings.payments_port)}/v1/books/{book}/appropriations",
        json={
            "program": program,
            "fiscal_year": year,
            "amount_fen": fen,
            "reference": f"demo {program} {year}",
        },
    )
    return f"{response.status_code} {response.json().get('outcome')}"


def _payments(client: httpx.Client, settings: Settings, book: str) -> None:
    from flexledger.payments_cli import totals_table

    base = f"{_url(settings.payments_port)}/v1/books/{book}"
    output.print_table(totals_table(_get(client, f"{base}/totals", "payments")))
    balance = _get(client, f"{base}/trial-balance", "payments")
    console.print(f"trial balance: {balance['trial_balance_fen']} fen (balanced: {balance['balanced']})")


def demo(
    book: str = typer.Option("main", help="the book to write to"),
    workers: int = typer.Option(40, min=3, max=5000, help="workers in the demo city"),
) -> None:
    """Push three years of history and then one realistic month through the running stack."""
    settings = Settings.from_env()
    work = Path(settings.state_dir) / "demo"
    # Every service wants a key: the demo acts as the operator (docs/design/http-auth.md).
    authorization = {"Authorization": f"Bearer {_operator_key(settings)}"}
    with httpx.Client(timeout=30.0, headers=authorization) as client:
        _check_stack(client, settings)
        started = time.monotonic()
        console.rule("Finance appropriates the budgets (talent starts empty)")
        for program in PROGRAMMES:
            for year in FISCAL_YEARS:
                amount_fen = 0 if program == "talent" else DEMO_APPROPRIATION_FEN
                _appropriate(client, settings, book, program, year, amount_fen)
        # a sandbox book's batches are on the sandbox topics, settled by the sandbox bank
        bank, bank_log = _start_bank(work, sandbox=book not in settings.production_book_set)
        before, last = _push(client, settings, book, DemoCity(workers=workers), work)
        console.print(f"pipeline drained: {last} facts decided in {time.monotonic() - started:.1f}s")
        traced = _show_decisions(client, settings, book, before)
        console.rule("Payments: talent budget raised, disbursed to the bank simulator")
        raised = _appropriate(client, settings, book, "talent", FISCAL_YEARS[-1], DEMO_APPROPRIATION_FEN)
        console.print(f"talent {FISCAL_YEARS[-1]} appropriation raised: {raised}")
        bank.wait(timeout=DRAIN_TIMEOUT_S)
        console.print(f"{bank_log.read_text().strip().splitlines()[-1]} (log: {bank_log})")
        _payments(client, settings, book)
    console.rule("audit verify")
    result = subprocess.run(
        [sys.executable, "-m", "flexledger", "audit", "verify", "--book", book], check=False
    )
    console.print(f"audit verify exited {result.returncode}")
    _show_trace(settings, traced)
    if traced is not None:
        _evidence(settings, traced["decision_id"], work)


def _evidence(settings: Settings, decision_id: str, work: Path) -> None:
    """One decision's evidence bundle, once a signed tree head covers it (the next checkpoint), checked
    by the standalone verifier as an outside party would: a file and the ledger's public key."""
    from flexledger.audit import standalone_verify
    from flexledger.audit.checkpoints import own_public_key

    console.rule("Evidence bundle")
    bundle = work / f"evidence-{decision_id}.json"
    command = [sys.executable, "-m", "flexledger", "audit", "evidence", decision_id, "--out", str(bundle)]
    deadline = time.monotonic() + settings.checkpoint_interval_s + DRAIN_TIMEOUT_S / 20
    while True:
        written = subprocess.run(command, capture_output=True, text=True, check=False)
        if written.returncode == 0 or time.monotonic() > deadline or "tree head" not in written.stderr:
            break
        time.sleep(2.0)  # waiting for the checkpoint that covers the decision
    console.print((written.stdout + written.stderr).strip(), highlight=False)
    if written.returncode != 0:
        return
    verifier = Path(standalone_verify.__file__)
    checked = subprocess.run([sys.executable, "-I", str(verifier), str(bundle), "--public-key",
                              own_public_key(settings)], capture_output=True, text=True, check=False)
    console.print(f"$ python {verifier} {bundle} --public-key …", highlight=False, soft_wrap=True)
    console.print(checked.stdout.strip(), highlight=False)
    console.print(f"standalone verifier exited {checked.returncode}")


def _check_stack(client: httpx.Client, settings: Settings) -> None:
    try:
        for name, port in (("intake", settings.intake_port), ("eligibility", settings.eligibility_port)):
            _get(client, f"{_url(port)}/health", name)
    except PipelineError as exc:
        fail(f"{exc}\nstart the stack first: flexledger dev up", Exit.UNREACHABLE)


def _start_bank(work: Path, *, sandbox: bool) -> tuple[subprocess.Popen[bytes], Path]:
    """The Finance Bureau's bank, settling disbursement batches as they come (as `finance` on Kafka)."""
    bank_log = work / "bank-simulator.log"
    bank_log.parent.mkdir(parents=True, exist_ok=True)
    bank = subprocess.Popen(
        [sys.executable, "-m", "flexledger", "payments", "bank-simulator", "--return-suffix", "7",
         "--idle-exit", str(SETTLE_WAIT_S), *(["--sandbox"] if sandbox else [])],
        stdout=bank_log.open("w"), stderr=subprocess.STDOUT,
    )
    return bank, bank_log


def _push(client: httpx.Client, settings: Settings, book: str, city: DemoCity, work: Path) -> tuple[int, int]:
    """Upload the history, then the month, and wait until eligibility decided all of it; the book's
    last seq before the month, and after it."""
    key = _operator_key(settings)
    progress = f"{_url(settings.intake_port)}/v1/books/{book}/progress"
    console.rule(f"History 2021-06 .. 2024-05: {len(city.workers)} workers, 3 platforms")
    _upload(_write_jsonl(work / "history.jsonl", list(city.history())), key, settings, book)
    before = int(_get(client, progress, "intake")["last_seq"])
    console.rule(f"The month {MONTH}: reports, contributions, corrections, approvals")
    _upload(_write_jsonl(work / f"{MONTH}.jsonl", list(city.this_month())), key, settings, book)
    last = int(_get(client, progress, "intake")["last_seq"])
    _wait_for(client, _url(settings.eligibility_port), book, last, DRAIN_TIMEOUT_S, progress=True)
    return before, last


def _show_decisions(
    client: httpx.Client, settings: Settings, book: str, before: int
) -> dict[str, Any] | None:
    """What the month's facts caused, examples, and the totals of the whole book; the decision whose
    trace the demo shows at the end (the month's last grant, else the book's)."""
    decisions = f"{_url(settings.eligibility_port)}/v1/books/{book}/decisions"
    everything = _get(client, decisions, "eligibility")["decisions"]
    month = _get(client, f"{decisions}?after_seq={before}", "eligibility")["decisions"]
    if not month:
        console.print(f"the facts of {MONTH} were already in book {book}: nothing new was decided")
    output.print_table(_money_table(f"Decisions caused by the facts of {MONTH}", month))
    _show_examples(month)
    output.print_table(_totals_table(everything))
    grants = [d for d in month or everything if d["kind"] == "grant" and d.get("trace_id")]
    return grants[-1] if grants else None


def _show_trace(settings: Settings, decision: dict[str, Any] | None) -> None:
    """Where to see one fact's way through the three services: Zipkin's page and `flexledger trace`.
    The demo sends facts in bulk, so the fact's trace is its bulk request's (flexledger/trace.py)."""
    from flexledger.devstack import zipkin

    console.rule("Traces")
    if zipkin.zipkin_pid(settings) is None:
        console.print("Zipkin is not running, so no trace was kept: `flexledger dev up` starts it")
        return
    if decision is None:
        console.print(f"no grant to show the trace of; all traces: {zipkin.ui_url(settings)}")
        return
    trace_id = decision["trace_id"]
    console.print(f"the trace of fact {decision['after']} (its request, its grant and payment order): "
                  f"{zipkin.trace_url(settings, trace_id)}", highlight=False, soft_wrap=True)
    console.print(f"in the terminal: .venv/bin/flexledger trace {trace_id}", highlight=False)
