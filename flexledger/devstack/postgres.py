"""A private PostgreSQL cluster from the machine's server binaries (Debian's /usr/lib/postgresql/*/bin).

Layout. The cluster lives in `<state_dir>/pg` (data in `data/`, socket in `run/`, log in
`<state_dir>/logs/postgres.log`). PostgreSQL refuses to run as root, so when we are root its binaries
run as the `postgres` OS user (`runuser -u postgres --`), which then owns `<state_dir>/pg`. That user
must be able to traverse every parent of the state dir; when it cannot (e.g. a clone under /root), the
cluster moves to `/var/tmp/flexledger-<hash of the state dir>/pg` (log in the same folder), so several
clones and the test stack never share a cluster. A socket path too long for a Unix socket moves the
socket to `/tmp/flexledger-pg-<hash>`.

Nodes. One cluster is node 1 (data in `data/`, port `pg_port`). With a standby (`flexledger dev up
--ha`, flexledger.devstack.postgres_ha) node 2 lives beside it (data in `data-2/`, port `pg_port + 1`,
log `postgres-2.log`, the same socket folder); the functions here act on one node at a time.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from flexledger.devstack import processes
from flexledger.devstack.asyncs import run_sync
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import log_file, state_dir
from services.runtime.settings import Settings

log = logging.getLogger(__name__)

PART = "postgres"
PG_OS_USER = "postgres"
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class PgLayout:
    root: Path
    data: Path
    socket_dir: Path
    log: Path
    os_user: str | None  # run the server binaries as this user (None: as ourselves)
    superuser: str  # the cluster's bootstrap superuser, reached by peer auth over the socket
    port: int  # the node's port


def node_port(settings: Settings, node: int) -> int:
    """Node n listens on pg_port + n - 1."""
    return settings.pg_port + node - 1


def _is_root() -> bool:
    return os.geteuid() == 0


@cache
def _bin_dirs() -> tuple[Path, ...]:
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    initdb = shutil.which("initdb")
    if initdb is not None:
        found.append(Path(initdb).resolve().parent)
    return tuple(found)


def pg_bin_dir() -> Path | None:
    dirs = _bin_dirs()
    return dirs[0] if dirs else None


def ensure_pg_binaries() -> Path:
    """The server binaries' folder; installs Debian's `postgresql` with apt-get when missing (as root)."""
    found = pg_bin_dir()
    if found is not None:
        return found
    if not (_is_root() and shutil.which("apt-get")):
        raise DevstackError(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): "
            "run scripts/setup.sh or `sudo apt-get install -y postgresql`"
        )
    log.warning("PostgreSQL server binaries not found: installing Debian's `postgresql` with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DevstackError(f"`{' '.join(cmd)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    _bin_dirs.cache_clear()
    found = pg_bin_dir()
    if found is None:
        raise DevstackError("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb appeared")
    return found


def _as_user(cmd: list[str], os_user: str | None) -> list[str]:
    return ["runuser", "-u", os_user, "--", *cmd] if os_user else cmd


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _user_can_traverse(user: str, path: Path) -> bool:
    result = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)], check=False,
                            capture_output=True)
    return result.returncode == 0


def layout(settings: Settings, node: int = 1) -> PgLayout:
    state = state_dir(settings)
    digest = hashlib.sha1(str(state).encode()).hexdigest()[:12]
    os_user = PG_OS_USER if _is_root() else None
    superuser = PG_OS_USER if _is_root() else getpass.getuser()
    log_name = PART if node == 1 else f"{PART}-{node}"
    if os_user is None or _user_can_traverse(os_user, state):
        root, log_path = state / "pg", log_file(settings, log_name)
    else:
        root = Path("/var/tmp") / f"flexledger-{digest}" / "pg"
        log_path = root / f"{log_name}.log"
    socket_dir = root / "run"
    if len(str(socket_dir / f".s.PGSQL.{settings.pg_port}.lock")) > _MAX_SOCKET_PATH:
        socket_dir = Path(tempfile.gettempdir()) / f"flexledger-pg-{digest}"
    data = root / ("data" if node == 1 else f"data-{node}")
    return PgLayout(root, data, socket_dir, log_path, os_user, superuser, node_port(settings, node))


def run_pg(lay: PgLayout, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(_as_user(cmd, lay.os_user), capture_output=True, text=True, cwd=lay.root,
                            check=False)
    if check and result.returncode != 0:
        raise DevstackError(
            f"`{' '.join(cmd)}` failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
            f"PostgreSQL log {lay.log}:\n{processes.tail(lay.log)}"
        )
    return result


def _own(lay: PgLayout, *paths: Path) -> None:
    if lay.os_user is not None:
        for path in paths:
            shutil.chown(path, lay.os_user, lay.os_user)


def prepare_dirs(lay: PgLayout) -> None:
    for path in (lay.root, lay.data, lay.socket_dir):
        path.mkdir(parents=True, exist_ok=True)
    lay.log.touch(exist_ok=True)
    _own(lay, lay.root, lay.data, lay.socket_dir, lay.log)
    lay.data.chmod(0o700)
    lay.socket_dir.chmod(0o755)


def init_cluster(settings: Settings) -> PgLayout:
    """initdb once (peer auth on the socket, SCRAM over TCP); idempotent."""
    bin_dir = ensure_pg_binaries()
    lay = layout(settings)
    if lay.os_user is not None and not _user_exists(lay.os_user):
        raise DevstackError(f"OS user {lay.os_user!r} is missing; install PostgreSQL (scripts/setup.sh)")
    version_file = lay.data / "PG_VERSION"
    if version_file.is_file():
        if version_file.read_text().strip() != bin_dir.parent.name and bin_dir.parent.name.isdigit():
            raise DevstackError(
                f"{lay.data} was made by PostgreSQL {version_file.read_text().strip()}, the binaries are "
                f"{bin_dir.parent.name}: remove {lay.data} (its data is lost) and start again"
            )
        prepare_dirs(lay)
        return lay
    if lay.data.exists():
        shutil.rmtree(lay.data)  # an interrupted initdb leaves a partial folder behind
    prepare_dirs(lay)
    run_pg(lay, [str(bin_dir / "initdb"), "-D", str(lay.data), "-E", "UTF8", "--no-locale",
                 "--auth-local=peer", "--auth-host=scram-sha-256"])
    return lay


def write_config(lay: PgLayout, extra: str = "") -> None:
    """The node's `flexledger.conf` (included by postgresql.conf); `extra`: more lines (replication)."""
    conf = lay.data / "flexledger.conf"
    conf.write_text(
        "# Written by flexledger.devstack.postgres at every start; edits are overwritten.\n"
        "listen_addresses = '127.0.0.1'\n"
        f"port = {lay.port}\n"
        f"unix_socket_directories = '{lay.socket_dir}'\n"
        "max_connections = 200\n"
        "password_encryption = 'scram-sha-256'\n"
        + extra
    )
    _own(lay, conf)
    main = lay.data / "postgresql.conf"
    include = "include_if_exists = 'flexledger.conf'"
    if include not in main.read_text():
        with open(main, "a") as fh:
            fh.write(f"\n{include}\n")


def postmaster_pid(data: Path) -> int | None:
    """The pid in `data`'s postmaster.pid if that process runs PostgreSQL.

    Not `pg_ctl status`: it asks only whether the pid exists, and after a crash (kill -9) the
    postmaster can linger as a zombie nobody reaps, which pg_ctl reports as running. Here a zombie,
    a gone process and a pid now used by another program all count as not running."""
    pid = processes.read_pid(data / "postmaster.pid")
    return pid if pid is not None and processes.pid_alive(pid, marker="postgres") else None


def is_running(settings: Settings, node: int = 1) -> bool:
    lay = layout(settings, node)
    return (lay.data / "PG_VERSION").is_file() and postmaster_pid(lay.data) is not None


def postgres_pid(settings: Settings, node: int = 1) -> int | None:
    return postmaster_pid(layout(settings, node).data)


def _remove_stale_locks(lay: PgLayout) -> None:
    """Lock files left by a crashed postmaster whose pid still exists (a zombie) or was reused:
    PostgreSQL would refuse to start ("is another postmaster running?"). The data directory's
    postmaster.pid and the socket's lock file both name it. Removing them is safe: the server still
    refuses to start while a process of the old one holds its shared memory."""
    if postmaster_pid(lay.data) is not None:
        return
    for lock in (lay.data / "postmaster.pid", lay.socket_dir / f".s.PGSQL.{lay.port}.lock"):
        pid = processes.read_pid(lock)
        if pid is not None and not processes.pid_alive(pid, marker="postgres"):
            log.warning("%s names pid %d, which does not run PostgreSQL (a crashed postmaster): removing it",
                        lock, pid)
            lock.unlink(missing_ok=True)


ORPHAN_GRACE_S = 10.0


def _end_orphans(lay: PgLayout) -> None:
    """Processes of a crashed postmaster (its backends, checkpointer, ...) still attached to its shared
    memory: the new postmaster refuses to start while one lives ("pre-existing shared memory block is
    still in use"). They exit on their own once they notice the postmaster is gone, but one busy in a
    query may take a while: wait briefly, then kill them, as a service manager ends a unit's processes."""
    orphans = processes.working_in(lay.data)
    if not orphans:
        return
    log.warning("%d processes of a crashed PostgreSQL still run (%s): waiting for them to exit",
                len(orphans), ", ".join(map(str, orphans)))
    if processes.wait_until(lambda: not processes.working_in(lay.data), ORPHAN_GRACE_S, 0.1):
        return
    for pid in processes.working_in(lay.data):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    processes.wait_until(lambda: not processes.working_in(lay.data), ORPHAN_GRACE_S, 0.1)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def psql(lay: PgLayout, sql: str) -> str:
    """`sql` as the node's superuser (peer auth over the socket); its output, tuples only."""
    bin_dir = ensure_pg_binaries()
    cmd = [str(bin_dir / "psql"), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", str(lay.socket_dir),
           "-p", str(lay.port), "-U", lay.superuser, "-d", "postgres", "-c", sql]
    return run_pg(lay, cmd).stdout.strip()


def ensure_role_and_database(settings: Settings, node: int = 1) -> None:
    """Role `pg_user` (LOGIN CREATEROLE, password) and database `pg_database` owned by it, on the node
    (a primary); idempotent."""
    lay = layout(settings, node)
    role, role_lit = _quote_ident(settings.pg_user), _quote_literal(settings.pg_user)
    psql(lay,
          f"DO $fl$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {role_lit}) "
          f"THEN CREATE ROLE {role}; END IF; END$fl$;"
          f"ALTER ROLE {role} WITH LOGIN CREATEROLE PASSWORD {_quote_literal(settings.pg_password)};")
    exists = psql(lay,
                   f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(settings.pg_database)}")
    if exists != "1":
        psql(lay, f"CREATE DATABASE {_quote_ident(settings.pg_database)} OWNER {role}")


def start_postgres(settings: Settings, timeout: float = 60.0) -> PgLayout:
    """initdb if needed, start the cluster (pg_ctl -w), create the role and database."""
    lay = init_cluster(settings)
    start_node(lay, timeout)
    ensure_role_and_database(settings)
    return lay


def start_node(lay: PgLayout, timeout: float = 60.0, extra_config: str = "") -> None:
    """Start one node's server (pg_ctl -w) with its config written afresh; nothing if it runs."""
    if postmaster_pid(lay.data) is not None:
        return
    if processes.port_open("127.0.0.1", lay.port):
        raise DevstackError(f"port 127.0.0.1:{lay.port} is in use by another process; "
                            "PostgreSQL cannot start")
    bin_dir = ensure_pg_binaries()
    write_config(lay, extra_config)
    _remove_stale_locks(lay)
    _end_orphans(lay)
    run_pg(lay, [str(bin_dir / "pg_ctl"), "start", "-D", str(lay.data), "-l", str(lay.log), "-w",
                 "-t", str(int(timeout)), "-s"])


async def _connect_check(settings: Settings, timeout: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn=settings.pg_dsn(), timeout=timeout)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def pg_healthy(settings: Settings, timeout: float = 3.0) -> bool:
    """A real login as `pg_user` into `pg_database` succeeds (on the server that accepts writes)."""
    if not any(processes.port_open(host, port) for host, port in settings.pg_servers):
        return False
    try:
        run_sync(_connect_check(settings, timeout))
    except Exception:
        return False
    return True


NODES_MAX = 2  # a primary and one standby (flexledger.devstack.postgres_ha)


def stop_postgres(settings: Settings, timeout: float = 60.0) -> bool:
    """`pg_ctl stop -m fast` on every node that runs; returns True if one was running."""
    stopped = [stop_node(layout(settings, node), timeout) for node in range(1, NODES_MAX + 1)]
    return any(stopped)


def stop_node(lay: PgLayout, timeout: float = 60.0) -> bool:
    if not (lay.data / "PG_VERSION").is_file() or postmaster_pid(lay.data) is None:
        return False
    bin_dir = ensure_pg_binaries()
    run_pg(lay, [str(bin_dir / "pg_ctl"), "stop", "-D", str(lay.data), "-m", "fast", "-w",
                 "-t", str(int(timeout)), "-s"])
    return True
