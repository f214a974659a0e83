"""Waiting for unreachable dependencies at start-up, the local stack's supervisor, and telling a crashed
PostgreSQL (its postmaster a zombie) from a running one. No broker or database needed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from flexledger.devstack import postgres, processes, supervisor
from flexledger.devstack.postgres import postmaster_pid
from services.runtime.startup import unreachable, until_reachable

# ---- start-up waits ------------------------------------------------------------------------------


def test_connection_failures_are_unreachable_and_others_are_not() -> None:
    assert unreachable(ConnectionRefusedError(111, "refused"))
    assert unreachable(KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"))
    wrapped = RuntimeError("opening the store failed")
    wrapped.__cause__ = OSError("connection refused")
    assert unreachable(wrapped)
    assert unreachable(OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"))
    assert not unreachable(ValueError("bad setting"))
    assert not unreachable(PermissionError(13, "Permission denied"))  # waiting will not mend it


async def test_until_reachable_retries_while_unreachable_and_says_why() -> None:
    failures = [ConnectionRefusedError(111, "refused"), KafkaConnectionError("Unable to bootstrap")]
    reasons: list[str | None] = []
    undone: list[int] = []

    async def attempt() -> None:
        if failures:
            raise failures.pop(0)

    async def undo() -> None:
        undone.append(1)

    await until_reachable("broker", attempt, waiting=reasons.append, undo=undo)
    assert [r.split(":")[0] if r else r for r in reasons] == ["broker", "broker", None]
    assert "ConnectionRefusedError" in str(reasons[0]) and "KafkaConnectionError" in str(reasons[1])
    assert len(undone) == 2


async def test_until_reachable_raises_what_waiting_cannot_mend() -> None:
    async def attempt() -> None:
        raise ValueError("wrong password setting")

    with pytest.raises(ValueError):
        await asyncio.wait_for(until_reachable("database", attempt), 5)


# ---- PostgreSQL's postmaster.pid ------------------------------------------------------------------


def _zombie() -> tuple[subprocess.Popen[str], int]:
    """A process that is a zombie nobody reaps (its parent, not us, sleeps): (its parent, its pid)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import os, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
         "print(pid, flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert processes.wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z",
                                5, 0.05)
    return parent, pid


def test_a_zombie_postmaster_is_not_running(tmp_path: Path) -> None:
    assert postmaster_pid(tmp_path) is None  # no postmaster.pid
    parent, pid = _zombie()
    try:
        (tmp_path / "postmaster.pid").write_text(f"{pid}\n{tmp_path}\n")
        os.kill(pid, 0)  # what `pg_ctl status` asks: the pid exists...
        assert postmaster_pid(tmp_path) is None  # ...yet nothing runs there
    finally:
        parent.kill()
        parent.wait()


def test_a_pid_reused_by_another_program_is_not_a_postmaster(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")  # pytest, not postgres
    assert postmaster_pid(tmp_path) is None


def test_processes_left_by_a_crashed_postmaster_are_ended_before_a_new_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process still working in the data directory (an orphaned backend that ignores its postmaster's
    death) would keep the new server from starting: it gets a grace period, then is killed."""
    data = tmp_path / "data"
    data.mkdir()
    orphan = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                               "signal.SIG_IGN); time.sleep(60)"], cwd=data)
    try:
        assert processes.working_in(data) == [orphan.pid]
        monkeypatch.setattr(postgres, "ORPHAN_GRACE_S", 0.5)
        layout = postgres.PgLayout(tmp_path, data, tmp_path, tmp_path / "log", None, "postgres", 0)
        postgres._end_orphans(layout)
        assert orphan.wait(5) == -signal.SIGKILL
        assert processes.working_in(data) == []
    finally:
        orphan.kill()


# ---- the supervisor -------------------------------------------------------------------------------


def test_the_supervisor_restarts_a_killed_child_and_stops_it_with_itself(tmp_path: Path) -> None:
    child_pid_file, log = tmp_path / "sleeper.pid", tmp_path / "sleeper.log"
    sup_pid_file = supervisor.supervisor_pid_path(child_pid_file)
    processes.spawn_detached(
        [sys.executable, "-m", "flexledger.devstack.supervisor", "--log", str(log), "--pid",
         str(child_pid_file), "--", sys.executable, "-c", "import time; time.sleep(120)"],
        log_path=log, pid_path=sup_pid_file)
    try:
        assert processes.wait_until(lambda: processes.running_pid(child_pid_file) is not None, 10)
        first = processes.read_pid(child_pid_file)
        assert first is not None
        state = supervisor.read_state(child_pid_file)
        assert state is not None and state.restarts == 0 and state.last_exit == ""

        processes.kill_group(first)  # kill -9
        assert processes.wait_until(
            lambda: (pid := processes.running_pid(child_pid_file)) is not None and pid != first, 10)
        state = supervisor.read_state(child_pid_file)
        assert state is not None and state.restarts == 1 and state.last_exit == "killed by SIGKILL", state

        second = processes.read_pid(child_pid_file)
        assert second is not None
        assert processes.stop_group(sup_pid_file, marker="flexledger.devstack.supervisor", timeout=10)
        assert not processes.pid_alive(second), "the supervisor stopped, its child still runs"
        assert supervisor.read_state(child_pid_file) is None
    finally:
        for pid_file in (sup_pid_file, child_pid_file):
            pid = processes.read_pid(pid_file)
            if pid is not None and processes.pid_alive(pid):
                os.killpg(pid, signal.SIGKILL)


def test_exit_statuses_read_as_an_operator_would_say_them() -> None:
    assert supervisor.exit_status(-signal.SIGKILL) == "killed by SIGKILL"
    assert supervisor.exit_status(1) == "exit 1"



def test_spawn_returns_only_once_the_new_program_has_its_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Popen returns while the kernel may still be setting up the new program (an empty
    /proc/<pid>/cmdline: one java start in eight, read at once on this machine), and a starting broker
    was then taken for one that had exited (`wait_healthy`: "kafka is not running", a CI failure).
    Here the first two reads find it empty: spawn must wait for the third."""
    reads: list[str] = []
    real = processes._cmdline

    def slow_exec(pid: int) -> str:
        reads.append(real(pid) if len(reads) >= 2 else "")
        return reads[-1]

    monkeypatch.setattr(processes, "_cmdline", slow_exec)
    pid = processes.spawn_detached([sys.executable, "-c", "import time; time.sleep(30)", "marker-arg"],
                                   log_path=tmp_path / "log", pid_path=tmp_path / "pid")
    try:
        assert len(reads) >= 3 and "marker-arg" in reads[-1]
        assert processes.pid_alive(pid, "marker-arg")
    finally:
        processes.kill_group(pid)
