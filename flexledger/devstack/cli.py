"""`flexledger dev ...`: run the development stack (Kafka, PostgreSQL, the three services) without Docker."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flexledger.devstack import credentials, jars, kafka, stack
from flexledger.devstack.errors import DevstackError
from flexledger.kafka_access import ADMIN
from services.runtime.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Local development stack: Kafka (KRaft), PostgreSQL, Zipkin and the three services.")
console = Console()
T = TypeVar("T")


@app.callback()
def _setup(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connection refused while the broker boots
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /health poll


def _run(action: Callable[[], T]) -> T:
    try:
        return action()
    except DevstackError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _timings(timings: dict[str, float]) -> None:
    console.print(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()), highlight=False)


STANDBY_HELP = ("intake and payments as an active and a standby instance behind the usual port, eligibility "
                "as three instances (docs/design/services.md, 'Active and standby')")
BROKERS_HELP = ("Kafka nodes: 1, or a cluster (3: replication factor 3, min.insync.replicas 2; "
                "node n on the configured ports + 2(n-1))")


@app.command()
def up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each part"),
    brokers: int = typer.Option(1, "--brokers", help=BROKERS_HELP),
    with_standby: bool = typer.Option(False, "--standby", help=STANDBY_HELP),
) -> None:
    """Start Zipkin, Kafka, PostgreSQL, then intake, eligibility and payments (each waited for); the
    services export their spans to Zipkin."""
    settings = Settings.from_env()
    _timings(_run(lambda: stack.up(settings, timeout=timeout, brokers=brokers, with_standby=with_standby)))
    _print_status(settings)


@app.command()
def down() -> None:
    """Stop the services, the broker, PostgreSQL and Zipkin."""
    _run(lambda: stack.down(Settings.from_env()))


@app.command("infra-up")
def infra_up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each part"),
    brokers: int = typer.Option(1, "--brokers", help=BROKERS_HELP),
) -> None:
    """Start only Kafka and PostgreSQL (and create the catalogue topics)."""
    _timings(_run(lambda: stack.start_infra(Settings.from_env(), timeout=timeout, brokers=brokers)))


@app.command("infra-down")
def infra_down() -> None:
    """Stop only Kafka and PostgreSQL."""
    _run(lambda: stack.stop_infra(Settings.from_env()))


@app.command()
def status() -> None:
    """Each part with its address, pid and health (a service's status and why it is not ok); a
    supervised service also with its restarts and last exit status."""
    _print_status(Settings.from_env())


def _print_status(settings: Settings) -> None:
    table = Table("part", "address", "pid", "health", "role", "reasons", "restarts", "last exit")
    colours = {"up": "green", "ok": "green", "degraded": "yellow", "starting": "yellow", "standby": "cyan"}
    for row in _run(lambda: stack.status(settings)):
        health = f"[{colours.get(row.health, 'red')}]{row.health}[/]"
        restarts = str(row.restarts) if row.supervised else "-"
        table.add_row(row.part, row.address, str(row.pid or "-"), health, row.role or "-",
                      escape("\n".join(row.reasons)),
                      restarts, row.last_exit or "-")
    console.print(table)


@app.command()
def env(
    principal: str = typer.Option("", "--principal", "-p",
                                  help="Connect to Kafka as this principal (`flexledger kafka principals`)"),
    show_password: bool = typer.Option(False, "--show-password", help="Print the principal's Kafka password"),
) -> None:
    """The settings as `export NAME=value` lines (eval "$(flexledger dev env)").

    Without --principal, no Kafka principal: each tool then connects as its own (the bank simulator as
    `finance`, `audit checkpoints` as `auditor`) with its password from the state dir. The password is
    printed only with --show-password; otherwise a comment names the file that holds it."""
    settings = kafka.with_cluster(Settings.from_env())  # a cluster: every node's address
    if principal:
        settings = _run(lambda: credentials.as_principal(settings, principal))
    password_var = settings.env_name("kafka_password")
    for name, value in settings.as_env().items():
        if name == password_var and value and not show_password:
            path = credentials.password_file(settings, principal)
            typer.echo(f"# {name}: in {path} (--show-password prints it)")
            continue
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command()
def topics() -> None:
    """Create the catalogue topics that are missing (replicated by the cluster's size), as `admin` (or as
    FLEXLEDGER_KAFKA_USERNAME when set)."""
    created = _run(lambda: kafka.create_topics(credentials.for_tool(Settings.from_env(), ADMIN)))
    typer.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@app.command("fetch-jars")
def fetch_jars() -> None:
    """Fetch the Kafka broker's jars into .cache/kafka/lib and Zipkin's into .cache/zipkin with Maven
    (no-op when cached)."""
    typer.echo(_run(jars.ensure_kafka_jars))
    typer.echo(_run(jars.ensure_zipkin_jar))
