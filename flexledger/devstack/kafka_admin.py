"""The broker's SCRAM users and ACLs, managed as `admin` with Kafka's own tools: ConfigCommand
(kafka_2.13) and AclCommand (the kafka-tools jar). aiokafka can do neither: it has no call to alter
SCRAM credentials, and creating ACLs only through a private API.

Each tool is a short JVM (under a second once its class data is archived: `kafka.run_tool`). The
broker is asked once what it has (`--describe`, `--list`), and only what differs is changed, so
bringing up a stack that is already right costs two tool runs. Passwords never appear on these command
lines: ConfigCommand reads the credential from a temporary 0600 file (`--add-config-file`), and the
tools log in with a 0600 client config.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from flexledger.devstack import credentials, kafka
from flexledger.devstack.errors import DevstackError
from flexledger.kafka_access import ADMIN, Acl, acl_command_args, acls, principals
from services.runtime.settings import Settings

TOOL_TIMEOUT_S = 90.0  # a tool whose broker is gone retries until killed
PARALLEL_TOOLS = 4
CONFIG_COMMAND = "kafka.admin.ConfigCommand"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
_REMOVED = ".removed"  # <name>.removed: `principals remove` took this principal's credential away


# ---- running a tool as admin ------------------------------------------------------------------


_LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


def _jaas(client: Settings) -> str:
    module = _LOGIN_MODULES[client.kafka_sasl_mechanism]
    for value in (client.kafka_username, client.kafka_password):
        if '"' in value or "\\" in value:
            raise DevstackError("a Kafka user name or password holding a quote or backslash cannot go in "
                                "a JAAS line")
    return f'{module} required username="{client.kafka_username}" password="{client.kafka_password}";'


@contextlib.contextmanager
def _private_file(settings: Settings, text: str) -> Iterator[Path]:
    """`text` in a 0600 file beside the broker's config, removed afterwards."""
    fd, name = tempfile.mkstemp(dir=kafka.kafka_dir(settings), prefix=".tool-", suffix=".properties")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _client_config(client: Settings) -> str:
    lines = [f"security.protocol={client.kafka_security_protocol}"]
    if client.kafka_security_protocol.upper() != "PLAINTEXT":
        lines += [f"sasl.mechanism={client.kafka_sasl_mechanism}", f"sasl.jaas.config={_jaas(client)}"]
    if client.kafka_security_protocol.upper() == "SASL_SSL" and client.kafka_ca_file:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={client.kafka_ca_file}"]
    return "\n".join(lines) + "\n"


def run_tool(settings: Settings, main_class: str, *args: str) -> str:
    """Run a Kafka tool against the settings' broker as the local stack's `admin`; its stdout."""
    client = credentials.as_principal(kafka.with_cluster(settings), ADMIN)  # any node may answer
    tool = main_class.rsplit(".", 1)[-1]
    with _private_file(settings, _client_config(client)) as config:
        try:
            result = kafka.run_tool(main_class, "--bootstrap-server", client.kafka_bootstrap,
                                    "--command-config", str(config), *args, timeout_s=TOOL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise DevstackError(f"{tool} got no answer from Kafka at {client.kafka_bootstrap} in "
                                f"{TOOL_TIMEOUT_S:.0f}s (is the broker up?)") from None
    if result.returncode != 0:
        raise DevstackError(f"{tool} {' '.join(args[:3])} failed "
                            f"({result.returncode}):\n{(result.stdout + result.stderr)[-2000:]}")
    return result.stdout


# ---- SCRAM users ------------------------------------------------------------------------------

_SCRAM_USER = re.compile(r"SCRAM credential configs for user-principal '([^']+)' are (.*)")


def scram_users(settings: Settings) -> set[str]:
    """The users with a SCRAM-SHA-512 credential on the broker."""
    out = run_tool(settings, CONFIG_COMMAND, "--describe", "--entity-type", "users")
    return {m.group(1) for m in _SCRAM_USER.finditer(out) if "SCRAM-SHA-512" in m.group(2)}


def set_scram_password(settings: Settings, name: str, password: str) -> None:
    """Create or replace `name`'s SCRAM-SHA-512 credential."""
    spec = f"SCRAM-SHA-512=iterations={kafka.SCRAM_ITERATIONS},password={password}\n"
    with _private_file(settings, spec) as config:
        run_tool(settings, CONFIG_COMMAND, "--alter", "--entity-type", "users", "--entity-name", name,
                 "--add-config-file", str(config))


def delete_scram(settings: Settings, name: str) -> None:
    run_tool(settings, CONFIG_COMMAND, "--alter", "--entity-type", "users", "--entity-name", name,
             "--delete-config", "SCRAM-SHA-512")


def is_removed(settings: Settings, name: str) -> bool:
    return (credentials.principals_dir(settings) / f"{name}{_REMOVED}").is_file()


def mark_removed(settings: Settings, name: str, removed: bool) -> None:
    marker = credentials.principals_dir(settings) / f"{name}{_REMOVED}"
    if removed:
        marker.touch(mode=0o600)
    else:
        marker.unlink(missing_ok=True)


def ensure_users(settings: Settings) -> list[str]:
    """Give every principal of the table that lacks one its SCRAM credential (its stored password,
    generated on first use), except those `flexledger kafka principals remove` took away; the names
    created. Needed beside StorageTool's `--add-scram`, which only acts on the very first format: a
    principal new in the table, or a data dir formatted before the broker authenticated."""
    wanted = [p.name for p in principals() if not p.super_user and not is_removed(settings, p.name)]
    existing = scram_users(settings)
    missing = [name for name in wanted if name not in existing]
    _in_parallel([partial(set_scram_password, settings, name, credentials.ensure_password(settings, name))
                  for name in missing])
    return missing


# ---- ACLs -------------------------------------------------------------------------------------

_RESOURCE = re.compile(r"resource `ResourcePattern\(resourceType=(\w+), name=(.*?), patternType=(\w+)\)`")
_ENTRY = re.compile(r"\(principal=(.+?), host=(.+?), operation=(\w+), permissionType=(\w+)\)")


@dataclass(frozen=True, order=True)
class Listed:
    """One ACL as the broker has it: `acl` (principal without `User:`), for `host`, ALLOW or DENY."""

    acl: Acl
    host: str = "*"
    permission: str = "ALLOW"

    @property
    def managed(self) -> bool:
        """An ACL of the kind the table grants (ALLOW, any host): `apply` removes those it does not
        list. DENY ACLs only take rights away; they are left to whoever added them."""
        return self.permission == "ALLOW" and self.host == "*"


def parse_acls(text: str) -> list[Listed]:
    """AclCommand's `--list` output (principals other than `User:` keep their prefix)."""
    out: list[Listed] = []
    resource: tuple[str, str, str] | None = None
    for line in text.splitlines():
        if (m := _RESOURCE.search(line)) is not None:
            resource = (m.group(1), m.group(3), m.group(2))
        elif (m := _ENTRY.search(line)) is not None and resource is not None:
            kind, pattern, name = resource
            who = m.group(1).removeprefix("User:")
            out.append(Listed(Acl(who, kind, pattern, name, m.group(3)), m.group(2), m.group(4)))
    return out


def list_acls(settings: Settings) -> list[Listed]:
    return sorted(parse_acls(run_tool(settings, ACL_COMMAND, "--list")))


@dataclass(frozen=True)
class AclChanges:
    added: tuple[Acl, ...]
    removed: tuple[Listed, ...]


def plan(current: Iterable[Listed], wanted: Iterable[Acl]) -> AclChanges:
    """What makes the broker's ALLOW ACLs exactly `wanted`."""
    current = list(current)
    want = set(wanted)
    have = {listed.acl for listed in current if listed.managed}
    stray = [listed for listed in current if listed.permission == "ALLOW" and listed.acl not in want]
    return AclChanges(tuple(sorted(want - have)), tuple(sorted(stray)))


def apply_acls(settings: Settings, *, dry_run: bool = False) -> AclChanges:
    """Make the broker's ACLs the access table's: add what is missing, remove the ALLOW ACLs it does
    not grant (of principals not in the table, too). Idempotent; two tool runs when nothing differs."""
    changes = plan(list_acls(settings), acls())
    if not dry_run:
        calls = [*acl_command_args("--add", [(acl, "*") for acl in changes.added]),
                 *(["--force", *args] for args in
                   acl_command_args("--remove", [(listed.acl, listed.host) for listed in changes.removed]))]
        _in_parallel([partial(run_tool, settings, ACL_COMMAND, *args) for args in calls])
    return changes


def _in_parallel(runs: list[Callable[[], object]]) -> None:
    """Tool runs, a few at a time (each mostly waits: for its JVM to start, and for the broker)."""
    with ThreadPoolExecutor(max_workers=PARALLEL_TOOLS) as pool:
        for future in [pool.submit(run) for run in runs]:
            future.result()
