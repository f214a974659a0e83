"""`flexledger payments ...`: the Finance side's commands, over the payments service's HTTP API.

    flexledger payments appropriate PROGRAM YEAR AMOUNT_FEN [--book main] [--reference DOC]
    flexledger payments balance [BENEFICIARY] [--book main] [--year YEAR] [--json]
    flexledger payments trial-balance [--book main]
    flexledger payments repay BENEFICIARY AMOUNT_FEN REFERENCE [--book main]
    flexledger payments bank-simulator [--return-suffix 9 ...] [--idle-exit SECONDS] [--sandbox]

Amounts are integer fen on input; output shows CNY. Beneficiaries are printed masked (`--json`: as
the service answers). Exit statuses as every command's (flexledger/exits.py): 0 done; 1 the trial
balance does not balance; 3 the service cannot be reached; 4 refused: by the book (e.g. an
appropriation below what is already committed) or an error status of the service; 5 not found;
6 no API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from contracts.identifiers import mask
from flexledger import output
from flexledger.exits import Exit, fail
from services.runtime.settings import Settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Payments: appropriations, balances, the trial balance, repayments, the simulated bank.",
)
console = Console()
TIMEOUT_S = 30.0


def _base(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.payments_port}"



def _call(method: str, path: str, *, body: dict[str, Any] | None = None,
          params: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    settings = Settings.from_env()
    url = _base(settings) + path
    from flexledger.submit import caller_key  # late: the submit module's imports are heavy
    headers = {"Authorization": f"Bearer {caller_key(settings)}"}
    try:
        response = httpx.request(method, url, json=body, params=params, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        fail(f"payments cannot be reached at {url}: {exc} (is the stack up? flexledger dev up)",
             Exit.UNREACHABLE)
    try:
        payload: dict[str, Any] = response.json()
    except ValueError:
        payload = {"detail": response.text[:200]}
    if response.status_code >= 400 and response.status_code != 404:  # 404: the caller says what was not found
        fail(f"payments answered {response.status_code}: {json.dumps(payload, ensure_ascii=False)[:300]}",
             Exit.REFUSED)
    return response.status_code, payload


def cny(fen: int | None) -> str:
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


@app.command()
def appropriate(
    program: str = typer.Argument(..., help="programme, e.g. employment_service"),
    year: int = typer.Argument(..., help="fiscal year (calendar year)"),
    amount_fen: int = typer.Argument(..., min=0, help="the appropriation in force, in fen (a total)"),
    book: str = typer.Option("main", help="the book"),
    reference: str | None = typer.Option(None, help="the budget document it rests on"),
    as_json: bool = typer.Option(False, "--json", help="print the service's JSON answer"),
) -> None:
    """Set a programme's appropriation for a fiscal year; orders waiting for it are released in order."""
    _, body = _call("POST", f"/v1/books/{book}/appropriations", body={
        "program": program, "fiscal_year": year, "amount_fen": amount_fen, "reference": reference,
    })
    if body.get("outcome") == "refused":
        fail(f"refused: {body.get('reason')}", Exit.REFUSED)
    if as_json:
        output.print_json(body)
        return
    released = body.get("released_orders", 0)
    console.print(
        f"{book}: {program} {year} appropriation {cny(body.get('previous_fen'))} -> "
        f"{cny(body.get('appropriated_fen'))} CNY ({body.get('outcome')}; "
        f"{released} order(s) released from the awaiting-budget queue)", highlight=False,
    )


@app.command()
def balance(
    beneficiary: str | None = typer.Argument(None, help="an identity number or credit code; none: totals"),
    book: str = typer.Option("main", help="the book"),
    year: int | None = typer.Option(None, help="one fiscal year only (totals)"),
    as_json: bool = typer.Option(False, "--json", help="print the service's JSON (beneficiary in clear)"),
) -> None:
    """A beneficiary's balance, or without one, the per-programme totals and the trial balance."""
    if beneficiary is None:
        _, totals = _call("GET", f"/v1/books/{book}/totals", params={"fiscal_year": year} if year else None)
        if as_json:
            output.print_json(totals)
            return
        output.print_table(totals_table(totals))
        state = "balanced" if totals.get("trial_balance_fen") == 0 else "NOT BALANCED"
        console.print(f"trial balance: {totals.get('trial_balance_fen')} fen ({state})", highlight=False)
        return
    status, found = _call("GET", f"/v1/books/{book}/balances/{beneficiary}")
    if status == 404:
        fail(f"no payments for {mask(beneficiary)} in book {book}", Exit.NOT_FOUND)
    if as_json:
        output.print_json(found)
        return
    output.print_table(balance_table(found))


def totals_table(totals: dict[str, Any]) -> Table:
    year = totals.get("fiscal_year")
    table = Table(title=f"Book {totals.get('book')}: payments per programme"
                        f"{f' (fiscal year {year})' if year else ''}, CNY")
    columns = [("programme", "program"), ("appropriated", "appropriated_fen"), ("committed", "committed_fen"),
               ("paid", "paid_fen"), ("available", "available_fen"), ("recovered", "recovered_fen"),
               ("receivables", "receivables_outstanding_fen"), ("awaiting budget", "awaiting_budget_fen"),
               ("waiting orders", "awaiting_budget_orders")]
    for title, _ in columns:
        table.add_column(title, justify="left" if title == "programme" else "right")
    for row in totals.get("programmes", []):
        table.add_row(*[str(row[key]) if not key.endswith("_fen") else cny(row[key]) for _, key in columns])
    return table


def balance_table(found: dict[str, Any]) -> Table:
    who = mask(found.get("beneficiary"))
    table = Table(title=f"{who} in book {found.get('book')}, CNY")
    table.add_column("", justify="left")
    table.add_column("", justify="right")
    for label, key in (("awaiting budget", "awaiting_budget_fen"), ("payable", "payable_fen"),
                       ("in transit", "in_transit_fen"), ("paid by the bank", "paid_by_bank_fen"),
                       ("paid by offset", "paid_by_offset_fen"), ("receivable (owes)", "receivable_fen"),
                       ("recovered", "recovered_fen"), ("net due", "net_due_fen")):
        table.add_row(label, cny(found.get(key)))
    if found.get("last_return_reason"):
        table.add_row("last bank return", str(found["last_return_reason"]))
    for order in found.get("orders", []):
        reason = order.get("awaiting_reason") or order.get("last_return_reason") or ""
        table.add_row(f"order {order['order_id']} {order['program']} {order['fiscal_year']}",
                      f"{cny(order['amount_fen'])} {order['state']} {reason}".strip())
    return table


@app.command("trial-balance")
def trial_balance(
    book: str = typer.Option("main", help="the book"),
    as_json: bool = typer.Option(False, "--json", help="print the service's JSON answer"),
) -> None:
    """The general ledger by account group (payables and receivables summed); the total must be 0
    (exit status 1 when it is not)."""
    _, found = _call("GET", f"/v1/books/{book}/trial-balance")
    if as_json:
        output.print_json(found)
    table = Table(title=f"Trial balance of book {book}, CNY")
    for column in ("account", "accounts", "debit", "credit"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for row in found.get("accounts", []):
        table.add_row(row["account"], str(row["accounts"]), cny(row["debit_fen"]), cny(row["credit_fen"]))
    table.add_row("total", "", cny(found.get("total_debit_fen")), cny(found.get("total_credit_fen")))
    if not as_json:
        output.print_table(table)
    if not found.get("balanced"):
        fail(f"NOT BALANCED: {found.get('trial_balance_fen')} fen", Exit.FAILED)


@app.command()
def repay(
    beneficiary: str = typer.Argument(..., help="the identity number or credit code that paid back"),
    amount_fen: int = typer.Argument(..., min=1, help="the amount paid back, in fen"),
    reference: str = typer.Argument(..., help="the bank reference (recording it twice changes nothing)"),
    book: str = typer.Option("main", help="the book"),
    as_json: bool = typer.Option(False, "--json", help="print the service's JSON answer"),
) -> None:
    """Record money a beneficiary paid back against what it owes (oldest claims first)."""
    _, body = _call("POST", f"/v1/books/{book}/repayments",
                    body={"beneficiary": beneficiary, "amount_fen": amount_fen, "reference": reference})
    if body.get("outcome") == "refused":
        fail(f"refused: {body.get('reason')}", Exit.REFUSED)
    if as_json:
        output.print_json(body)
        return
    console.print(f"{book}: repayment {reference} of {cny(amount_fen)} CNY from {mask(beneficiary)}: "
                  f"{body.get('outcome')}", highlight=False)


@app.command("bank-simulator")
def bank_simulator(
    return_suffix: Annotated[list[str] | None, typer.Option(
        "--return-suffix", help="return entries of beneficiaries ending with this")] = None,
    returned_attempts: int = typer.Option(1, min=0, help="return them on this many first attempts"),
    reason: str = typer.Option("account closed (simulated)", help="the return reason"),
    book: Annotated[list[str] | None, typer.Option("--book", help="only these books (default: all)")] = None,
    sandbox: bool = typer.Option(False, "--sandbox", help="settle the sandbox books (every book not in "
                                 "FLEXLEDGER_PRODUCTION_BOOKS), on their own topics, as sandbox_finance"),
    idle_exit: float | None = typer.Option(None, help="exit after this many seconds without instructions"),
) -> None:
    """Play the bank: settle every disbursement instruction (pay, or return per the rule)."""
    from flexledger.bank_simulator import BankSimulator
    from services.payments.domain import BankRule

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    rule = BankRule(suffixes=tuple(return_suffix or ()), returned_attempts=returned_attempts, reason=reason)
    try:
        simulator = BankSimulator(Settings.from_env(), rule, books=book or None, sandbox=sandbox)
    except ValueError as exc:  # a book of the other side
        raise typer.BadParameter(str(exc), param_hint="--book") from None
    try:
        settled = asyncio.run(simulator.run(idle_exit_s=idle_exit))
    except KeyboardInterrupt:
        settled = simulator.settled_batches
    console.print(f"bank simulator: {settled} batch(es), {simulator.settled_entries} entries settled",
                  highlight=False)
