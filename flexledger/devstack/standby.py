"""Active and standby on the local stack (docs/design/services.md, "Active and standby"): intake and
payments as a pair of instances each, behind a front on the service's usual port, and eligibility as
three instances of one consumer group. `flexledger dev up --standby` starts them this way.

The instances `a` and `b` of a pair run the same code with `standby=1`, each on its own HTTP port
(`INSTANCE_PORT_OFFSETS`), and with the same static Kafka group member name, the service's: whichever
holds the service's writer lock is active, the other waits for it. When the active one dies, the
standby takes the lock and, joining under the same member name, the partitions at once (the broker
fences the dead one's member). The front (flexledger/devstack/front.py) sends every connection to the
active one. Eligibility needs no pair: its instances `b` and `c` join the group beside the first.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from flexledger.devstack import processes, services, supervisor
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import REPO_ROOT, log_file, pid_file
from services.runtime.settings import Settings

PAIRED: tuple[str, ...] = ("intake", "payments")
PAIR: tuple[str, ...] = ("a", "b")
MORE_ELIGIBILITY: tuple[str, ...] = ("b", "c")  # beside the first: three instances
INSTANCE_PORT_OFFSETS = {"a": 100, "b": 200, "c": 300}  # added to the service's port
FRONT_MARKER = "flexledger.devstack.front"


def instance_settings(name: str, settings: Settings, instance: str) -> Settings:
    """The settings of one instance: its own port; one of a pair also `standby` and the pair's shared
    static group member name."""
    port = services.service_port(name, settings) + INSTANCE_PORT_OFFSETS[instance]
    ports: dict[str, Any] = {f"{name}_port": port}
    own = replace(settings, **ports)
    if name in PAIRED:
        own = replace(own, standby=1, kafka_instance_id=name)
    return own


def front_part(name: str) -> str:
    return f"{name}-front"


def front_pid(name: str, settings: Settings) -> int | None:
    return processes.running_pid(pid_file(settings, front_part(name)), FRONT_MARKER)


def start_front(name: str, settings: Settings, *, supervised: bool = False) -> int:
    """The pair's front on the service's port, under a supervisor if `supervised`; its pid."""
    pid = front_pid(name, settings)
    if pid is not None:
        return pid
    port = services.service_port(name, settings)
    if processes.port_open("127.0.0.1", port):
        raise DevstackError(f"port 127.0.0.1:{port} is in use by another process; {name}'s front "
                            "cannot start")
    part = front_part(name)
    backends = [f"--backend=127.0.0.1:{services.service_port(name, instance_settings(name, settings, i))}"
                for i in PAIR]
    command = [sys.executable, "-m", FRONT_MARKER, f"--listen=127.0.0.1:{port}", *backends]
    pid_path = pid_file(settings, part)
    if supervised:
        pid_path.unlink(missing_ok=True)  # the supervisor writes it when the front runs
        command = [sys.executable, "-m", supervisor.__name__, "--log", str(log_file(settings, part)),
                   "--pid", str(pid_path), "--", *command]
        processes.spawn_detached(command, log_path=log_file(settings, part),
                                 pid_path=supervisor.supervisor_pid_path(pid_path), cwd=REPO_ROOT)
    else:
        processes.spawn_detached(command, log_path=log_file(settings, part), pid_path=pid_path, cwd=REPO_ROOT)
    if not processes.wait_until(lambda: processes.port_open("127.0.0.1", port), 10.0, interval=0.05):
        raise DevstackError(f"{part} did not listen on {port}; see {log_file(settings, part)}:\n"
                            f"{processes.tail(log_file(settings, part))}")
    pid = front_pid(name, settings)
    assert pid is not None
    return pid


def stop_front(name: str, settings: Settings) -> bool:
    pid_path = pid_file(settings, front_part(name))
    supervised = processes.stop_group(supervisor.supervisor_pid_path(pid_path), marker=supervisor.__name__)
    return processes.stop_group(pid_path, marker=FRONT_MARKER) or supervised


def start_pair(name: str, settings: Settings, *, supervised: bool = False, timeout: float = 120.0) -> None:
    """Front, instances `a` and `b`; until one is active and the other standby."""
    if name not in PAIRED:
        raise DevstackError(f"{name} does not run as a pair; the pairs are {', '.join(PAIRED)}")
    start_front(name, settings, supervised=supervised)
    for instance in PAIR:  # waited for together below: an instance turns from standby to starting to ok
        own = instance_settings(name, settings, instance)
        services.start_service(name, own, wait=False, instance=instance, supervised=supervised)

    def paired() -> bool:
        statuses = {(instance_health(name, settings, i) or {}).get("status") for i in PAIR}
        return active_instance(name, settings) is not None and "standby" in statuses

    if not processes.wait_until(paired, timeout, interval=0.2):
        raise DevstackError(f"{name}: no active and standby instances in {timeout:.0f}s; see "
                            f"{log_file(settings, services.instance_part(name, PAIR[0]))}")


def stop_pair(name: str, settings: Settings) -> bool:
    stopped = [services.stop_service(name, instance_settings(name, settings, i), instance=i) for i in PAIR]
    return stop_front(name, settings) or any(stopped)


def instance_health(name: str, settings: Settings, instance: str) -> dict[str, Any] | None:
    return services.service_health(name, instance_settings(name, settings, instance), timeout=1.0)


def active_instance(name: str, settings: Settings) -> str | None:
    """The instance of the pair that is active and serving, if any."""
    for instance in PAIR:
        report = instance_health(name, settings, instance)
        if report and report.get("role") == "active" and report.get("status") in ("ok", "degraded"):
            return instance
    return None


def instances(_settings: Settings) -> list[tuple[str, str]]:
    """(service, instance) of every instance this module starts."""
    return [*((name, i) for name in PAIRED for i in PAIR), *(("eligibility", i) for i in MORE_ELIGIBILITY)]


def up_more_eligibility(settings: Settings, *, timeout: float = 120.0) -> None:
    """Eligibility's two more instances, supervised (the first is started as usual)."""
    for instance in MORE_ELIGIBILITY:
        services.start_service("eligibility", instance_settings("eligibility", settings, instance),
                               timeout=timeout, instance=instance, supervised=True)


def down(settings: Settings) -> bool:
    """Stop whatever of them runs; True if something did."""
    stopped = [stop_pair(name, settings) for name in PAIRED]
    for instance in MORE_ELIGIBILITY:
        own = instance_settings("eligibility", settings, instance)
        stopped.append(services.stop_service("eligibility", own, instance=instance))
    return any(stopped)
