"""Detached processes with pid files: spawn in their own process group, find, stop the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from flexledger.devstack.errors import DevstackError


def spawn_detached(
    cmd: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `cmd` as the leader of a new session (so of its own process group), output to `log_path`."""
    return spawn(cmd, log_path=log_path, pid_path=pid_path, env=env, cwd=cwd).pid


def spawn(
    cmd: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`spawn_detached`, for a parent that waits for the process (a supervisor)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(cmd),
            stdin=devnull,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    # Popen returns once the child's exec has begun, but /proc/<pid>/cmdline stays empty until the
    # kernel has set up the new program's arguments (12 % of java starts here, checked at once): a
    # caller asking `pid_alive(pid, marker)` then would take a starting broker for one that exited.
    wait_until(lambda: bool(_cmdline(proc.pid)) or proc.poll() is not None, 5.0, interval=0.01)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.write_text(f"{proc.pid}\n")
    return proc


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid: int) -> None:
    """Collect `pid` if it is our own exited child, so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2 :].split()
    return rest[0], int(rest[2])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True when `pid` runs (not a zombie) and, if given, its command line contains `marker`."""
    _reap(pid)
    stat = _stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return marker is None or marker in _cmdline(pid)


def running_pid(pid_path: Path, marker: str | None = None) -> int | None:
    """The pid recorded in `pid_path` if that process still runs (and matches `marker`)."""
    pid = read_pid(pid_path)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(pid)
    return members


def stop_group(pid_path: Path, *, marker: str | None = None, timeout: float = 20.0) -> bool:
    """SIGTERM the process group led by the pid in `pid_path`, SIGKILL it after `timeout`.

    Returns True if something was running. The pid file is removed in every case.
    """
    pid = read_pid(pid_path)
    if pid is None:
        pid_path.unlink(missing_ok=True)
        return False
    # Stale: the pid now belongs to another program, or the leader is gone and left no orphans behind.
    alive = pid_alive(pid)
    stale = (marker is not None and not pid_alive(pid, marker)) if alive else not group_members(pid)
    if stale:
        pid_path.unlink(missing_ok=True)
        return False
    _signal_group(pid, signal.SIGTERM)
    if not wait_until(lambda: not _group_alive(pid), timeout):
        _signal_group(pid, signal.SIGKILL)
        if not wait_until(lambda: not _group_alive(pid), 10.0):
            raise DevstackError(f"process group {pid} survived SIGKILL (pid file {pid_path})")
    pid_path.unlink(missing_ok=True)
    return True


def working_in(directory: Path) -> list[int]:
    """Live processes whose working directory is `directory` (PostgreSQL's processes work in its data
    directory). Processes of other users are not visible and not listed."""
    target = str(directory.resolve())
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        stat = _stat(int(entry.name))
        if cwd == target and stat is not None and stat[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def kill_group(pgid: int, timeout: float = 10.0) -> None:
    """SIGKILL process group `pgid` and wait until none of it runs (a crash, for fault tests)."""
    _signal_group(pgid, signal.SIGKILL)
    if not wait_until(lambda: not _group_alive(pgid), timeout, interval=0.05):
        raise DevstackError(f"process group {pgid} survived SIGKILL")


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    return bool(group_members(pgid))


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise DevstackError(f"not allowed to signal process group {pgid}: {exc}") from exc


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
