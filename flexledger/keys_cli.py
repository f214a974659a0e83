"""`flexledger keys`: the operator's commands for the API keys of the three services.

    flexledger keys issue --role platform --enterprise 91320213MA1XY0001L [--label TEXT]
    flexledger keys issue --role social_insurance_agency
    flexledger keys issue --role finance | auditor | statistics | operator
    flexledger keys rotate KEY_ID [--grace-hours N]
    flexledger keys revoke KEY_ID [--reason TEXT]
    flexledger keys list
    flexledger keys reads [--identity NUMBER] [--key-id KEY_ID]   # the read audit

They talk to the access store directly (PostgreSQL, schema `access`, with the settings every process
reads; services/runtime/access/store.py): a key change is an event in the `ApiKeyRing` stream, holding
the key id, role, enterprise and the SHA-256 of the secret — never the secret. Each running service
(intake, eligibility, payments) folds new changes within a second (at once for a key it has not seen
yet). Whoever can run these commands can write to that database: that, not an HTTP key, is what
guards them.

A new key (issue, rotate) is printed once, on stdout; only its hash is kept, so it cannot be shown
again. `--json` prints one JSON object instead of text. Exit statuses as every command's
(flexledger/exits.py): 0 done; 3 the database cannot be reached; 4 the command was refused (unknown
key, bad role or enterprise, ...).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import typer
from rich.console import Console
from rich.table import Table

from flexledger import output
from flexledger.exits import Exit
from services.runtime.keys import MissingKeyError
from services.runtime.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Issue, rotate, revoke and list the services' API keys (hashed in the access store).")

EXIT_REFUSED, EXIT_DATABASE = Exit.REFUSED, Exit.UNREACHABLE
_ROLES = ("platform | hr_bureau | social_insurance_agency | talent_office | park_authority | finance | "
          "auditor | statistics | operator")


def _application(settings: Settings) -> Any:
    from services.runtime.access.store import AccessApplication

    try:
        return AccessApplication(settings)
    except MissingKeyError:
        raise  # not the database's fault: flexledger.cli.main says which key and exits 6
    except Exception as exc:
        where = settings.pg_address
        _fail(f"cannot open the access store at {where}: {exc}", EXIT_DATABASE)


def _fail(message: str, code: int) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _change(command: Any) -> Any:
    from services.runtime.access.credentials import KeyRingError

    application = _application(Settings.from_env())
    try:
        return application.change_keys(command)
    except KeyRingError as exc:
        _fail(exc.reason, EXIT_REFUSED)
    except typer.Exit:
        raise
    except Exception as exc:
        _fail(f"the access store: {exc}", EXIT_DATABASE)
    finally:
        application.close()


def _show_new_key(action: str, key_id: str, token: str, principal: str, as_json: bool, **extra: Any) -> None:
    if as_json:
        typer.echo(json.dumps({"key_id": key_id, "key": token, "principal": principal, **extra}))
        return
    console = Console(highlight=False)
    console.print(f"{action} key {key_id} for {principal}", markup=False)
    for name, value in extra.items():
        if value is not None:
            console.print(f"  {name.replace('_', ' ')}: {value}", markup=False)
    console.print("API key (shown once; only its hash is kept — store it now):", markup=False)
    typer.echo(token)


@app.command("issue")
def issue(
    role: str = typer.Option(..., "--role", help=_ROLES),
    enterprise: str | None = typer.Option(
        None, "--enterprise", help="a platform key's own enterprise (unified social credit code)"),
    label: str = typer.Option("", "--label", help="a note for operators, e.g. who holds the key"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Issue a new key for a platform (bound to its enterprise), an agency, finance, an auditor, the
    statistics bureau or an operator."""
    from services.runtime.access.credentials import issue_key, new_api_key
    from services.runtime.access.principals import Role

    key, now = new_api_key(), datetime.now(UTC)
    event = _change(lambda ring: issue_key(ring, role=cast(Role, role), at=now, key=key,
                                           enterprise=enterprise, label=label))
    principal = f"platform {event.enterprise}" if event.role == "platform" else event.role
    _show_new_key("issued", key.key_id, key.token, principal, as_json, label=label or None)


@app.command("rotate")
def rotate(
    key_id: str = typer.Argument(..., help="the key to replace"),
    grace_hours: float | None = typer.Option(
        None, "--grace-hours", min=0.0, help="the old key keeps working this long (at most 720 h); "
                                             "without it, the old key stops now"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Replace a key by a new one with the same principal; the old one stops now or after the grace."""
    from services.runtime.access.credentials import new_api_key, rotate_key

    now = datetime.now(UTC)
    grace_until = now + timedelta(hours=grace_hours) if grace_hours else None
    key = new_api_key()
    event = _change(lambda ring: rotate_key(ring, key_id, at=now, key=key, grace_until=grace_until))
    old_until = event.old_valid_until.isoformat(timespec="seconds")
    _show_new_key("rotated", key.key_id, key.token, f"the principal of {key_id}", as_json,
                  replaces=key_id, old_key_valid_until=old_until)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="the key to end now"),
    reason: str = typer.Option("", "--reason", help="why (kept with the revocation)"),
) -> None:
    """End a key at once (also during a rotation's grace window)."""
    from services.runtime.access.credentials import revoke_key

    now = datetime.now(UTC)
    _change(lambda ring: revoke_key(ring, key_id, at=now, reason=reason))
    typer.echo(f"revoked key {key_id}; the services refuse it within a second")


@app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="print one JSON object per key")) -> None:
    """Every key with its principal and state (no secrets: they are not kept)."""
    from services.runtime.access.operator_key import (
        OperatorKeyError,
        operator_key_path,
        read_operator_key,
    )

    settings = Settings.from_env()
    application = _application(settings)
    try:
        ring = application.key_ring()
    except Exception as exc:
        _fail(f"the access store: {exc}", EXIT_DATABASE)
    finally:
        application.close()
    now = datetime.now(UTC)
    rows = [{
        "key_id": key_id, "role": record.principal.role, "enterprise": record.principal.enterprise,
        "state": record.state(now), "issued_at": record.issued_at.isoformat(timespec="seconds"),
        "valid_until": record.valid_until.isoformat(timespec="seconds") if record.valid_until else None,
        "replaced_by": record.replaced_by, "label": record.label,
    } for key_id, record in sorted(ring.records.items(), key=lambda item: item[1].issued_at)]
    try:
        bootstrap = read_operator_key(settings)
        source = "FLEXLEDGER_OPERATOR_KEY" if settings.operator_key else str(operator_key_path(settings))
    except OperatorKeyError as exc:
        bootstrap, source = None, f"unusable: {exc}"
    if bootstrap is not None:
        rows.append({"key_id": bootstrap.key_id, "role": "operator", "enterprise": None, "state": "active",
                     "issued_at": None, "valid_until": None, "replaced_by": None,
                     "label": f"bootstrap operator key from {source} (configuration, not revocable here)"})
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"API keys ({len(rows)})")
    for column in ("key id", "role", "enterprise", "state", "issued", "valid until", "replaced by", "label"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[name] or "") for name in (
            "key_id", "role", "enterprise", "state", "issued_at", "valid_until", "replaced_by", "label")))
    output.print_table(table)


@app.command("reads")
def reads(
    identity: str | None = typer.Option(
        None, "--identity", help="only the reads whose answer held this identity number"),
    key_id: str | None = typer.Option(None, "--key-id", help="only the reads made with this key"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per read"),
) -> None:
    """The read audit: who read personal data through the HTTP APIs, when, where and how much
    (docs/design/http-auth.md). Subjects are stored as keyed pseudonyms; `--identity` finds a person's."""
    from services.runtime.access.audit import read_audit_key
    from services.runtime.access.pseudonyms import pseudonym

    settings = Settings.from_env()
    wanted = pseudonym(read_audit_key(settings), identity) if identity else None
    application = _application(settings)
    try:
        rows = [{
            "at": read.timestamp.isoformat(timespec="seconds"), "key_id": read.key_id, "role": read.role,
            "enterprise": read.enterprise, "service": read.service, "endpoint": read.endpoint,
            "book": read.book, "view": read.view, "rows": read.rows, "subjects": len(read.subjects),
        } for _, read in application.reads()
            if (wanted is None or wanted in read.subjects) and (key_id is None or read.key_id == key_id)]
    except Exception as exc:
        _fail(f"the access store: {exc}", EXIT_DATABASE)
    finally:
        application.close()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"reads of personal data ({len(rows)})")
    columns = ("at", "key_id", "role", "enterprise", "service", "endpoint", "book", "view", "rows",
               "subjects")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(str(row[name] if row[name] is not None else "") for name in columns))
    output.print_table(table)
