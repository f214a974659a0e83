"""The `flexledger` command: operators', auditors' and developers' entry point.

Each command group lives in its own module; this file only wires them together.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="flexledger: the Wuxi flexible-employment subsidy ledger"
)


def _register() -> None:
    from flexledger import demo, scenario, submit

    app.add_typer(scenario.app, name="scenario")
    from flexledger.audit import cli as audit_cli

    app.add_typer(audit_cli.app, name="audit")
    app.command("submit")(submit.submit)
    from flexledger import keys_cli

    app.add_typer(keys_cli.app, name="keys")
    app.command("demo")(demo.demo)
    app.add_typer(__import__("flexledger.payments_cli").payments_cli.app, name="payments")
    try:
        from flexledger.devstack import cli as dev_cli
    except ImportError:  # the dev stack module is optional while it is being built
        return
    app.add_typer(dev_cli.app, name="dev")


def main() -> None:
    _register()
    app()
