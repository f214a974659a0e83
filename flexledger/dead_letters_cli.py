"""`flexledger dead-letters ...`: the kept dead letters and their re-drive (issue 19).

    flexledger dead-letters list [--json]
    flexledger dead-letters redrive DEAD_LETTER_ID [--json]

`list` reads the services' event tables as the console's dead-letters page does (never the message
itself: its size and hash). `redrive` calls the owning service's `POST /v1/dead-letters/{id}/redrive`
with FLEXLEDGER_API_KEY, else the bootstrap operator key: only an operator's key may
(docs/design/services.md, Dead letters). Exit statuses (flexledger/exits.py): 0 taken in; 4 still
refused (the new reason is recorded), taken in before, or the key refused; 3 a service cannot be
reached; 5 no such dead letter; 6 no API key.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from flexledger import output
from flexledger.exits import Exit, fail
from services.runtime.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Dead letters: list the kept ones, re-drive one after a fix (operators).")
TIMEOUT_S = 30.0
REDRIVABLE = ("intake", "eligibility", "payments")  # the services with the re-drive command


@app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The newest kept dead letters of every service, newest first, with their re-drives."""
    from flexledger.console.dead_letter_store import kept

    try:
        letters = kept(Settings.from_env())
    except OSError as exc:
        fail(f"the database cannot be reached: {exc} (is the stack up? flexledger dev up)", Exit.UNREACHABLE)
    if as_json:
        output.print_json(letters)
        return
    table = Table("id", "service", "source", "kept at", "reason", "re-drives")
    for letter in letters:
        redrives = ", ".join(f"{r['result']} {r['at']}" for r in letter["redrives"]) or "-"
        table.add_row(letter["id"], letter["service"], letter["source"], letter["kept_at"], letter["reason"],
                      redrives)
    output.print_table(table)



@app.command()
def redrive(
    dead_letter_id: Annotated[str, typer.Argument(help="the dead letter's id")],
    as_json: Annotated[bool, typer.Option("--json", help="print the service's answer as JSON")] = False,
) -> None:
    """Take a dead letter in again after a fix, through its consumer's own checks; recorded with your
    key and the result. Once taken in, never again."""
    try:
        letter = uuid.UUID(dead_letter_id)
    except ValueError:
        fail(f"not a dead letter id: {dead_letter_id!r}", Exit.USAGE)
    settings = Settings.from_env()
    from flexledger.submit import caller_key  # late: the submit module's imports are heavy
    headers = {"Authorization": f"Bearer {caller_key(settings)}"}
    ports = {"intake": settings.intake_port, "eligibility": settings.eligibility_port,
             "payments": settings.payments_port}
    for service in REDRIVABLE:  # the id names its service's store only: the others answer 404
        url = f"http://127.0.0.1:{ports[service]}/v1/dead-letters/{letter}/redrive"
        try:
            response = httpx.post(url, headers=headers, timeout=TIMEOUT_S)
        except httpx.HTTPError as exc:
            fail(f"{service} cannot be reached at {url}: {exc} (is the stack up?)", Exit.UNREACHABLE)
        if response.status_code == 404:
            continue
        _report(service, response, as_json)
        return
    fail(f"no dead letter {letter} in {' or '.join(REDRIVABLE)}", Exit.NOT_FOUND)


def _report(service: str, response: httpx.Response, as_json: bool) -> None:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"reason": response.text[:200]}
    status = response.status_code
    if as_json:
        output.print_json({"service": service, "status": status, **body})
        if status != 200:
            raise typer.Exit(Exit.REFUSED)
        return
    if status == 200:
        typer.echo(f"{service}: taken in ({body.get('detail')}), by {body.get('by')} at {body.get('at')}")
        return
    if status == 409:
        fail(f"{service}: taken in before, by {body.get('by')} at {body.get('at')} ({body.get('detail')}); "
             "nothing done", Exit.REFUSED)
    if status == 422 and "detail" in body:
        fail(f"{service}: still refused: {body['detail']} (recorded; it stays a dead letter)", Exit.REFUSED)
    fail(f"{service} answered {status}: {json.dumps(body, ensure_ascii=False)[:300]}", Exit.REFUSED)
