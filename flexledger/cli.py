"""The `flexledger` command: operators', auditors' and developers' entry point.

Each command group lives in its own module; this file only wires them together. Imports happen in
`_register` so that `import flexledger.cli` stays cheap.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="flexledger: the Wuxi flexible-employment subsidy ledger"
)


def _register() -> None:
    from flexledger import (
        admin_cli,
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
    app.command("submit")(submit.submit)
    app.command("demo")(demo.demo)
    app.command("trace")(trace.trace_command)
    app.command("subscribe")(subscribe.subscribe_command)


def main() -> None:
    _register()
    app()
