"""`flexledger kafka`: who may connect to the local stack's broker, and what each principal may do.

    flexledger kafka principals list
    flexledger kafka principals add NAME        # its SCRAM credential (a principal of the access table)
    flexledger kafka principals rotate NAME     # a new password, on the broker and in the state dir
    flexledger kafka principals remove NAME     # delete its credential (its ACLs stay, granting nothing)
    flexledger kafka acls list                  # the broker's ACLs, each marked in or out of the table
    flexledger kafka acls apply [--dry-run]     # make the broker's ACLs exactly the access table's
    flexledger kafka acls script                # the table as deploy/kafka/compose/access.sh (compose)

They run Kafka's own tools (ConfigCommand, AclCommand) as the local stack's `admin` against the broker
of the settings (`flexledger dev env`). The table is
`flexledger.kafka_access` (docs/design/kafka-trust.md). Passwords are never printed: each is in
<state_dir>/kafka/principals/<name>.password (`flexledger dev env --principal NAME --show-password`).
Exit status: 0 done; 1 refused or the broker could not be reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from flexledger import output
from flexledger.devstack import credentials, kafka_admin
from flexledger.devstack import principals as principal_ops
from flexledger.devstack.errors import DevstackError
from flexledger.kafka_access import acls, compose_script
from services.runtime.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Kafka principals (SCRAM credentials) and ACLs of the local stack's broker.")
principals_app = typer.Typer(no_args_is_help=True, add_completion=False,
                             help="Add, rotate, remove and list the principals' credentials.")
acls_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Apply the access table's ACLs to the broker, or list the broker's ACLs.")
app.add_typer(principals_app, name="principals")
app.add_typer(acls_app, name="acls")
console = Console(highlight=False)
T = TypeVar("T")
_NAME = typer.Argument(..., help="a principal of the access table (`flexledger kafka principals list`)")
_JSON = typer.Option(False, "--json", help="Print a JSON array")


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except DevstackError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@principals_app.command("list")
def list_principals(as_json: bool = _JSON) -> None:
    """Every principal of the access table: does the broker hold its credential, is its password stored."""
    rows = _run(lambda: principal_ops.status(Settings.from_env()))
    if as_json:
        output.print_json([dataclasses.asdict(row) for row in rows])
        return
    table = Table("principal", "who", "credential on broker", "password file")
    for row in rows:
        on_broker = "yes" if row.on_broker else ("removed" if row.removed else "[red]no[/red]")
        table.add_row(row.name, row.who, on_broker, "yes" if row.password_file else "-")
    output.print_table(table)


@principals_app.command("add")
def add(name: str = _NAME) -> None:
    """Give NAME (a principal of the access table) its SCRAM credential."""
    settings = Settings.from_env()
    _run(lambda: principal_ops.add(settings, name))
    path = credentials.password_file(settings, name)
    console.print(f"{name} may connect; password in {path}", markup=False)


@principals_app.command("rotate")
def rotate(name: str = _NAME) -> None:
    """Give NAME a new password (the old one is refused from now on)."""
    settings = Settings.from_env()
    _run(lambda: principal_ops.rotate(settings, name))
    console.print(f"{name}: new password in {credentials.password_file(settings, name)}. Connections "
                  f"already open stay up; restart whatever connects as {name} (its next connection "
                  "with the old password is refused).", markup=False)


@principals_app.command("remove")
def remove(name: str = _NAME) -> None:
    """Delete NAME's credential: it can no longer connect (`add` gives it back)."""
    _run(lambda: principal_ops.remove(Settings.from_env(), name))
    console.print(f"{name} can no longer connect. Its ACLs stay (they grant nothing without a "
                  "credential); take it out of the access table and run `flexledger kafka acls apply` "
                  "to remove them.", markup=False)


@acls_app.command("list")
def list_acls(as_json: bool = _JSON) -> None:
    """The broker's ACLs, each marked as in the access table or not."""
    listed = _run(lambda: kafka_admin.list_acls(Settings.from_env()))
    wanted = acls()
    if as_json:
        output.print_json([{**dataclasses.asdict(entry.acl), "host": entry.host,
                            "permission": entry.permission, "in_table": entry.managed and entry.acl in wanted}
                           for entry in listed])
        return
    table = Table("principal", "resource", "pattern", "name", "operation", "host", "permission", "in table")
    for entry in listed:
        a = entry.acl
        in_table = "yes" if entry.managed and a in wanted else "[red]no[/red]"
        table.add_row(a.principal, a.resource_type, a.pattern_type, a.resource, a.operation, entry.host,
                      entry.permission, in_table)
    output.print_table(table)
    missing = wanted - {entry.acl for entry in listed if entry.managed}
    if missing:
        console.print(f"{len(missing)} ACLs of the table are missing: `flexledger kafka acls apply`",
                      markup=False)


@acls_app.command("apply")
def apply(dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would change")) -> None:
    """Make the broker's ACLs exactly the access table's (idempotent)."""
    changes = _run(lambda: kafka_admin.apply_acls(Settings.from_env(), dry_run=dry_run))
    verb = "would " if dry_run else ""
    for a in changes.added:
        console.print(f"{verb}add    {a.principal} {a.operation} {a.resource_type} {a.resource} "
                      f"({a.pattern_type.lower()})", markup=False)
    for entry in changes.removed:
        a = entry.acl
        console.print(f"{verb}remove {a.principal} {a.operation} {a.resource_type} {a.resource} "
                      f"({a.pattern_type.lower()}, host {entry.host})", markup=False)
    console.print(f"{len(changes.added)} added, {len(changes.removed)} removed" if not dry_run else
                  f"{len(changes.added)} to add, {len(changes.removed)} to remove", markup=False)


@acls_app.command("script")
def script() -> None:
    """The access table as the compose stack's shell script (deploy/kafka/compose/access.sh)."""
    typer.echo(compose_script(), nl=False)
