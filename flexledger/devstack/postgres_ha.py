"""PostgreSQL with a synchronous standby: `flexledger dev up --ha`.

Two nodes of one state dir (flexledger.devstack.postgres: node 1 on `pg_port`, node 2 on `pg_port + 1`).
The primary streams its WAL to the standby through a physical replication slot and names it in
`synchronous_standby_names`, so a commit is acknowledged only once the standby has it (`synchronous_commit
= on`): losing the primary loses nothing a client was told. The standby is made with `pg_basebackup -R`
over the socket as the superuser (peer authentication, no password), so it follows the primary at once.

Failover is by hand, as an operator would: `promote` (`pg_ctl promote`) turns the standby into a primary
that accepts writes alone (its config names no synchronous standby: a primary waiting for a standby that
is gone would stop every commit). Clients name both nodes (`with_standby`: FLEXLEDGER_PG_HOSTS, and
`target_session_attrs=read-write`) and so find the new primary themselves.

Which node is the primary is read from the data directories, never remembered: a node with
`standby.signal` is a standby; of two primaries (the old one after a failover) the one on the later
timeline (`pg_wal/*.history`) wins, and the other is cloned again from it — what only it held was never
acknowledged. `start` then brings up the primary, then the standby, and waits until it is synchronous.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from flexledger.devstack import postgres, processes
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import state_dir
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

NODES = (1, 2)
_HISTORY = re.compile(r"([0-9A-F]{8})\.history")


def _marker(settings: Settings) -> Path:
    return state_dir(settings) / "pg-standby"


def enabled(settings: Settings) -> bool:
    """True when this state dir's PostgreSQL runs with a standby (`--ha` said so last)."""
    return _marker(settings).is_file()


def use_standby(settings: Settings, on: bool) -> None:
    """Run this state dir's PostgreSQL with a standby from now on, or without. Leaving the pair is refused
    while it runs, or when node 2 was promoted (node 1 alone would be behind it)."""
    if on == enabled(settings):
        return
    if on:
        _marker(settings).write_text("node 2 follows node 1 synchronously (flexledger dev up --ha)\n")
        return
    if any(postgres.is_running(settings, node) for node in NODES):
        raise DevstackError("PostgreSQL runs with a standby: `flexledger dev down` first, or keep --ha")
    if timeline(postgres.layout(settings, 2)) > timeline(postgres.layout(settings, 1)):
        raise DevstackError("node 2 was promoted and holds the latest data: keep --ha (node 1 is cloned "
                            "again from it)")
    _marker(settings).unlink()


def with_standby(settings: Settings) -> Settings:
    """The settings whose clients name both nodes (unchanged without a standby)."""
    if not enabled(settings):
        return settings
    host = settings.pg_host
    servers = ",".join(f"{host}:{postgres.node_port(settings, node)}" for node in NODES)
    return replace(settings, pg_hosts=servers)


def part(node: int) -> str:
    return f"{postgres.PART}-{node}"


def _application_name(node: int) -> str:
    return f"flexledger_node_{node}"  # also the name of its replication slot on the primary


def is_standby(lay: postgres.PgLayout) -> bool:
    return (lay.data / "standby.signal").is_file()


def timeline(lay: postgres.PgLayout) -> int:
    """The node's latest timeline: 1, or the highest one a promotion started (`pg_wal/<tli>.history`)."""
    wal = lay.data / "pg_wal"
    if not wal.is_dir():
        return 0
    found = [int(m.group(1), 16) for p in wal.iterdir() if (m := _HISTORY.fullmatch(p.name))]
    return max(found, default=1)


def primary_node(settings: Settings) -> int | None:
    """The node that is (or will start as) the primary, from the data directories; None before initdb."""
    primaries = [n for n in NODES if (postgres.layout(settings, n).data / "PG_VERSION").is_file()
                 and not is_standby(postgres.layout(settings, n))]
    if not primaries:
        return None
    return max(primaries, key=lambda n: timeline(postgres.layout(settings, n)))


def _primary_config(standby: int) -> str:
    return ("synchronous_commit = on\n"
            f"synchronous_standby_names = 'FIRST 1 ({_application_name(standby)})'\n")


def _standby_config() -> str:
    # Promoted, it must not wait for a standby that does not exist: it commits alone.
    return "synchronous_standby_names = ''\n"


@dataclass(frozen=True)
class PairTimings:
    primary: int
    standby: int
    seconds: dict[str, float]


def start(settings: Settings, timeout: float = 60.0) -> PairTimings:
    """Start the primary (initdb on first use), the role and database, then the standby (cloned when it
    has no data or is a stale former primary), and wait until the primary reports it synchronous."""
    t0 = time.monotonic()
    primary = primary_node(settings)
    if primary is None:
        postgres.init_cluster(settings)
        primary = 1
    standby = 2 if primary == 1 else 1
    lay, standby_lay = postgres.layout(settings, primary), postgres.layout(settings, standby)
    postgres.prepare_dirs(lay)
    # Alone until its standby streams: a primary that names a standby not yet there waits at every commit.
    alone = not (postgres.is_running(settings, standby) and is_standby(standby_lay))
    config = _standby_config() if alone else _primary_config(standby)
    postgres.start_node(lay, timeout, config)
    _configure(lay, config)  # a primary that ran already still has its former settings
    postgres.ensure_role_and_database(settings, primary)
    seconds = {"primary": time.monotonic() - t0}
    if not (standby_lay.data / "PG_VERSION").is_file() or not is_standby(standby_lay):
        postgres.stop_node(standby_lay, timeout)
        _clone(lay, standby_lay, standby, primary)
    postgres.start_node(standby_lay, timeout, _standby_config())
    seconds["standby"] = time.monotonic() - t0
    _configure(lay, _primary_config(standby))
    _wait_synchronous(lay, standby, timeout)
    seconds["synchronous"] = time.monotonic() - t0
    log.info("PostgreSQL node %d primary, node %d its synchronous standby, in %.1fs", primary, standby,
             seconds["synchronous"])
    return PairTimings(primary, standby, seconds)


def _configure(lay: postgres.PgLayout, extra: str) -> None:
    """Write a running node's config and have it read it again (pg_reload_conf)."""
    postgres.write_config(lay, extra)
    postgres.psql(lay, "SELECT pg_reload_conf()")


def _clone(primary: postgres.PgLayout, lay: postgres.PgLayout, node: int, primary_node: int) -> None:
    """A fresh copy of the primary (pg_basebackup -R: standby.signal and primary_conninfo written) that
    streams from the primary's slot for this node."""
    slot = _application_name(node)
    postgres.psql(primary, f"SELECT pg_create_physical_replication_slot('{slot}') WHERE NOT EXISTS "
                           f"(SELECT FROM pg_replication_slots WHERE slot_name = '{slot}')")
    if lay.data.exists():
        log.warning("PostgreSQL node %d is cloned again from node %d (its own data is discarded)",
                    node, primary_node)
        shutil.rmtree(lay.data)
    postgres.prepare_dirs(lay)
    conninfo = (f"host={primary.socket_dir} port={primary.port} user={primary.superuser} "
                f"application_name={slot}")
    bin_dir = postgres.ensure_pg_binaries()
    postgres.run_pg(lay, [str(bin_dir / "pg_basebackup"), "-D", str(lay.data), "-d", conninfo, "-R",
                          "-S", slot, "-X", "stream", "-c", "fast"])


def _wait_synchronous(primary: postgres.PgLayout, standby: int, timeout: float) -> None:
    query = ("SELECT sync_state FROM pg_stat_replication "
             f"WHERE application_name = '{_application_name(standby)}' AND state = 'streaming'")
    if not processes.wait_until(lambda: postgres.psql(primary, query) == "sync", timeout, 0.2):
        raise DevstackError(f"PostgreSQL node {standby} did not become a synchronous standby in "
                            f"{timeout:.0f}s; see {primary.log}")


def promote(settings: Settings, node: int, timeout: float = 60.0, *, fence: bool = False) -> float:
    """`pg_ctl promote -w` the standby `node`: it accepts writes alone from now on; seconds taken.

    Refused while the other node runs (two primaries would each take writes), unless `fence`: then the
    other node is stopped first (`pg_ctl stop -m immediate`)."""
    lay = postgres.layout(settings, node)
    if not is_standby(lay) or postgres.postmaster_pid(lay.data) is None:
        raise DevstackError(f"PostgreSQL node {node} is not a running standby: nothing to promote")
    other = postgres.layout(settings, 3 - node)
    if postgres.postmaster_pid(other.data) is not None:
        if not fence:
            raise DevstackError(f"PostgreSQL node {3 - node} still runs: promoting node {node} would make "
                                "two primaries; stop it first (--fence)")
        bin_dir = postgres.ensure_pg_binaries()
        postgres.run_pg(other, [str(bin_dir / "pg_ctl"), "stop", "-D", str(other.data), "-m", "immediate",
                                "-w", "-t", str(int(timeout)), "-s"])
    t0 = time.monotonic()
    bin_dir = postgres.ensure_pg_binaries()
    postgres.run_pg(lay, [str(bin_dir / "pg_ctl"), "promote", "-D", str(lay.data), "-w",
                          "-t", str(int(timeout)), "-s"])
    return time.monotonic() - t0


@dataclass(frozen=True)
class NodeStatus:
    node: int
    part: str
    address: str
    pid: int | None
    role: str  # primary, standby or down
    detail: str


def status(settings: Settings) -> list[NodeStatus]:
    """Each node: its role as the server itself says (pg_is_in_recovery) and how replication stands."""
    rows = []
    for node in NODES:
        lay = postgres.layout(settings, node)
        pid = postgres.postmaster_pid(lay.data) if (lay.data / "PG_VERSION").is_file() else None
        role, detail = ("down", "") if pid is None else _role(lay)
        rows.append(NodeStatus(node, part(node), f"{settings.pg_host}:{lay.port}", pid, role, detail))
    return rows


def _role(lay: postgres.PgLayout) -> tuple[str, str]:
    try:
        if postgres.psql(lay, "SELECT pg_is_in_recovery()") == "t":
            state = postgres.psql(lay, "SELECT status FROM pg_stat_wal_receiver") or "not receiving"
            return "standby", f"WAL receiver {state}"
        replicas = postgres.psql(lay, "SELECT application_name || ' ' || state || ' ' || sync_state "
                                      "FROM pg_stat_replication")
    except DevstackError:
        return "down", "does not answer"
    return "primary", "; ".join(replicas.splitlines()) or "no standby connected: commits alone"
