"""The `flexledger` command: operators', auditors' and developers' entry point.

Each command group lives in its own module; this file only wires them together. Imports happen in
`_register` so that `import flexledger.cli` stays cheap. Exit statuses: flexledger/exits.py.
"""

from __future__ import annotations

from typing import Any

import typer

from flexledger import __version__
from flexledger.exits import Exit

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="flexledger: the Wuxi flexible-employment subsidy ledger"
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"flexledger {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the version and exit"),
) -> None:
    """flexledger: the Wuxi flexible-employment subsidy ledger (exit statuses: docs/cli.md)."""


def _register() -> None:
    from flexledger import (
        admin_cli,
        dead_letters_cli,
        demo,
        kafka_cli,
        keys_cli,
        payments_cli,
        scenario,
        submit,
        subscribe,
        trace,
    )
    from flexledger.audit import cli as audit_cli
    from flexledger.devstack import cli as dev_cli

    app.add_typer(scenario.app, name="scenario")
    app.add_typer(dev_cli.app, name="dev")
    app.add_typer(audit_cli.app, name="audit")
    app.add_typer(keys_cli.app, name="keys")
    app.add_typer(kafka_cli.app, name="kafka")
    app.add_typer(payments_cli.app, name="payments")
    app.add_typer(admin_cli.app, name="admin")
    app.add_typer(dead_letters_cli.app, name="dead-letters")
    app.command("submit")(submit.submit)
    app.command("demo")(demo.demo)
    app.command("trace")(trace.trace_command)
    app.command("subscribe")(subscribe.subscribe_command)


def _flags_without_a_type() -> None:
    """Help lists `--json` as a flag, not as `--json <bool>` (typer shows every option's type, and a
    flag takes no value)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def main() -> None:
    from pydantic import ValidationError

    from services.runtime.keys import MissingKeyError, refuse_new_keys

    refuse_new_keys()  # the services make the development keys; a tool that made one would fork them
    _flags_without_a_type()
    _register()
    try:
        app()
    except MissingKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(Exit.NOT_SET_UP) from None
    except ValidationError as exc:  # a FLEXLEDGER_* variable of the wrong type
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(Exit.USAGE) from None
