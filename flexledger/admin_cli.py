"""`flexledger admin ...`: commands that change the deployment's database itself (as its owner), kept
apart from `audit`, which only reads."""

from __future__ import annotations

import psycopg
import typer

from services.runtime.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Administer the deployment: database roles and grants (writes).")


@app.command("db-roles")
def db_roles_command() -> None:
    """Create the runtime role, schemas and event tables, and the grants (as the owner, pg_user)."""
    from flexledger.audit.roles import provision

    settings = Settings.from_env()
    try:
        provision(settings)
    except psycopg.Error as exc:
        typer.echo(f"error: provisioning failed: {exc}", err=True)
        raise typer.Exit(3) from exc
    print(
        f"owner {settings.pg_user}; services connect as {settings.pg_app_user or settings.pg_user} "
        "(SELECT, INSERT on event tables)"
    )
