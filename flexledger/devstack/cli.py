"""`flexledger dev ...`: run the development stack (Kafka, PostgreSQL, the three services) without Docker."""

from __future__ import annotations

import dataclasses
import logging
import shlex
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flexledger import output
from flexledger.devstack import credentials, jars, kafka, postgres_ha, stack
from flexledger.devstack.errors import DevstackError
from flexledger.exits import Exit
from flexledger.kafka_access import ADMIN
from services.runtime import keys
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
HA_HELP = ("PostgreSQL with a synchronous streaming standby (node 2 on the configured port + 1); the "
           "services name both nodes and follow a promoted standby (`flexledger dev promote`)")


@app.command()
def up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each part"),
    brokers: int = typer.Option(1, "--brokers", help=BROKERS_HELP),
    ha: bool = typer.Option(False, "--ha", help=HA_HELP),
    with_standby: bool = typer.Option(False, "--standby", help=STANDBY_HELP),
) -> None:
    """Start Zipkin, Kafka, PostgreSQL, then intake, eligibility and payments (each waited for); the
    services export their spans to Zipkin."""
    keys.refuse_new_keys(False)  # the stack's owner: makes the state dir's development keys
    settings = Settings.from_env()
    _timings(_run(lambda: stack.up(settings, timeout=timeout, brokers=brokers, ha=ha,
                                   with_standby=with_standby)))
    _print_status(settings)


@app.command()
def down() -> None:
    """Stop the services, the broker, PostgreSQL and Zipkin."""
    _run(lambda: stack.down(Settings.from_env()))


@app.command("infra-up")
def infra_up(
    timeout: float = typer.Option(120.0, help="Seconds to wait for each part"),
    brokers: int = typer.Option(1, "--brokers", help=BROKERS_HELP),
    ha: bool = typer.Option(False, "--ha", help=HA_HELP),
) -> None:
    """Start only Kafka and PostgreSQL (and create the catalogue topics)."""
    keys.refuse_new_keys(False)  # the stack's owner, as `up`
    _timings(_run(lambda: stack.start_infra(Settings.from_env(), timeout=timeout, brokers=brokers, ha=ha)))


@app.command("infra-down")
def infra_down() -> None:
    """Stop only Kafka and PostgreSQL."""
    _run(lambda: stack.stop_infra(Settings.from_env()))


@app.command()
def promote(
    fence: bool = typer.Option(False, "--fence", help="Stop the primary first (pg_ctl stop -m immediate) "
                               "if it still runs"),
) -> None:
    """Make PostgreSQL's standby the primary (`pg_ctl promote`) after the primary died (refused while it
    runs, unless --fence): it then commits alone; the next `flexledger dev up --ha` clones the old primary
    again as its standby."""
    settings = Settings.from_env()
    standby = [n for n in postgres_ha.status(settings) if n.role == "standby"]
    if not standby:
        typer.echo("error: no PostgreSQL standby runs (`flexledger dev up --ha` starts one)", err=True)
        raise typer.Exit(Exit.FAILED)
    seconds = _run(lambda: postgres_ha.promote(settings, standby[0].node, fence=fence))
    typer.echo(f"{standby[0].part} promoted in {seconds:.1f}s")
    _print_status(settings)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print the parts as a JSON array")) -> None:
    """Each part with its address, pid and health (a service's status and why it is not ok); a
    supervised service also with its restarts and last exit status. Exit status 0 when every part is
    up and started from this state dir, else 1."""
    settings = Settings.from_env()
    if as_json:
        rows = _run(lambda: stack.status(settings))
        output.print_json([dataclasses.asdict(row) for row in rows])
    else:
        rows = _print_status(settings)
    if not all(row.healthy and row.pid for row in rows):
        raise typer.Exit(Exit.FAILED)


def _print_status(settings: Settings) -> list[stack.PartStatus]:
    table = Table("part", "address", "pid", "health", "role", "reasons", "restarts", "last exit")
    colours = {"up": "green", "ok": "green", "primary": "green", "standby": "green", "degraded": "yellow",
               "starting": "yellow"}
    rows = _run(lambda: stack.status(settings))
    for row in rows:
        health = f"[{colours.get(row.health, 'red')}]{row.health}[/]"
        reasons = row.reasons
        if row.healthy and not row.pid:  # answering, but not a process this state dir started
            reasons = (*reasons, f"no pid file in {settings.state_dir}: started from another state dir")
        restarts = str(row.restarts) if row.supervised else "-"
        table.add_row(row.part, row.address, str(row.pid or "-"), health, row.role or "-",
                      escape("\n".join(reasons)),
                      restarts, row.last_exit or "-")
    output.print_table(table)
    return rows


@app.command()
def env(
    principal: str = typer.Option("", "--principal", "-p",
                                  help="Connect to Kafka as this principal (`flexledger kafka principals`)"),
    show_password: bool = typer.Option(False, "--show-password", help="Print the principal's Kafka password"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object of NAME: value instead"),
) -> None:
    """The settings as `export NAME=value` lines (eval "$(flexledger dev env)"), or as JSON.

    Without --principal, no Kafka principal: each tool then connects as its own (the bank simulator as
    `finance`, `audit checkpoints` as `auditor`) with its password from the state dir. The password is
    printed only with --show-password; otherwise a comment names the file that holds it."""
    settings = postgres_ha.with_standby(kafka.with_cluster(Settings.from_env()))  # every node's address
    if principal:
        settings = _run(lambda: credentials.as_principal(settings, principal))
    password_var = settings.env_name("kafka_password")
    shown = {name: value for name, value in settings.as_env().items()
             if show_password or name != password_var or not value}
    if as_json:
        output.print_json(shown)
        return
    for name, value in settings.as_env().items():
        if name not in shown:
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
    """Fetch the Kafka broker's jars and Zipkin's into the cache dir (FLEXLEDGER_CACHE_DIR) with Maven
    (no-op when cached)."""
    typer.echo(_run(jars.ensure_kafka_jars))
    typer.echo(_run(jars.ensure_zipkin_jar))
