"""A supervisor for one service process of the local stack, as a process manager would be in production.

`python -m flexledger.devstack.supervisor --part intake --log L --pid P -- python -m services.intake`
runs the command as a detached child (its own session: `kill_service` kills the service, not this),
with its pid in the service's usual pid file, and starts it again whenever it exits, after a capped
backoff (reset once a run lasted `STABLE_RUN_S`). SIGTERM (`stop_service`) stops the child and then
the supervisor. What it did is kept in `<part>.supervisor.json` beside the pid file: the restarts, the
last exit status and when; `flexledger dev status` shows them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from flexledger.devstack import processes

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_RUN_S = 60.0  # a run this long was not a crash loop: the next restart comes after the first backoff
STOP_TIMEOUT_S = 15.0


@dataclass
class Supervision:
    """What `dev status` shows of a supervised service."""

    supervisor_pid: int
    restarts: int = 0
    last_exit: str = ""  # "exit 1", "killed by SIGKILL"; empty while the first run lasts
    last_exit_at: str = ""


def state_path(pid_path: Path) -> Path:
    return pid_path.with_name(f"{pid_path.stem}.supervisor.json")


def supervisor_pid_path(pid_path: Path) -> Path:
    return pid_path.with_name(f"{pid_path.stem}.supervisor.pid")


def read_state(pid_path: Path) -> Supervision | None:
    """The supervision of the service whose pid file is `pid_path`, if its supervisor runs."""
    if processes.running_pid(supervisor_pid_path(pid_path), "flexledger.devstack.supervisor") is None:
        return None
    try:
        return Supervision(**json.loads(state_path(pid_path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def exit_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


class Supervisor:
    def __init__(self, cmd: list[str], log_path: Path, pid_path: Path) -> None:
        self.cmd = cmd
        self.log_path = log_path
        self.pid_path = pid_path
        self.state = Supervision(os.getpid())
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.stop_asked = 0.0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._save()
        backoff_s = BACKOFF_FIRST_S
        while not self.stopping:
            started = time.monotonic()
            self.child = processes.spawn(self.cmd, log_path=self.log_path, pid_path=self.pid_path)
            if self.stopping:  # asked to stop while it was being spawned
                _signal_group(self.child.pid, signal.SIGTERM)
            returncode = self._wait_child(self.child)
            if self.stopping:
                break
            ran_s = time.monotonic() - started
            backoff_s = BACKOFF_FIRST_S if ran_s >= STABLE_RUN_S else backoff_s
            self.state.restarts += 1
            self.state.last_exit = exit_status(returncode)
            self.state.last_exit_at = time.strftime("%Y-%m-%d %H:%M:%S")
            self._save()
            self._note(f"{self.state.last_exit} after {ran_s:.1f}s; restart {self.state.restarts} "
                       f"in {backoff_s:.1f}s")
            self._sleep(backoff_s)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
        self.pid_path.unlink(missing_ok=True)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        """Stop the child (its whole group), then ourselves (`_wait_child` escalates to SIGKILL)."""
        self.stopping = True
        self.stop_asked = time.monotonic()
        if self.child is not None and self.child.poll() is None:
            _signal_group(self.child.pid, signal.SIGTERM)

    def _wait_child(self, child: subprocess.Popen[bytes]) -> int:
        """Its exit status; a child that ignores SIGTERM for `STOP_TIMEOUT_S` is SIGKILLed."""
        while True:
            try:
                return child.wait(0.5)
            except subprocess.TimeoutExpired:
                if self.stopping and time.monotonic() - self.stop_asked > STOP_TIMEOUT_S:
                    _signal_group(child.pid, signal.SIGKILL)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)

    def _save(self) -> None:
        path = state_path(self.pid_path)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self.state)))
        temporary.replace(path)  # readers never see half a file

    def _note(self, text: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} supervisor: {text}\n")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
        os.killpg(pgid, sig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--pid", type=Path, required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("no command to supervise")
    Supervisor(cmd, args.log, args.pid).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
